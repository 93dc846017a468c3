package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// The StreamReader tests of CPython's test_streams.py, fed directly
// (FeedData) on a virtual-clock loop. streams_linux_test.go has the ones
// over sockets.

const streamData = "line1\nline2\nline3\n"

func streamBuffer(r *loop.StreamReader) string { return string(loop.StreamReaderBuffer(r)) }

func checkStreamBuffer(t *testing.T, r *loop.StreamReader, want string) {
	t.Helper()
	if got := streamBuffer(r); got != want {
		t.Errorf("buffer = %q; want %q", got, want)
	}
}

func checkRead(t *testing.T, what string, got []byte, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if string(got) != want {
		t.Errorf("%s = %q; want %q", what, got, want)
	}
}

// feedStreamSoon feeds chunks (and EOF if eof) from a callback, as the tests'
// cb() scheduled with call_soon.
func feedStreamSoon(ctx context.Context, r *loop.StreamReader, eof bool, chunks ...string) {
	loopOf(ctx).CallSoon(func() {
		for _, c := range chunks {
			r.FeedData([]byte(c))
		}
		if eof {
			r.FeedEOF()
		}
	})
}

// Mirrors test_streams.py: test_feed_empty_data and test_feed_nonempty_data.
func TestStreamFeedData(t *testing.T) {
	r := loop.NewStreamReader(0)
	r.FeedData(nil)
	r.FeedData([]byte{})
	checkStreamBuffer(t, r, "")
	p := []byte(streamData)
	r.FeedData(p)
	copy(p, "XXXXX") // the reader copied it
	checkStreamBuffer(t, r, streamData)
	if r.Buffered() != len(streamData) || r.Limit() != loop.DefaultStreamLimit {
		t.Errorf("Buffered %d, Limit %d", r.Buffered(), r.Limit())
	}
}

// Mirrors test_streams.py: test_read_zero.
func TestStreamReadZero(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte(streamData))
		data, err := r.Read(ctx, 0)
		checkRead(t, "Read(0)", data, err, "")
		checkStreamBuffer(t, r, streamData)
	})
}

// Mirrors test_streams.py: test_read: the read waits for the data.
func TestStreamRead(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.Read(ctx, 30) })
		feedStreamSoon(ctx, r, false, streamData)
		data, err := read.Await(ctx)
		checkRead(t, "Read(30)", data, err, streamData)
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_read_line_breaks.
func TestStreamReadLineBreaks(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("line1"))
		r.FeedData([]byte("line2"))
		data, err := r.Read(ctx, 5)
		checkRead(t, "Read(5)", data, err, "line1")
		checkStreamBuffer(t, r, "line2")
	})
}

// Mirrors test_streams.py: test_read_eof.
func TestStreamReadEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.Read(ctx, 1024) })
		feedStreamSoon(ctx, r, true)
		data, err := read.Await(ctx)
		checkRead(t, "Read(1024)", data, err, "")
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_read_until_eof: Read(-1) reads everything.
func TestStreamReadUntilEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.Read(ctx, -1) })
		feedStreamSoon(ctx, r, true, "chunk1\n", "chunk2")
		data, err := read.Await(ctx)
		checkRead(t, "Read(-1)", data, err, "chunk1\nchunk2")
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_read_all_from_pipe_reader: Read(-1) of
// more than twice the limit, over many feeds.
func TestStreamReadAllOverLimit(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(1)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.Read(ctx, -1) })
		loop.Sleep(ctx, 0)
		for _, c := range "data" {
			r.FeedData([]byte(string(c)))
			loop.Sleep(ctx, 0)
		}
		r.FeedEOF()
		data, err := read.Await(ctx)
		checkRead(t, "Read(-1)", data, err, "data")
	})
}

var errStreamValue = errors.New("ValueError")

// Mirrors test_streams.py: test_read_exception.
func TestStreamReadException(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("line\n"))
		data, err := r.Read(ctx, 2)
		checkRead(t, "Read(2)", data, err, "li")
		r.SetException(errStreamValue)
		if _, err := r.Read(ctx, 2); err != errStreamValue {
			t.Errorf("Read after SetException = %v; want %v", err, errStreamValue)
		}
	})
}

// Mirrors test_streams.py: test_invalid_limit: asyncio raises ValueError,
// asyncgo takes a limit <= 0 as the default.
func TestStreamInvalidLimit(t *testing.T) {
	for _, limit := range []int{0, -1} {
		if got := loop.NewStreamReader(limit).Limit(); got != loop.DefaultStreamLimit {
			t.Errorf("NewStreamReader(%d).Limit() = %d", limit, got)
		}
	}
}

