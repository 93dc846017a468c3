package loop_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

// Fuzz targets for StreamReader.ReadUntil and ReadLine: arbitrary data,
// fed in arbitrary chunks, read either by polling (a ctx that has ended:
// a read that needs no wait returns, one that would wait returns the
// ctx's error and takes nothing) or by a task that waits. Every result is
// checked against a model that knows nothing of chunks: the shortest
// prefix of the rest of the data that ends with a separator. Their seed
// corpora (f.Add and testdata/fuzz) run with every plain go test.

// nextMatch is the model: where the first separator ends in rest (and,
// for the same end, the shorter separator), found the slow way.
func nextMatch(rest []byte, seps [][]byte) (start, end int, ok bool) {
	bylen := slices.Clone(seps)
	slices.SortStableFunc(bylen, func(a, b []byte) int { return len(a) - len(b) })
	for e := 1; e <= len(rest); e++ {
		for _, s := range bylen {
			if len(s) <= e && bytes.Equal(rest[e-len(s):e], s) {
				return e - len(s), e, true
			}
		}
	}
	return 0, 0, false
}

// chunks cuts data into pieces whose sizes cuts gives (1 to 64 bytes).
func chunks(data, cuts []byte) [][]byte {
	var out [][]byte
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(cuts) > 0 {
			n = min(n, 1+int(cuts[i%len(cuts)])%64)
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// untilModel checks ReadUntil's results in order against the data.
type untilModel struct {
	t     *testing.T
	data  []byte
	pos   int // the model's read position in data
	seps  [][]byte
	limit int
	maxL  int
}

func (m *untilModel) rest() []byte { return m.data[m.pos:] }

// check checks one ReadUntil result, given what the reader still buffers
// after it; it returns how many bytes to skip (ReadExactly) after an
// overrun, and whether the stream is done.
func (m *untilModel) check(data []byte, err error, buffered int) (skip int, done bool) {
	t := m.t
	t.Helper()
	rest := m.rest()
	var le *loop.LimitOverrunError
	var ie *loop.IncompleteReadError
	// The model looks at what the reader has seen: what it returned and
	// what it still buffers (a prefix of the rest), which holds the first
	// match if the reader saw it.
	seen := len(rest)
	switch {
	case err == nil:
		seen = min(seen, len(data)+buffered)
	case errors.As(err, &le):
		seen = min(seen, buffered)
	}
	start, end, found := nextMatch(rest[:seen], m.seps)
	switch {
	case err == nil:
		if !found || !bytes.Equal(data, rest[:end]) || start > m.limit {
			t.Fatalf("ReadUntil = %q; model: found %v, %q, start %d, limit %d", data, found, rest[:min(end, len(rest))], start, m.limit)
		}
		m.pos += end
	case errors.As(err, &le):
		if buffered > len(rest) {
			t.Fatalf("reader buffers %d bytes; only %d are left", buffered, len(rest))
		}
		if le.Msg == "Separator is found, but chunk is longer than limit" {
			if !found || end > buffered || start != le.Consumed || start <= m.limit {
				t.Fatalf("%v Consumed %d; model: found %v [%d:%d], buffered %d, limit %d", err, le.Consumed, found, start, end, buffered, m.limit)
			}
		} else {
			if inBuf, e := found, end; inBuf || le.Consumed != max(0, buffered+1-m.maxL) || le.Consumed <= m.limit {
				t.Fatalf("%v Consumed %d; model: match in buffer %v (end %d), buffered %d, limit %d", err, le.Consumed, inBuf, e, buffered, m.limit)
			}
		}
		m.pos += le.Consumed
		return le.Consumed, false
	case errors.As(err, &ie):
		if !bytes.Equal(ie.Partial, rest) || ie.Expected != -1 {
			t.Fatalf("IncompleteReadError partial %q; rest %q", ie.Partial, rest)
		}
		if found && end <= len(rest) {
			t.Fatalf("IncompleteReadError with a separator in %q", rest)
		}
		m.pos = len(m.data)
		return 0, true
	default:
		t.Fatalf("ReadUntil: %v", err)
	}
	return 0, false
}

func fuzzSeps(sep1, sep2 []byte) [][]byte {
	var seps [][]byte
	for _, s := range [][]byte{sep1, sep2} {
		if len(s) > 0 && len(s) <= 16 {
			seps = append(seps, s)
		}
	}
	if len(seps) == 0 {
		seps = [][]byte{{'\n'}}
	}
	return seps
}

func fuzzLimit(limit uint16) int {
	if limit == 0 {
		return 1 << 20 // no overrun
	}
	return 1 + int(limit%200)
}

// endedCtx returns a ctx derived from ctx that has already ended.
func endedCtx(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}

func FuzzReadUntil(f *testing.F) {
	f.Add([]byte("line1\nline2\nline3\n"), []byte{3}, []byte("\n"), []byte(nil), uint16(0), false)
	f.Add([]byte("QWEaaXYaaaXaaaXXXaaa"), []byte{4, 3, 0}, []byte("aaa"), []byte(nil), uint16(0), true)
	f.Add([]byte("some dataAAA and more\r\nthen\n"), []byte{1}, []byte("AAA"), []byte("\r\n"), uint16(3), false)
	f.Add([]byte("xxABCyyZ--end--||x"), []byte{2, 5}, []byte("ABC"), []byte("Z"), uint16(0), true)
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaab"), []byte{0}, []byte("ab"), []byte("aab"), uint16(5), true)
	f.Add(bytes.Repeat([]byte("0123456789"), 30), []byte{63, 17}, []byte("89\n"), []byte("0"), uint16(7), false)
	f.Fuzz(func(t *testing.T, data, cuts, sep1, sep2 []byte, limit uint16, wait bool) {
		if len(data) > 1<<14 {
			return
		}
		seps := fuzzSeps(sep1, sep2)
		m := &untilModel{t: t, data: data, seps: seps, limit: fuzzLimit(limit)}
		for _, s := range seps {
			m.maxL = max(m.maxL, len(s))
		}
		pieces := chunks(data, cuts)
		inTask(t, func(ctx context.Context) {
			r := loop.NewStreamReader(m.limit)
			if !wait {
				ended := endedCtx(ctx)
				readAll := func() bool {
					for {
						data, err := r.ReadUntil(ended, seps...)
						if errors.Is(err, context.Canceled) {
							return false // it would have waited: nothing taken
						}
						skip, done := m.check(data, err, r.Buffered())
						if done {
							return true
						}
						if skip > 0 {
							if _, err := r.ReadExactly(ended, skip); err != nil {
								t.Fatalf("ReadExactly(%d) of the overrun: %v", skip, err)
							}
						}
					}
				}
				for _, p := range pieces {
					r.FeedData(p)
					readAll()
				}
				r.FeedEOF()
				if !readAll() {
					t.Fatal("a read at EOF would wait")
				}
				return
			}
			reader := loop.Go(ctx, func(ctx context.Context) error {
				for {
					data, err := r.ReadUntil(ctx, seps...)
					skip, done := m.check(data, err, r.Buffered())
					if done {
						return nil
					}
					if skip > 0 {
						if _, err := r.ReadExactly(ctx, skip); err != nil {
							return err
						}
					}
				}
			})
			for _, p := range pieces {
				loop.Sleep(ctx, 0)
				r.FeedData(p)
			}
			r.FeedEOF()
			if _, err := reader.Await(ctx); err != nil {
				t.Fatal(err)
			}
		})
		if m.pos != len(data) {
			t.Fatalf("read %d of %d bytes", m.pos, len(data))
		}
	})
}

func FuzzReadLine(f *testing.F) {
	f.Add([]byte("line1\nline2\nline3\n"), []byte{3}, uint16(0), false)
	f.Add([]byte("chunk1chunk2chunk3\n"), []byte{6}, uint16(7), false)
	f.Add([]byte("chunk1chunk2\nchunk3\n"), []byte{6, 7}, uint16(7), true)
	f.Add([]byte("1234567\n12345678\n12345678"), []byte{1, 2, 3}, uint16(7), false)
	f.Add([]byte("\n\n\nno newline at the end"), []byte{0}, uint16(0), true)
	f.Fuzz(func(t *testing.T, data, cuts []byte, limit uint16, wait bool) {
		if len(data) > 1<<14 {
			return
		}
		lim := fuzzLimit(limit)
		if wait {
			lim = 1 << 20 // lines dropped while waiting depend on the timing; see the poll mode
		}
		pieces := chunks(data, cuts)
		pos := 0
		// check checks one ReadLine result against the data; dropped is
		// how many bytes an overrun took from the buffer.
		check := func(line []byte, err error, buffered, dropped int) bool {
			t.Helper()
			rest := data[pos:]
			i := bytes.IndexByte(rest, '\n')
			switch {
			case err == nil && len(line) == 0:
				if len(rest) != 0 {
					t.Fatalf("ReadLine = EOF with %q left", rest)
				}
				return true
			case err == nil:
				want := rest
				if i >= 0 {
					want = rest[:i+1]
				}
				if !bytes.Equal(line, want) || (i >= 0 && i > lim) {
					t.Fatalf("ReadLine = %q; want %q (limit %d)", line, want, lim)
				}
				pos += len(line)
			case errors.Is(err, loop.ErrLimitOverrun):
				// Everything up to and including the newline if it was
				// buffered, else the whole buffer, is dropped.
				if i >= 0 && i < dropped {
					if dropped != i+1 || i <= lim {
						t.Fatalf("overrun dropped %d; newline at %d, limit %d", dropped, i, lim)
					}
				} else if dropped <= lim || buffered != 0 {
					t.Fatalf("overrun dropped %d (newline at %d), %d left buffered, limit %d", dropped, i, buffered, lim)
				}
				pos += dropped
			default:
				t.Fatalf("ReadLine: %v", err)
			}
			return false
		}
		inTask(t, func(ctx context.Context) {
			r := loop.NewStreamReader(lim)
			if !wait {
				ended := endedCtx(ctx)
				readAll := func() bool {
					for {
						before := r.Buffered()
						line, err := r.ReadLine(ended)
						if errors.Is(err, context.Canceled) {
							if r.Buffered() != before {
								t.Fatal("a ReadLine that would wait took data")
							}
							return false
						}
						if check(line, err, r.Buffered(), before-r.Buffered()) {
							return true
						}
					}
				}
				for _, p := range pieces {
					r.FeedData(p)
					readAll()
				}
				r.FeedEOF()
				if !readAll() {
					t.Fatal("a ReadLine at EOF would wait")
				}
				return
			}
			reader := loop.Go(ctx, func(ctx context.Context) error {
				for {
					line, err := r.ReadLine(ctx)
					if check(line, err, r.Buffered(), 0) {
						return nil
					}
				}
			})
			for _, p := range pieces {
				loop.Sleep(ctx, 0)
				r.FeedData(p)
			}
			r.FeedEOF()
			if _, err := reader.Await(ctx); err != nil {
				t.Fatal(err)
			}
		})
		if pos != len(data) {
			t.Fatalf("read %d of %d bytes", pos, len(data))
		}
	})
}
