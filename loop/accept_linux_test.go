package loop_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// A server that accepts one connection per readiness (AcceptPerWake: 1),
// and one that also pauses after each (AcceptPause), still serve every
// client of a burst: the level-triggered listener is ready again while
// connections wait, and accepting resumes after the pause.
func TestServerAcceptPerWake(t *testing.T) {
	t.Run("perwake", func(t *testing.T) { testAcceptBurst(t, &loop.ServerOptions{AcceptPerWake: 1}) })
	t.Run("pause", func(t *testing.T) {
		testAcceptBurst(t, &loop.ServerOptions{AcceptPerWake: 1, AcceptPause: 200 * time.Microsecond})
	})
}

func testAcceptBurst(t *testing.T, opts *loop.ServerOptions) {
	runNet(t, func(ctx context.Context) error {
		srv, err := loop.StartServer(ctx, streamHandleClient, "127.0.0.1:0", opts)
		if err != nil {
			return err
		}
		addr := srv.Addrs()[0].String()
		const n = 20
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range n { // all in the accept queue before the loop looks
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		for i := range n {
			r, w, err := loop.OpenConnection(ctx, addr, nil)
			if err != nil {
				return err
			}
			msg, err := streamLineClient(ctx, r, w)
			if err != nil || msg != "hello world!\n" {
				return fmt.Errorf("client %d got %q, %v", i, msg, err)
			}
		}
		srv.Close()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		return srv.WaitClosed(ctx)
	})
}