// Mirrors test_streams.py: test_read_limit: Read is not bound by the limit.
func TestStreamReadLimit(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(3)
		r.FeedData([]byte("chunk"))
		data, err := r.Read(ctx, 5)
		checkRead(t, "Read(5)", data, err, "chunk")
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_readline.
func TestStreamReadLine(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("chunk1 "))
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadLine(ctx) })
		feedStreamSoon(ctx, r, false, "chunk2 ", "chunk3 ", "\n chunk4")
		line, err := read.Await(ctx)
		checkRead(t, "ReadLine", line, err, "chunk1 chunk2 chunk3 \n")
		checkStreamBuffer(t, r, " chunk4")
	})
}

func checkLineLimit(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, loop.ErrLimitOverrun) {
		t.Errorf("%s = %v; want ErrLimitOverrun", what, err)
	}
	var le *loop.LimitOverrunError
	if errors.As(err, &le) {
		t.Errorf("%s returned a *LimitOverrunError; ReadLine's is asyncio's ValueError", what)
	}
}

// Mirrors test_streams.py: test_readline_limit_with_existing_data.
func TestStreamReadLineLimitWithExistingData(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(3)
		r.FeedData([]byte("li"))
		r.FeedData([]byte("ne1\nline2\n"))
		_, err := r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		// The rest after the overlong line stays.
		checkStreamBuffer(t, r, "line2\n")

		r = loop.NewStreamReader(3)
		r.FeedData([]byte("li"))
		r.FeedData([]byte("ne1"))
		r.FeedData([]byte("li"))
		_, err = r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		// No newline: the whole buffer goes.
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_at_eof.
func TestStreamAtEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		if r.AtEOF() {
			t.Error("AtEOF on a new reader")
		}
		r.FeedData([]byte("some data\n"))
		if r.AtEOF() {
			t.Error("AtEOF with data")
		}
		r.ReadLine(ctx)
		if r.AtEOF() {
			t.Error("AtEOF before FeedEOF")
		}
		r.FeedData([]byte("some data\n"))
		r.FeedEOF()
		if r.AtEOF() {
			t.Error("AtEOF with data after FeedEOF")
		}
		r.ReadLine(ctx)
		if !r.AtEOF() {
			t.Error("AtEOF false after the last line")
		}
	})
}

// Mirrors test_streams.py: test_readline_limit.
func TestStreamReadLineLimit(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(7)
		feedStreamSoon(ctx, r, true, "chunk1", "chunk2", "chunk3\n")
		_, err := r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		// The buffer had one line, and the error emptied it.
		checkStreamBuffer(t, r, "")

		r = loop.NewStreamReader(7)
		feedStreamSoon(ctx, r, true, "chunk1", "chunk2\n", "chunk3\n")
		_, err = r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		checkStreamBuffer(t, r, "chunk3\n")

		// The limit is strict.
		r = loop.NewStreamReader(7)
		r.FeedData([]byte("1234567\n"))
		line, err := r.ReadLine(ctx)
		checkRead(t, "ReadLine", line, err, "1234567\n")
		checkStreamBuffer(t, r, "")

		r.FeedData([]byte("12345678\n"))
		_, err = r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		checkStreamBuffer(t, r, "")

		r.FeedData([]byte("12345678"))
		_, err = r.ReadLine(ctx)
		checkLineLimit(t, "ReadLine", err)
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_readline_nolimit_nowait.
func TestStreamReadLineNolimitNowait(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte(streamData[:6]))
		r.FeedData([]byte(streamData[6:]))
		line, err := r.ReadLine(ctx)
		checkRead(t, "ReadLine", line, err, "line1\n")
		checkStreamBuffer(t, r, "line2\nline3\n")
	})
}

// Mirrors test_streams.py: test_readline_eof and test_readline_empty_eof.
func TestStreamReadLineEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("some data"))
		r.FeedEOF()
		line, err := r.ReadLine(ctx)
		checkRead(t, "ReadLine", line, err, "some data")

		r = loop.NewStreamReader(0)
		r.FeedEOF()
		line, err = r.ReadLine(ctx)
		checkRead(t, "ReadLine at EOF", line, err, "")
	})
}

// Mirrors test_streams.py: test_readline_read_byte_count.
func TestStreamReadLineReadByteCount(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte(streamData))
		r.ReadLine(ctx)
		data, err := r.Read(ctx, 7)
		checkRead(t, "Read(7)", data, err, "line2\nl")
		checkStreamBuffer(t, r, "ine3\n")
	})
}

