package wire_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/asyncgo/asyncgo/internal/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type point struct{ X, Y int }

type bad struct{ F func() }

// A value that fails to encode sends nothing, and the stream stays in step:
// the next frame restarts it, and a type first described in the failed
// attempt is described again.
func TestSendFailureKeepsStream(t *testing.T) {
	var buf bytes.Buffer
	wr := wire.NewWriter(&buf)
	if err := wr.Send(point{1, 2}); err != nil {
		t.Fatal(err)
	}
	before := buf.Len()
	var ee *wire.EncodeError
	if err := wr.Send(point{3, 4}, bad{F: func() {}}); !errors.As(err, &ee) {
		t.Fatalf("Send(unencodable) = %v; want *EncodeError", err)
	}
	if buf.Len() != before {
		t.Fatalf("a failed Send wrote %d bytes", buf.Len()-before)
	}
	if err := wr.Send(point{5, 6}, "after"); err != nil {
		t.Fatal(err)
	}
	rd := wire.NewReader(&buf)
	var got []point
	for range 2 {
		if err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		var p point
		if err := rd.Decode(&p); err != nil {
			t.Fatalf("Decode() = %v", err)
		}
		got = append(got, p)
	}
	var s string
	if err := rd.Decode(&s); err != nil || s != "after" || rd.Rest() != 0 {
		t.Errorf("Decode() = %q, %v (rest %d)", s, err, rd.Rest())
	}
	if got[0] != (point{1, 2}) || got[1] != (point{5, 6}) {
		t.Errorf("points = %v", got)
	}
	if err := rd.Next(); err != io.EOF {
		t.Errorf("Next() at the end = %v; want io.EOF", err)
	}
}

// Reset makes the peer start a new decoder.
func TestReset(t *testing.T) {
	var buf bytes.Buffer
	wr := wire.NewWriter(&buf)
	wr.Send(point{1, 1})
	wr.Reset()
	wr.Send(point{2, 2})
	rd := wire.NewReader(&buf)
	for _, want := range []point{{1, 1}, {2, 2}} {
		var p point
		if err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		if err := rd.Decode(&p); err != nil || p != want {
			t.Errorf("Decode() = %v, %v; want %v", p, err, want)
		}
	}
}

func TestTruncatedAndOversizedFrames(t *testing.T) {
	var buf bytes.Buffer
	wire.NewWriter(&buf).Send(point{1, 2})
	b := buf.Bytes()
	if err := wire.NewReader(bytes.NewReader(b[:len(b)-1])).Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("Next() on a truncated frame = %v; want io.ErrUnexpectedEOF", err)
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0}
	if err := wire.NewReader(bytes.NewReader(huge)).Next(); err == nil {
		t.Errorf("Next() on a 4 GiB frame header = nil; want an error")
	}
}

// Item 11: gob panics on a nil pointer; Send turns that into an
// *EncodeError, writes nothing, and the stream stays in step.
func TestSendNilPointer(t *testing.T) {
	var buf bytes.Buffer
	wr := wire.NewWriter(&buf)
	var ee *wire.EncodeError
	if err := wr.Send(point{1, 2}, (*point)(nil)); !errors.As(err, &ee) {
		t.Fatalf("Send(nil pointer) = %v; want *EncodeError", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a failed Send wrote %d bytes", buf.Len())
	}
	if err := wr.Send(point{3, 4}); err != nil {
		t.Fatal(err)
	}
	rd := wire.NewReader(&buf)
	var p point
	if err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if err := rd.Decode(&p); err != nil || p != (point{3, 4}) {
		t.Errorf("Decode() = %v, %v; want {3 4}", p, err)
	}
}

// A stream of large messages reuses one buffer on each side: 20 messages
// of 2 MiB allocate about what the decoded values need, not a new frame
// buffer and encode buffer per message.
func TestLargeMessagesReuseBuffers(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	wr := wire.NewWriter(pw)
	msg := make([]byte, 2<<20)
	const n = 20
	go func() {
		for range n + 2 {
			if err := wr.Send(msg); err != nil {
				return
			}
		}
		pw.Close()
	}()
	rd := wire.NewReader(pr)
	var got []byte
	recv := func() {
		if err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		if err := rd.Decode(&got); err != nil || len(got) != len(msg) {
			t.Fatalf("Decode() = %d bytes, %v", len(got), err)
		}
	}
	recv()
	recv() // both sides' buffers have grown
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		recv()
	}
	runtime.ReadMemStats(&after)
	// Per message: gob's own copy of the message (2 MiB; Decode into got
	// reuses got). Before, the frame and encode buffers were regrown for
	// each message too: about 8 MiB in all.
	if perMsg := (after.TotalAlloc - before.TotalAlloc) / n; perMsg > 5<<20 {
		t.Errorf("%d bytes allocated per 2 MiB message; want at most 5 MiB", perMsg)
	}
}

