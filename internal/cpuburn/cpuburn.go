// Package cpuburn spends a fixed amount of a thread's CPU time on real
// work, the examples' and benchmarks' stand-in for a CPU-bound job.
package cpuburn

import (
	"crypto/sha256"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Burn hashes until the calling thread has spent d of CPU time: real
// work, measured on the thread's own clock, so that an oversubscribed
// machine (more workers than cores) makes a job neither cheaper nor
// dearer, as a sleep or a wall-clock spin would.
func Burn(d time.Duration, seed [sha256.Size]byte) [sha256.Size]byte {
	runtime.LockOSThread() // CLOCK_THREAD_CPUTIME_ID is this thread's
	defer runtime.UnlockOSThread()
	start := ThreadCPU()
	h := seed
	for ThreadCPU()-start < d {
		for range 8 { // a few µs of hashing between two clock reads
			h = sha256.Sum256(h[:])
		}
	}
	return h
}

// ThreadCPU is the CPU time the calling thread has used.
func ThreadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic("cpuburn: clock_gettime(CLOCK_THREAD_CPUTIME_ID): " + err.Error())
	}
	return time.Duration(ts.Nano())
}