// Mirrors test_streams.py: test_readline_exception.
func TestStreamReadLineException(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("line\n"))
		line, err := r.ReadLine(ctx)
		checkRead(t, "ReadLine", line, err, "line\n")
		r.SetException(errStreamValue)
		if _, err := r.ReadLine(ctx); err != errStreamValue {
			t.Errorf("ReadLine = %v; want %v", err, errStreamValue)
		}
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_readuntil_separator (3.13: an empty
// separator, an empty one among others, and none at all).
func TestStreamReadUntilSeparator(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		if _, err := r.ReadUntil(ctx, []byte{}); err != loop.ErrSeparatorEmpty {
			t.Errorf("ReadUntil(empty) = %v", err)
		}
		if _, err := r.ReadUntil(ctx, []byte("a"), nil); err != loop.ErrSeparatorEmpty {
			t.Errorf("ReadUntil(a, empty) = %v", err)
		}
		if _, err := r.ReadUntil(ctx); err != loop.ErrSeparatorMissing {
			t.Errorf("ReadUntil() = %v", err)
		}
		if got := loop.ErrSeparatorEmpty.Error(); got != "loop: Separator should be at least one-byte string" {
			t.Errorf("text %q", got)
		}
	})
}

// Mirrors test_streams.py: test_readuntil_multi_chunks.
func TestStreamReadUntilMultiChunks(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		sep := []byte("AAA")
		r.FeedData([]byte("lineAAA"))
		data, err := r.ReadUntil(ctx, sep)
		checkRead(t, "ReadUntil", data, err, "lineAAA")
		checkStreamBuffer(t, r, "")

		r.FeedData([]byte("lineAAA"))
		data, err = r.ReadUntil(ctx, sep)
		checkRead(t, "ReadUntil", data, err, "lineAAA")
		checkStreamBuffer(t, r, "")

		r.FeedData([]byte("lineAAAxxx"))
		data, err = r.ReadUntil(ctx, sep)
		checkRead(t, "ReadUntil", data, err, "lineAAA")
		checkStreamBuffer(t, r, "xxx")
	})
}

// Mirrors test_streams.py: test_readuntil_multi_chunks_1.
func TestStreamReadUntilMultiChunks1(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		for _, c := range []struct {
			chunks []string
			want   string
		}{
			{[]string{"QWEaa", "XYaa", "a"}, "QWEaaXYaaa"},
			{[]string{"QWEaa", "XYa", "aa"}, "QWEaaXYaaa"},
			{[]string{"aaa"}, "aaa"},
			{[]string{"Xaaa"}, "Xaaa"},
			{[]string{"XXX", "a", "a", "a"}, "XXXaaa"},
		} {
			for _, ch := range c.chunks {
				r.FeedData([]byte(ch))
			}
			data, err := r.ReadUntil(ctx, []byte("aaa"))
			checkRead(t, "ReadUntil", data, err, c.want)
			checkStreamBuffer(t, r, "")
		}
		// The same, each chunk arriving while the read waits.
		for _, chunks := range [][]string{{"QWEaa", "XYaa", "a"}, {"QWEaa", "XYa", "aa"}, {"XXX", "a", "a", "a"}} {
			read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadUntil(ctx, []byte("aaa")) })
			for _, ch := range chunks {
				loop.Sleep(ctx, 0)
				r.FeedData([]byte(ch))
			}
			data, err := read.Await(ctx)
			checkRead(t, "ReadUntil", data, err, strings.Join(chunks, ""))
		}
	})
}

// Mirrors test_streams.py: test_readuntil_eof.
func TestStreamReadUntilSepEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("some dataAA"))
		r.FeedEOF()
		_, err := r.ReadUntil(ctx, []byte("AAA"))
		var ie *loop.IncompleteReadError
		if !errors.As(err, &ie) {
			t.Fatalf("ReadUntil = %v; want *IncompleteReadError", err)
		}
		if string(ie.Partial) != "some dataAA" || ie.Expected != -1 {
			t.Errorf("Partial %q, Expected %d", ie.Partial, ie.Expected)
		}
		if !strings.Contains(err.Error(), "undefined expected bytes") {
			t.Errorf("text %q", err.Error())
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%v does not match io.ErrUnexpectedEOF", err)
		}
		checkStreamBuffer(t, r, "")
		_, err = r.ReadUntil(ctx, []byte("AAA"))
		if !errors.As(err, &ie) || len(ie.Partial) != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("ReadUntil at EOF = %v; want an empty IncompleteReadError matching io.EOF", err)
		}
	})
}

