package eventfd_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/eventfd"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T) *eventfd.FD {
	t.Helper()
	f, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Wakes before a Wait make it return once; the next Wait times out.
func TestWakesCoalesce(t *testing.T) {
	f := open(t)
	for range 3 {
		f.Wake()
	}
	if err := f.Wait(time.Time{}); err != nil {
		t.Fatalf("Wait() after Wake = %v; want nil", err)
	}
	if err := f.Wait(time.Now().Add(5 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second Wait() = %v; want os.ErrDeadlineExceeded", err)
	}
}

// A Wake from another goroutine ends a Wait in progress, every time.
func TestWakeAcrossGoroutines(t *testing.T) {
	f := open(t)
	const rounds = 1000
	ack := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range rounds {
			f.Wake()
			<-ack
		}
	})
	for range rounds {
		if err := f.Wait(time.Time{}); err != nil {
			t.Fatalf("Wait() = %v", err)
		}
		ack <- struct{}{}
	}
	wg.Wait()
}

// Close ends a Wait in progress; Wake after Close does nothing.
func TestCloseEndsWait(t *testing.T) {
	f, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- f.Wait(time.Time{}) }()
	f.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait() across Close = %v; want os.ErrClosed", err)
	}
	f.Wake()
}