// Marshal and Unmarshal are a stream of their own: a pointer's value
// crosses, and failures, gob's panics included, are errors.
func TestMarshal(t *testing.T) {
	b, err := wire.Marshal(&point{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	var p *point
	if err := wire.Unmarshal(b, &p); err != nil || p == nil || *p != (point{1, 2}) {
		t.Errorf("Unmarshal() = %v, %v; want &{1 2}", p, err)
	}
	var ee *wire.EncodeError
	if _, err := wire.Marshal((*point)(nil)); !errors.As(err, &ee) {
		t.Errorf("Marshal(nil pointer) = %v; want *EncodeError", err)
	}
	if _, err := wire.Marshal(bad{}); !errors.As(err, &ee) {
		t.Errorf("Marshal(func field) = %v; want *EncodeError", err)
	}
	var s string
	if err := wire.Unmarshal(b, &s); err == nil {
		t.Errorf("Unmarshal(a point into a string) = nil; want an error")
	}
	if err := wire.Unmarshal(b[:len(b)/2], &p); err == nil {
		t.Errorf("Unmarshal(truncated) = nil; want an error")
	}
}

// Slices of fixed-size numbers cross raw, between gob values of the same
// frames, and come out as gob would give them: the same numbers, a nil
// or empty slice as nil, a slice of another kind refused.
func TestRawSlices(t *testing.T) {
	var buf bytes.Buffer
	wr, rd := wire.NewWriter(&buf), wire.NewReader(&buf)
	type pair struct{ A, B string }
	ints := []int{0, 1, -1, math.MaxInt64, math.MinInt64}
	floats := []float64{0, -0.5, math.Inf(1), math.MaxFloat64, math.SmallestNonzeroFloat64}
	for round := range 3 {
		if err := wr.Send(pair{"a", "b"}, ints, []int64{-7, 7}, pair{"c", "d"}, floats, []int(nil), []int{}); err != nil {
			t.Fatal(err)
		}
		if err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		var p1, p2 pair
		var gi, gnil, gempty []int
		var g64 []int64
		var gf []float64
		for _, v := range []any{&p1, &gi, &g64, &p2, &gf, &gnil, &gempty} {
			if err := rd.Decode(v); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if p1 != (pair{"a", "b"}) || p2 != (pair{"c", "d"}) {
			t.Fatalf("round %d: the gob values around the raw ones: %v %v", round, p1, p2)
		}
		if !slices.Equal(gi, ints) || !slices.Equal(g64, []int64{-7, 7}) || !slices.Equal(gf, floats) {
			t.Fatalf("round %d: %v %v %v", round, gi, g64, gf)
		}
		if gnil != nil || gempty != nil {
			t.Fatalf("round %d: nil and empty came as %#v, %#v", round, gnil, gempty)
		}
		if rd.Rest() != 0 {
			t.Fatalf("round %d: %d bytes left in the frame", round, rd.Rest())
		}
	}
	if err := wr.Send([]int{1}); err != nil {
		t.Fatal(err)
	}
	if err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	var wrong []float64
	if err := rd.Decode(&wrong); err == nil {
		t.Fatal("a []int decoded into a []float64")
	}
}