// Mirrors test_streams.py: test_readuntil_limit_found_sep: the buffer is
// kept, and Consumed says how far.
func TestStreamReadUntilLimitFoundSep(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(3)
		r.FeedData([]byte("some dataAA"))
		_, err := r.ReadUntil(ctx, []byte("AAA"))
		var le *loop.LimitOverrunError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "not found") || le.Consumed != 9 {
			t.Errorf("ReadUntil = %v (%+v); want not found, Consumed 9", err, le)
		}
		if err.Error() != "loop: Separator is not found, and chunk exceed the limit" {
			t.Errorf("text %q", err.Error())
		}
		checkStreamBuffer(t, r, "some dataAA")

		r.FeedData([]byte("A"))
		_, err = r.ReadUntil(ctx, []byte("AAA"))
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "is found") || le.Consumed != 9 {
			t.Errorf("ReadUntil = %v (%+v); want is found, Consumed 9", err, le)
		}
		if err.Error() != "loop: Separator is found, but chunk is longer than limit" || !errors.Is(err, loop.ErrLimitOverrun) {
			t.Errorf("text %q", err.Error())
		}
		checkStreamBuffer(t, r, "some dataAAA")
		// Consumed tells how much to read to get past it.
		data, err := r.ReadExactly(ctx, le.Consumed)
		checkRead(t, "ReadExactly(Consumed)", data, err, "some data")
		data, err = r.ReadUntil(ctx, []byte("AAA"))
		checkRead(t, "ReadUntil", data, err, "AAA")
	})
}

// Mirrors test_streams.py (3.13): the tuple cases of test_readuntil_multi_chunks,
// test_readuntil_eof and test_readuntil_limit_found_sep: the shortest result
// ending with any separator wins, and the limit is checked against where
// the winning separator starts.
func TestStreamReadUntilMultipleSeparators(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		seps := [][]byte{[]byte("\r\n"), []byte("\n"), []byte("AAA")}
		r.FeedData([]byte("line1\r\nline2\nline3AAAline4\n"))
		for _, want := range []string{"line1\r\n", "line2\n", "line3AAA", "line4\n"} {
			data, err := r.ReadUntil(ctx, seps...)
			checkRead(t, "ReadUntil", data, err, want)
		}
		// Same end: the shorter separator matched; the longer one would
		// give the same result.
		r.FeedData([]byte("xab"))
		data, err := r.ReadUntil(ctx, []byte("ab"), []byte("b"))
		checkRead(t, "ReadUntil(ab, b)", data, err, "xab")
		// A longer separator that ends first wins over a short one
		// further on.
		r.FeedData([]byte("xxABCyyZ"))
		data, err = r.ReadUntil(ctx, []byte("Z"), []byte("ABC"))
		checkRead(t, "ReadUntil(Z, ABC)", data, err, "xxABC")
		checkStreamBuffer(t, r, "yyZ")
		r.ReadUntil(ctx, []byte("Z"))
		// Separators split over feeds, the read waiting.
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) {
			return r.ReadUntil(ctx, []byte("--end--"), []byte("||"))
		})
		for _, c := range []string{"abc--e", "nd-", "-|", "|x"} {
			loop.Sleep(ctx, 0)
			r.FeedData([]byte(c))
		}
		data, err = read.Await(ctx)
		checkRead(t, "ReadUntil split", data, err, "abc--end--")
		checkStreamBuffer(t, r, "||x")

		// The limit: separators found past it, and not found within it.
		r = loop.NewStreamReader(3)
		r.FeedData([]byte("some dataAA"))
		_, err = r.ReadUntil(ctx, []byte("AAA"), []byte("ZZ"))
		var le *loop.LimitOverrunError
		if !errors.As(err, &le) || le.Consumed != 9 || !strings.Contains(err.Error(), "not found") {
			t.Errorf("ReadUntil = %v %+v; want not found, Consumed 9 (max separator 3)", err, le)
		}
		r.FeedData([]byte("A"))
		_, err = r.ReadUntil(ctx, []byte("AAA"), []byte("ZZ"))
		if !errors.As(err, &le) || le.Consumed != 9 || !strings.Contains(err.Error(), "is found") {
			t.Errorf("ReadUntil = %v %+v; want is found, Consumed 9", err, le)
		}
		checkStreamBuffer(t, r, "some dataAAA")
		r = loop.NewStreamReader(3)
		r.FeedData([]byte("abQ"))
		r.FeedEOF()
		_, err = r.ReadUntil(ctx, []byte("QQ"), []byte("QQQ"))
		var ie *loop.IncompleteReadError
		if !errors.As(err, &ie) || string(ie.Partial) != "abQ" {
			t.Errorf("ReadUntil at EOF = %v", err)
		}
	})
}

// Mirrors test_streams.py: test_readexactly_zero_or_less.
func TestStreamReadExactlyZeroOrLess(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte(streamData))
		data, err := r.ReadExactly(ctx, 0)
		checkRead(t, "ReadExactly(0)", data, err, "")
		checkStreamBuffer(t, r, streamData)
		if _, err := r.ReadExactly(ctx, -1); err != loop.ErrReadExactlyNegative || !strings.Contains(err.Error(), "less than zero") {
			t.Errorf("ReadExactly(-1) = %v", err)
		}
		checkStreamBuffer(t, r, streamData)
	})
}

