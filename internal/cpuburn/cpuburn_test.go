package cpuburn

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Burn spends at least the CPU time asked, on the calling thread's clock,
// and hashes to get there.
func TestBurn(t *testing.T) {
	runtime.LockOSThread() // so that both clock reads are of Burn's thread
	defer runtime.UnlockOSThread()
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		seed := [32]byte{1}
		start := ThreadCPU()
		h := Burn(d, seed)
		if spent := ThreadCPU() - start; spent < d {
			t.Errorf("Burn(%v) spent %v of CPU time", d, spent)
		}
		if d > 0 && h == seed {
			t.Errorf("Burn(%v) did no hashing", d)
		}
	}
}
