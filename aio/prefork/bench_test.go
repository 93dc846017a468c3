//go:build linux

package prefork_test

import (
	"context"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/aio/prefork"
)

// BenchmarkReload is the time to replace a worker: from Reload to the
// replacement serving and the old worker exited (a fork and exec of this
// binary, its start, the listener's hand-over, the old one's drain).
func BenchmarkReload(b *testing.B) {
	exits := make(chan struct{}, 1)
	m, err := prefork.Start(lineServer, prefork.Options{
		Addr: "127.0.0.1:0", Workers: 1,
		OnWorkerExit: func(prefork.WorkerInfo) { exits <- struct{}{} },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = m.Stop(10 * time.Second) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := m.Reload(); err != nil {
			b.Fatal(err)
		}
		<-exits
	}
	b.StopTimer()
	go func() {
		for range exits {
		}
	}()
	_ = m.Stop(10 * time.Second)
	close(exits)
}