// Mirrors test_streams.py: test_readexactly.
func TestStreamReadExactly(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		n := 2 * len(streamData)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, n) })
		feedStreamSoon(ctx, r, false, streamData, streamData, streamData)
		data, err := read.Await(ctx)
		checkRead(t, "ReadExactly", data, err, streamData+streamData)
		checkStreamBuffer(t, r, streamData)
	})
}

// Mirrors test_streams.py: test_readexactly_limit.
func TestStreamReadExactlyLimit(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(3)
		r.FeedData([]byte("chunk"))
		data, err := r.ReadExactly(ctx, 5)
		checkRead(t, "ReadExactly(5)", data, err, "chunk")
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_readexactly_eof.
func TestStreamReadExactlyEOF(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		n := 2 * len(streamData)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, n) })
		feedStreamSoon(ctx, r, true, streamData)
		_, err := read.Await(ctx)
		var ie *loop.IncompleteReadError
		if !errors.As(err, &ie) {
			t.Fatalf("ReadExactly = %v", err)
		}
		if string(ie.Partial) != streamData || ie.Expected != n {
			t.Errorf("Partial %q Expected %d", ie.Partial, ie.Expected)
		}
		if got := err.Error(); got != "loop: 18 bytes read on a total of 36 expected bytes" {
			t.Errorf("text %q", got)
		}
		checkStreamBuffer(t, r, "")
	})
}

// Mirrors test_streams.py: test_readexactly_exception.
func TestStreamReadExactlyException(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("line\n"))
		data, err := r.ReadExactly(ctx, 2)
		checkRead(t, "ReadExactly(2)", data, err, "li")
		r.SetException(errStreamValue)
		if _, err := r.ReadExactly(ctx, 2); err != errStreamValue {
			t.Errorf("ReadExactly = %v", err)
		}
	})
}

// Mirrors test_streams.py: test_exception.
func TestStreamException(t *testing.T) {
	r := loop.NewStreamReader(0)
	if r.Exception() != nil {
		t.Error("Exception() != nil")
	}
	r.SetException(errStreamValue)
	if r.Exception() != errStreamValue {
		t.Errorf("Exception() = %v", r.Exception())
	}
}

// Mirrors test_streams.py: test_exception_waiter: SetException wakes the
// waiting read with the error, even with data buffered.
func TestStreamExceptionWaiter(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		r.FeedData([]byte("no newline"))
		t1 := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadLine(ctx) })
		t2 := loop.Go(ctx, func(ctx context.Context) error { r.SetException(errStreamValue); return nil })
		loop.Wait(ctx, []loop.Waitable{t1, t2}, loop.NoTimeout, loop.AllCompleted)
		if _, err := t1.Result(); err != errStreamValue {
			t.Errorf("ReadLine = %v; want %v", err, errStreamValue)
		}
	})
}

// A wake-up by data that comes before the error still delivers the data,
// as asyncio's waiter, resolved by feed_data, ignores a later
// set_exception.
func TestStreamDataBeforeException(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadLine(ctx) })
		loop.Sleep(ctx, 0)
		r.FeedData([]byte("last\n"))
		r.SetException(syscall.ECONNRESET)
		line, err := read.Await(ctx)
		checkRead(t, "ReadLine", line, err, "last\n")
		if _, err := r.ReadLine(ctx); err != syscall.ECONNRESET {
			t.Errorf("next ReadLine = %v", err)
		}
	})
}

// Mirrors test_streams.py: test_exception_cancel: SetException after the
// waiting read was cancelled leaves no waiter behind.
func TestStreamExceptionCancel(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadLine(ctx) })
		loop.Sleep(ctx, 0)
		read.Cancel()
		loop.Sleep(ctx, 0)
		r.SetException(errors.New("message"))
		loop.Sleep(ctx, 0)
		if !read.Cancelled() {
			t.Errorf("read not cancelled: %v", read.Err())
		}
		if s := r.String(); strings.Contains(s, "waiter") {
			t.Errorf("waiter left: %s", s)
		}
	})
}

