package natsexec

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/asyncgo/asyncgo/internal/child"
	"github.com/asyncgo/asyncgo/internal/wire"
)

// Local workers are this binary re-executed (internal/child, as the
// ProcessPool's), started by executor.Init in the child: the parent sends
// the worker's ServeOptions on the control socket, and closing it (or the
// parent's death) ends the worker's ctx; Pdeathsig backs that up.

const workerRole = "natsexec-worker"

func init() { child.RegisterRole(workerRole, localWorkerMain) }

// workerConfig is what a local worker receives.
type workerConfig struct {
	URL         string
	Stream      string
	MaxInFlight int
}

func localWorkerMain(ctrl *os.File) int {
	rd := wire.NewReader(ctrl)
	var cfg workerConfig
	if rd.Next() != nil || rd.Decode(&cfg) != nil {
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, ctrl) // EOF: the parent is done with us
		cancel()
	}()
	if err := Serve(ctx, ServeOptions{URL: cfg.URL, Stream: cfg.Stream, MaxInFlight: cfg.MaxInFlight}); err != nil {
		fmt.Fprintln(os.Stderr, "natsexec worker:", err)
		return 1
	}
	return 0
}

type localWorkers struct {
	sp    *child.Spawner
	mu    sync.Mutex
	procs []*child.Process
	live  map[*child.Process]bool
	wg    sync.WaitGroup
}

func startLocalWorkers(n int, opts ServeOptions) (*localWorkers, error) {
	if err := child.CanSpawn(); err != nil {
		return nil, fmt.Errorf("natsexec: local workers: %w", err)
	}
	l := &localWorkers{sp: child.NewSpawner(), live: make(map[*child.Process]bool)}
	for range n {
		p, err := l.sp.Start(workerRole)
		if err != nil {
			l.stop()
			return nil, fmt.Errorf("natsexec: local worker: %w", err)
		}
		l.mu.Lock()
		l.procs = append(l.procs, p)
		l.live[p] = true
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_, _ = p.Wait()
			l.mu.Lock()
			delete(l.live, p)
			l.mu.Unlock()
		}()
		if err := wire.NewWriter(p.Ctrl).Send(workerConfig{URL: opts.URL, Stream: opts.Stream, MaxInFlight: opts.MaxInFlight}); err != nil {
			l.stop()
			return nil, fmt.Errorf("natsexec: local worker: %w", err)
		}
	}
	return l, nil
}

func (l *localWorkers) pids() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	for _, p := range l.procs {
		if l.live[p] {
			pids = append(pids, p.Pid())
		}
	}
	return pids
}

// stop closes every worker's control socket, which ends its Serve, and
// waits for them to exit.
func (l *localWorkers) stop() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		_ = p.Ctrl.Close()
	}
	l.wg.Wait()
	l.sp.Close()
}
