//go:build !linux

package child

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

func supported() error {
	return fmt.Errorf("child processes need Linux (Pdeathsig, pidfds, POLLRDHUP): %w", errors.ErrUnsupported)
}

// Spawner starts children; off Linux it starts none.
type Spawner struct{}

// NewSpawner returns a spawner.
func NewSpawner() *Spawner { return &Spawner{} }

// Close stops the spawner.
func (s *Spawner) Close() {}

// Process is a started child; off Linux there are none.
type Process struct {
	Ctrl *os.File // the parent's end of the control socket
}

// Start returns an error wrapping errors.ErrUnsupported.
func (s *Spawner) Start(role string) (*Process, error) {
	if err := CanSpawn(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	return nil, fmt.Errorf("child: %w", supported())
}

// Pid returns the child's process id.
func (p *Process) Pid() int { return 0 }

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error { return os.ErrProcessDone }

// KillGroup sends sig to the child's process group.
func (p *Process) KillGroup(sig syscall.Signal) {}

// Wait waits for the child to exit and reaps it.
func (p *Process) Wait() (*os.ProcessState, error) { return nil, supported() }

// WatchParent makes the child exit as soon as the parent's end of ctrl
// closes.
func WatchParent(ctrl *os.File) {}