// Mirrors test_streams.py: test___repr__, test___repr__nondefault_limit,
// test___repr__eof, test___repr__data, test___repr__exception,
// test___repr__waiter.
func TestStreamRepr(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		for _, c := range []struct {
			setup func(r *loop.StreamReader)
			limit int
			want  string
		}{
			{func(*loop.StreamReader) {}, 0, "<StreamReader>"},
			{func(*loop.StreamReader) {}, 123, "<StreamReader limit=123>"},
			{func(r *loop.StreamReader) { r.FeedEOF() }, 0, "<StreamReader eof>"},
			{func(r *loop.StreamReader) { r.FeedData([]byte("data")) }, 0, "<StreamReader 4 bytes>"},
			{func(r *loop.StreamReader) { r.SetException(errors.New("RuntimeError")) }, 0, "<StreamReader exception=RuntimeError>"},
		} {
			r := loop.NewStreamReader(c.limit)
			c.setup(r)
			if got := r.String(); got != c.want {
				t.Errorf("String() = %q; want %q", got, c.want)
			}
		}
		r := loop.NewStreamReader(0)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.Read(ctx, 1) })
		loop.Sleep(ctx, 0)
		if got := r.String(); got != "<StreamReader waiter>" {
			t.Errorf("String() = %q", got)
		}
		r.FeedData([]byte("x"))
		read.Await(ctx)
		if got := r.String(); got != "<StreamReader>" {
			t.Errorf("String() = %q", got)
		}
	})
}

// Mirrors test_streams.py: test_IncompleteReadError_pickleable and
// test_LimitOverrunError_pickleable: the text and the fields.
func TestStreamErrorsText(t *testing.T) {
	e := &loop.IncompleteReadError{Partial: []byte("abc"), Expected: 10}
	if got := e.Error(); got != "loop: 3 bytes read on a total of 10 expected bytes" {
		t.Errorf("IncompleteReadError %q", got)
	}
	l := &loop.LimitOverrunError{Msg: "message", Consumed: 10}
	if got := l.Error(); got != "loop: message" || !errors.Is(l, loop.ErrLimitOverrun) {
		t.Errorf("LimitOverrunError %q", got)
	}
	if err := fmt.Errorf("drain: %w", loop.ErrConnectionLost); !errors.Is(err, syscall.ECONNRESET) || loop.ErrConnectionLost.Error() != "loop: Connection lost" {
		t.Errorf("ErrConnectionLost %v", loop.ErrConnectionLost)
	}
}

// asyncio's _wait_for_data: a second task that has to wait while another
// waits gets RuntimeError "readuntil() called while another coroutine is
// already waiting for incoming data"; one that needs no wait reads.
func TestStreamConcurrentRead(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		first := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadUntil(ctx, []byte("!")) })
		loop.Sleep(ctx, 0)
		for name, read := range map[string]func() error{
			"ReadUntil":   func() error { _, err := r.ReadUntil(ctx, []byte("?")); return err },
			"Read":        func() error { _, err := r.Read(ctx, 10); return err },
			"ReadExactly": func() error { _, err := r.ReadExactly(ctx, 10); return err },
		} {
			err := read()
			if !errors.Is(err, loop.ErrReadInProgress) {
				t.Errorf("%s = %v; want ErrReadInProgress", name, err)
			} else if want := "loop: " + name + "() called while another coroutine is already waiting for incoming data"; err.Error() != want {
				t.Errorf("text %q; want %q", err.Error(), want)
			}
		}
		if _, err := r.ReadLine(ctx); !errors.Is(err, loop.ErrReadInProgress) || !strings.Contains(err.Error(), "ReadUntil()") {
			t.Errorf("ReadLine = %v", err)
		}
		r.FeedData([]byte("ab!"))
		data, err := first.Await(ctx)
		checkRead(t, "first", data, err, "ab!")
	})
}

