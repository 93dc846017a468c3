package loop

import "errors"

// CPython's sslproto.py: TLS over a connection.

func (l *Loop) newTLSTransport(sock *Socket, proto BaseProtocol, waiter *Future[struct{}], srv *Server, tp *tlsParams) (Transport, error) {
	return nil, errors.ErrUnsupported
}
