package main

import (
	"context"

	"github.com/asyncgo/asyncgo/loop"
)

// The same echo server on asyncio's lower layer: a Protocol whose
// DataReceived writes back what arrives. No task per connection, no
// buffer of its own: the transport calls it on the loop with the bytes
// just read, and Write sends them at once (buffering only what the kernel
// does not take). This is the shape of uvloop's fastest servers.

// echoProtocol is one connection's protocol (asyncio.Protocol).
type echoProtocol struct {
	loop.NopProtocol // EOFReceived returns false: close when the client does
	t                loop.Transport
}

func (p *echoProtocol) ConnectionMade(t loop.Transport) { p.t = t }

func (p *echoProtocol) DataReceived(data []byte) { p.t.Write(data) }

// PauseWriting and ResumeWriting (the optional loop.WriteFlowControl) are
// called when the transport's write buffer crosses its water marks: a
// client that sends faster than it reads is not read from until it has
// caught up, so the server buffers at most about the high-water mark per
// connection. Without them an echo server would buffer all a client sends.
func (p *echoProtocol) PauseWriting() { p.t.PauseReading() }

func (p *echoProtocol) ResumeWriting() { p.t.ResumeReading() }

// serveProtocol listens on addr with a fresh echoProtocol per connection.
func serveProtocol(ctx context.Context, addr string) (*loop.Server, error) {
	l, err := loop.RunningLoop(ctx)
	if err != nil {
		return nil, err
	}
	return l.CreateServer(ctx, func() loop.BaseProtocol { return &echoProtocol{} }, addr, nil)
}