// Issue 9, item 5: a read whose task is cancelled, or whose derived ctx
// times out, loses no data: what arrived stays in the buffer for the
// next read. Each kind of read, waiting in each way.
func TestStreamCancelledReadLosesNothing(t *testing.T) {
	reads := map[string]func(ctx context.Context, r *loop.StreamReader) ([]byte, error){
		"ReadLine": func(ctx context.Context, r *loop.StreamReader) ([]byte, error) { return r.ReadLine(ctx) },
		"ReadUntil": func(ctx context.Context, r *loop.StreamReader) ([]byte, error) {
			return r.ReadUntil(ctx, []byte("END"))
		},
		"ReadExactly": func(ctx context.Context, r *loop.StreamReader) ([]byte, error) { return r.ReadExactly(ctx, 100) },
		"ReadAll":     func(ctx context.Context, r *loop.StreamReader) ([]byte, error) { return r.Read(ctx, -1) },
	}
	for name, read := range reads {
		t.Run(name+"/cancel", func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				r := loop.NewStreamReader(0)
				task := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return read(ctx, r) })
				loop.Sleep(ctx, 0)
				r.FeedData([]byte("partial "))
				loop.Sleep(ctx, 0)
				r.FeedData([]byte("data"))
				task.Cancel("stop")
				_, err := task.Await(ctx)
				if !errors.Is(err, loop.ErrCancelled) {
					t.Fatalf("read = %v; want cancelled", err)
				}
				checkStreamBuffer(t, r, "partial data")
			})
		})
		t.Run(name+"/timeout", func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				r := loop.NewStreamReader(0)
				loopOf(ctx).CallLater(time.Second, func() { r.FeedData([]byte("partial data")) })
				c, cancel := context.WithDeadline(ctx, loopOf(ctx).Time().Add(2*time.Second))
				defer cancel()
				_, err := read(c, r)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("read = %v; want DeadlineExceeded", err)
				}
				if loop.CurrentTask(ctx).Cancelling() != 0 {
					t.Error("the task was cancelled")
				}
				checkStreamBuffer(t, r, "partial data")
				// The next read, with the task's ctx, gets it all.
				r.FeedData([]byte("END\n" + strings.Repeat("x", 100)))
				r.FeedEOF()
				data, err := read(ctx, r)
				if err != nil || !bytes.HasPrefix(data, []byte("partial data")) {
					t.Errorf("next read = %q, %v", data, err)
				}
			})
		})
		t.Run(name+"/waitfor", func(t *testing.T) {
			inTask(t, func(ctx context.Context) {
				r := loop.NewStreamReader(0)
				r.FeedData([]byte("partial data"))
				err := loop.WithTimeout(ctx, time.Second, func(ctx context.Context) error { _, err := read(ctx, r); return err })
				if !errors.Is(err, loop.ErrTimeout) {
					t.Fatalf("read = %v; want ErrTimeout", err)
				}
				checkStreamBuffer(t, r, "partial data")
			})
		})
	}
}

// The results belong to the caller: writing into one never shows in the
// reader, nor does later data show in it.
func TestStreamResultsAreOwned(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		big := bytes.Repeat([]byte("a"), 1<<20)
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, len(big)) })
		for off := 0; off < len(big); off += 100000 {
			loop.Sleep(ctx, 0)
			r.FeedData(big[off:min(off+100000, len(big))])
		}
		r.FeedData([]byte("tail"))
		data, err := read.Await(ctx)
		if err != nil || !bytes.Equal(data, big) {
			t.Fatalf("ReadExactly: %v", err)
		}
		data = append(data, "XXXX"...)
		data[0] = 'Z'
		checkStreamBuffer(t, r, "tail")
		r.FeedData([]byte("more"))
		if data[len(big)] != 'X' {
			t.Error("later data showed in an earlier result")
		}
		rest, _ := r.Read(ctx, 100)
		checkRead(t, "Read", rest, nil, "tailmore")

		var lines [][]byte
		for range 100 {
			r.FeedData([]byte("0123456789\n"))
		}
		for range 100 {
			line, _ := r.ReadLine(ctx)
			lines = append(lines, line)
		}
		for i := range lines {
			lines[i] = append(lines[i], "!"...) // must not write into the next line
			lines[i] = lines[i][:len(lines[i])-1]
		}
		for i, line := range lines {
			if string(line) != "0123456789\n" {
				t.Fatalf("line %d = %q", i, line)
			}
		}
	})
}

// flowTransport records the reader's flow control, for the tests of
// feed_data's pause and _maybe_resume_transport.
type flowTransport struct {
	loop.Transport
	paused bool
	calls  []string
}

func (f *flowTransport) PauseReading()  { f.paused = true; f.calls = append(f.calls, "pause") }
func (f *flowTransport) ResumeReading() { f.paused = false; f.calls = append(f.calls, "resume") }
func (f *flowTransport) String() string { return "<Transport>" }

// asyncio's flow control: the reader pauses its transport above 2*limit
// and resumes it at the limit, or when a read has to wait (readexactly of
// more than the limit would deadlock otherwise). Also test___repr__transport.
func TestStreamFlowControl(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(10)
		tr := &flowTransport{}
		r.SetTransport(tr)
		if got := r.String(); got != "<StreamReader limit=10 transport=<Transport>>" {
			t.Errorf("String() = %q", got)
		}
		r.FeedData(bytes.Repeat([]byte("x"), 20))
		if tr.paused {
			t.Error("paused at 2*limit")
		}
		r.FeedData([]byte("y"))
		if !tr.paused || !strings.HasSuffix(r.String(), " paused>") {
			t.Error("not paused above 2*limit")
		}
		r.Read(ctx, 5) // 16 left
		if !tr.paused {
			t.Error("resumed above the limit")
		}
		r.Read(ctx, 6) // 10 left
		if tr.paused {
			t.Error("not resumed at the limit")
		}
		r.Read(ctx, 10)
		// A ReadExactly of more than 2*limit: reading goes on until it has
		// it all, with no pause in between.
		tr.calls = nil
		read := loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, 100) })
		loop.Sleep(ctx, 0)
		for range 10 {
			r.FeedData(bytes.Repeat([]byte("z"), 10))
			loop.Sleep(ctx, 0)
		}
		data, err := read.Await(ctx)
		if err != nil || len(data) != 100 || tr.paused {
			t.Errorf("ReadExactly(100) = %d bytes, %v; paused %v", len(data), err, tr.paused)
		}
		// Paused, then a read that has to wait resumes.
		r.FeedData(bytes.Repeat([]byte("w"), 25))
		if !tr.paused {
			t.Fatal("not paused")
		}
		read = loop.Spawn(ctx, func(ctx context.Context) ([]byte, error) { return r.ReadExactly(ctx, 30) })
		loop.Sleep(ctx, 0)
		if tr.paused {
			t.Error("a waiting ReadExactly left the transport paused")
		}
		r.FeedData([]byte("12345"))
		if data, err := read.Await(ctx); err != nil || len(data) != 30 {
			t.Errorf("ReadExactly(30) = %d, %v", len(data), err)
		}
		defer func() {
			if recover() == nil {
				t.Error("a second SetTransport did not panic")
			}
		}()
		r.SetTransport(tr)
	})
}

