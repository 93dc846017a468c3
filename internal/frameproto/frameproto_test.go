package frameproto_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/asyncgo/asyncgo/internal/frameproto"
	"github.com/asyncgo/asyncgo/loop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Frames split anywhere are answered in order, each with its digest and
// an OnMessage; a frame over MaxSize gets an error frame and the close;
// draining, an idle connection is closed.
func TestProto(t *testing.T) {
	var msgs int
	draining := false
	cfg := &frameproto.Config{MaxSize: 1000, OnMessage: func() { msgs++ }, Draining: func() bool { return draining }}
	set := frameproto.Set{}
	_, err := loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		l, err := loop.RunningLoop(ctx)
		if err != nil {
			return struct{}{}, err
		}
		srv, err := l.CreateServer(ctx, func() loop.BaseProtocol { return frameproto.New(cfg, set) }, "127.0.0.1:0", nil)
		if err != nil {
			return struct{}{}, err
		}
		defer srv.Close()
		addr := srv.Addrs()[0].String()
		if _, err := loop.ToThread(ctx, func() (struct{}, error) { return struct{}{}, talk(t, addr) }); err != nil {
			return struct{}{}, err
		}
		if msgs != 3 {
			t.Errorf("OnMessage ran %d times, want 3", msgs)
		}
		draining = true
		set.CloseIdle()
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func talk(t *testing.T, addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	var out []byte
	for _, m := range []string{"a", "", "hello"} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	for i := range out { // one byte at a time: frames split anywhere
		if _, err := c.Write(out[i : i+1]); err != nil {
			return err
		}
	}
	for _, m := range []string{"a", "", "hello"} {
		b, err := frame(rd)
		if err != nil {
			return err
		}
		want := sha256.Sum256([]byte(m))
		if len(b) != 33 || b[0] != 0 || string(b[1:]) != string(want[:]) {
			t.Errorf("answer to %q: %x", m, b)
		}
	}
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, 5000)); err != nil {
		return err
	}
	b, err := frame(rd)
	if err != nil {
		return err
	}
	if b[0] != 1 {
		t.Errorf("over the cap: answer %q", b)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Errorf("after the error frame: %v, want EOF", err)
	}
	return nil
}

func frame(rd *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(rd, b)
	return b, err
}
