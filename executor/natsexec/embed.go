package natsexec

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embedded is the in-process nats-server an Executor starts when given no
// URL: JetStream on a file store in a temporary directory (or StoreDir),
// listening on a random port of 127.0.0.1 and requiring a random token, so
// that only the processes this one hands the URL to (its local workers)
// can connect.
type embedded struct {
	srv  *server.Server
	dir  string // removed at close if we made it
	url  string // with the token
	temp bool
}

// embeddedMaxPayload is the embedded server's max_payload: 8 MiB, the
// largest nats-server accepts without a warning, so that arguments and
// results up to about 8 MiB (the seed's 2 MiB among them) travel in their
// message rather than through the object store.
const embeddedMaxPayload = 8 << 20

func startEmbedded(storeDir string) (*embedded, error) {
	e := &embedded{dir: storeDir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "natsexec-")
		if err != nil {
			return nil, fmt.Errorf("natsexec: embedded server: %w", err)
		}
		e.dir, e.temp = d, true
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	srv, err := server.NewServer(&server.Options{
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		JetStream:     true,
		StoreDir:      e.dir,
		Authorization: token,
		NoSigs:        true,
		NoLog:         true,
		MaxPayload:    embeddedMaxPayload,
	})
	if err != nil {
		e.removeDir()
		return nil, fmt.Errorf("natsexec: embedded server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		e.removeDir()
		return nil, fmt.Errorf("natsexec: embedded server did not start")
	}
	e.srv = srv
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		e.close()
		return nil, fmt.Errorf("natsexec: embedded server: %w", err)
	}
	u.User = url.User(token)
	e.url = u.String()
	return e, nil
}

func (e *embedded) removeDir() {
	if e.temp {
		_ = os.RemoveAll(e.dir)
	}
}

func (e *embedded) close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.removeDir()
}