// FeedData after FeedEOF is a bug, as asyncio's assertion says.
func TestStreamFeedAfterEOF(t *testing.T) {
	r := loop.NewStreamReader(0)
	r.FeedEOF()
	defer func() {
		if recover() == nil {
			t.Error("FeedData after FeedEOF did not panic")
		}
	}()
	r.FeedData([]byte("x"))
}

// A read outside the reader's task, or on another loop, fails as every
// await of the package does.
func TestStreamReadOutsideTask(t *testing.T) {
	r := loop.NewStreamReader(0)
	if _, err := r.Read(context.Background(), 1); err != loop.ErrNotInTask {
		t.Errorf("Read outside a task = %v", err)
	}
	r.FeedData([]byte("x\n"))
	// No wait needed: it reads.
	if line, err := r.ReadLine(context.Background()); err != nil || string(line) != "x\n" {
		t.Errorf("ReadLine = %q %v", line, err)
	}
}

// BenchmarkStreamReaderLines feeds 64-byte lines and reads them back with
// ReadLine, without a wait: the buffer's own cost.
func BenchmarkStreamReaderLines(b *testing.B) {
	_, _ = loop.Run(context.Background(), func(ctx context.Context) (struct{}, error) {
		r := loop.NewStreamReader(0)
		line := append(bytes.Repeat([]byte("l"), 63), '\n')
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for range b.N {
			r.FeedData(line)
			if _, err := r.ReadLine(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return struct{}{}, nil
	})
}

// ReadInto, the allocation-free Read: it waits for data, fills at most
// len(p), leaves the rest buffered, returns 0 at EOF; a timed-out one takes
// nothing; an exception set on the reader is returned.
func TestStreamReadInto(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		buf := make([]byte, 4)
		tctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		if _, err := r.ReadInto(tctx, buf); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReadInto with nothing buffered and a deadline = %v", err)
		}
		cancel()
		feedStreamSoon(ctx, r, true, "line1", "line2")
		n, err := r.ReadInto(ctx, buf)
		if err != nil || string(buf[:n]) != "line" {
			t.Errorf("ReadInto = %q, %v; want line", buf[:n], err)
		}
		checkStreamBuffer(t, r, "1line2")
		var all []byte
		for {
			n, err := r.ReadInto(ctx, buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			all = append(all, buf[:n]...)
		}
		if string(all) != "1line2" || !r.AtEOF() {
			t.Errorf("read %q to EOF; AtEOF %v", all, r.AtEOF())
		}
		if n, err := r.ReadInto(ctx, nil); n != 0 || err != nil {
			t.Errorf("ReadInto(nil) = %d, %v", n, err)
		}
		r2 := loop.NewStreamReader(0)
		r2.SetException(errors.New("boom"))
		if _, err := r2.ReadInto(ctx, buf); err == nil || err.Error() != "boom" {
			t.Errorf("ReadInto after SetException = %v", err)
		}
	})
}

// ReadInto allocates nothing in steady state.
func TestStreamReadIntoAllocs(t *testing.T) {
	inTask(t, func(ctx context.Context) {
		r := loop.NewStreamReader(0)
		chunk := make([]byte, 1000)
		buf := make([]byte, 600)
		r.FeedData(chunk)
		r.ReadInto(ctx, buf)
		r.ReadInto(ctx, buf)
		allocs := testing.AllocsPerRun(100, func() {
			r.FeedData(chunk)
			r.ReadInto(ctx, buf)
			r.ReadInto(ctx, buf)
		})
		if allocs != 0 {
			t.Errorf("FeedData + ReadInto allocate %v per round", allocs)
		}
	})
}
