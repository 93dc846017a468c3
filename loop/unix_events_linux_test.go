package loop_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

// Pipe transports over real os.Pipe pairs, mirroring test_unix_events.py's
// UnixReadPipeTransportTests and UnixWritePipeTransportTests by name.

// test__read_ready, test__read_ready_eof: data, then EOF, then
// ConnectionLost(nil); the transport closes the pipe.
func TestReadPipeTransportReadReadyEOF(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		proto := newRecordProto(l)
		tr, _, err := l.ConnectReadPipe(ctx, func() loop.Protocol { return proto }, r)
		if err != nil {
			return err
		}
		if f, _ := tr.GetExtraInfo("pipe").(*os.File); f != r {
			t.Error(`GetExtraInfo("pipe") is not the file`)
		}
		w.Write([]byte("data"))
		w.Close()
		if err, _ := proto.lost.Await(ctx); err != nil {
			t.Errorf("ConnectionLost(%v); want nil", err)
		}
		if got := proto.events; len(got) != 4 || got[0] != "made" || got[1] != "data" || got[2] != "eof" || got[3] != "lost" {
			t.Errorf("events %v", got)
		}
		if proto.data.String() != "data" {
			t.Errorf("data %q", proto.data.String())
		}
		if !tr.IsClosing() {
			t.Error("not closing after EOF")
		}
		if _, err := proto.t.Write([]byte("x")); !errors.Is(err, loop.ErrNotWritable) {
			t.Errorf("Write on a read pipe = %v", err)
		}
		return nil
	})
}

// test_pause_reading, test_resume_reading: a paused pipe delivers nothing
// until resumed, and loses nothing.
func TestReadPipeTransportPauseResume(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer w.Close()
		proto := newRecordProto(l)
		tr, _, err := l.ConnectReadPipe(ctx, func() loop.Protocol { return proto }, r)
		if err != nil {
			return err
		}
		tr.PauseReading()
		tr.PauseReading() // idempotent
		if tr.IsReading() {
			t.Error("IsReading after PauseReading")
		}
		w.Write([]byte("held"))
		for range 5 {
			loop.Sleep(ctx, 0)
		}
		if proto.data.Len() != 0 {
			t.Fatalf("a paused pipe delivered %q", proto.data.String())
		}
		tr.ResumeReading()
		for proto.data.Len() < 4 {
			if err := loop.Sleep(ctx, 0); err != nil {
				return err
			}
		}
		if proto.data.String() != "held" {
			t.Errorf("data %q", proto.data.String())
		}
		tr.Close()
		_, err = proto.lost.Await(ctx)
		return err
	})
}

// test_ctor_with_file: a regular file is not a pipe.
func TestPipeTransportRefusesRegularFile(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		f, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			return err
		}
		defer f.Close()
		if _, _, err := l.ConnectReadPipe(ctx, func() loop.Protocol { return newRecordProto(l) }, f); !errors.Is(err, loop.ErrNotPipe) {
			t.Errorf("ConnectReadPipe(file) = %v", err)
		}
		if _, _, err := l.ConnectWritePipe(ctx, func() loop.BaseProtocol { return newRecordProto(l) }, f); !errors.Is(err, loop.ErrNotPipe) {
			t.Errorf("ConnectWritePipe(file) = %v", err)
		}
		if _, _, err := l.ConnectReadPipe(ctx, func() loop.Protocol { return newRecordProto(l) }, nil); !errors.Is(err, loop.ErrNotPipe) {
			t.Errorf("ConnectReadPipe(nil) = %v", err)
		}
		return nil
	})
}

// test_write, test_write_buffer: what the pipe does not take at once is
// buffered and flushed; the protocol is paused over the high-water mark
// and resumed under the low one; all of it arrives in order.
func TestWritePipeTransportWriteBuffer(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		proto := &pipeFlowProto{recordProto: newRecordProto(l)}
		tr, _, err := l.ConnectWritePipe(ctx, func() loop.BaseProtocol { return proto }, w)
		if err != nil {
			return err
		}
		want := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: more than a pipe holds
		if _, err := tr.Write(want); err != nil {
			return err
		}
		if tr.WriteBufferSize() == 0 {
			t.Fatal("1 MB went into a pipe at once")
		}
		got := make(chan []byte, 1)
		go func() {
			var b bytes.Buffer
			b.ReadFrom(r)
			got <- b.Bytes()
		}()
		tr.Close() // flushes, then closes
		if err, _ := proto.lost.Await(ctx); err != nil {
			t.Errorf("ConnectionLost(%v)", err)
		}
		if b := awaitChan(ctx, got); !bytes.Equal(b, want) {
			t.Errorf("reader got %d bytes; want %d", len(b), len(want))
		}
		if proto.pauses == 0 || proto.resumes == 0 {
			t.Errorf("pauses %d, resumes %d; want both", proto.pauses, proto.resumes)
		}
		if _, err := tr.Write([]byte("late")); err == nil {
			t.Error("Write after Close succeeded")
		}
		return nil
	})
}

// test__read_ready (write side) and test_write_err: the reader going away
// ends the transport: with data buffered, ConnectionLost(ErrBrokenPipe).
func TestWritePipeTransportReaderGone(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		proto := newRecordProto(l)
		tr, _, err := l.ConnectWritePipe(ctx, func() loop.BaseProtocol { return proto }, w)
		if err != nil {
			return err
		}
		tr.Write(make([]byte, 1<<20))
		r.Close()
		err, _ = proto.lost.Await(ctx)
		if !errors.Is(err, loop.ErrBrokenPipe) || !errors.Is(err, syscall.EPIPE) {
			t.Errorf("ConnectionLost(%v); want ErrBrokenPipe", err)
		}
		return nil
	})
}

// test_abort: buffered data is dropped, ConnectionLost(nil).
func TestWritePipeTransportAbort(t *testing.T) {
	runNet(t, func(ctx context.Context) error {
		l := loopOf(ctx)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		proto := newRecordProto(l)
		tr, _, err := l.ConnectWritePipe(ctx, func() loop.BaseProtocol { return proto }, w)
		if err != nil {
			return err
		}
		tr.Write(make([]byte, 1<<20))
		tr.Abort()
		if tr.WriteBufferSize() != 0 {
			t.Error("Abort kept the buffer")
		}
		if err, _ := proto.lost.Await(ctx); err != nil {
			t.Errorf("ConnectionLost(%v)", err)
		}
		return nil
	})
}

// pipeFlowProto is a recordProto that counts flow-control calls.
type pipeFlowProto struct {
	*recordProto
	pauses, resumes int
}

func (p *pipeFlowProto) PauseWriting()  { p.pauses++ }
func (p *pipeFlowProto) ResumeWriting() { p.resumes++ }
