// Command gnet is the gnet peer of the network benchmarks
// (docs/bench/net.sh): an echo server on github.com/panjf2000/gnet/v2 with
// ONE event loop (no multicore), the same shape as one asyncgo loop. It is a
// module of its own so that the library's go.mod never requires gnet.
//
//	go build -o /tmp/gnet-echo . && /tmp/gnet-echo -addr 127.0.0.1:9000
//
// -addr takes host:port or unix:/path. It prints "pid N listening on ADDR"
// and serves until it is killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

type echo struct {
	gnet.BuiltinEventEngine
	addr string
}

func (e *echo) OnBoot(gnet.Engine) gnet.Action {
	fmt.Printf("pid %d listening on %s\n", os.Getpid(), e.addr)
	return gnet.None
}

// OnTraffic writes back everything that has arrived: Next(-1) hands over
// the inbound buffer, Write sends it at once and keeps what the socket did
// not take, as gnet's own echo example does.
func (e *echo) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address: host:port, or unix:/path")
	flag.Parse()
	proto := "tcp://" + *addr
	if p, ok := strings.CutPrefix(*addr, "unix:"); ok {
		proto = "unix://" + p
		_ = os.Remove(p)
	}
	err := gnet.Run(&echo{addr: *addr}, proto,
		gnet.WithMulticore(false),
		gnet.WithNumEventLoop(1),
		gnet.WithLogLevel(logging.ErrorLevel),
	)
	if err != nil {
		log.Fatal(err)
	}
}
