package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// stats are a drive's counts.
type stats struct {
	ok, failed, resent int64
	err                error // the first failure
}

// drive sends requests messages of size bytes over conns connections, one
// message at a time on each, and checks every answer. A message whose
// connection closes before any byte of its answer is sent again on a new
// connection, up to 20 times; any other error fails it.
func drive(addr string, requests, conns, size int) stats {
	var (
		next, ok, failed, resent atomic.Int64
		mu                       sync.Mutex
		first                    error
		wg                       sync.WaitGroup
	)
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var rd *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			msg := make([]byte, 4+size)
			binary.BigEndian.PutUint32(msg, uint32(size))
			for {
				i := next.Add(1)
				if i > int64(requests) {
					return
				}
				binary.BigEndian.PutUint64(msg[4:], uint64(i)) // size >= 8: each message differs
				want := sha256.Sum256(msg[4:])
				var err error
				for try := 0; ; try++ {
					if try == 20 {
						fail(fmt.Errorf("message %d: %d tries, the last: %w", i, try, err))
						break
					}
					if c == nil {
						if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
							c = nil
							resent.Add(1)
							time.Sleep(10 * time.Millisecond)
							continue
						}
						rd = bufio.NewReaderSize(c, 64<<10)
					}
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					var got []byte
					var partial bool
					if _, err = c.Write(msg); err == nil {
						got, partial, err = readFrame(rd)
					}
					if err != nil && !partial && !errors.Is(err, errTimeout) {
						c.Close() // closed by a worker that stops: again, elsewhere
						c = nil
						resent.Add(1)
						continue
					}
					switch {
					case err != nil:
						fail(fmt.Errorf("message %d: %w", i, err))
					case len(got) != 1+sha256.Size || got[0] != 0 || !bytes.Equal(got[1:], want[:]):
						fail(fmt.Errorf("message %d: answer %q", i, got))
					default:
						ok.Add(1)
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	return stats{ok: ok.Load(), failed: failed.Load(), resent: resent.Load(), err: first}
}

var errTimeout = errors.New("no answer in 30 s")

// readFrame reads one answer; partial reports that some of it came.
func readFrame(rd *bufio.Reader) ([]byte, bool, error) {
	var hdr [4]byte
	n, err := io.ReadFull(rd, hdr[:])
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			err = errTimeout
		}
		return nil, n > 0, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, true, err
	}
	return b, true, nil
}
