package main

import (
	"crypto/sha256"
	"runtime"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"golang.org/x/sys/unix"
)

// Job is the argument of the job a worker process runs for one message.
// Its fields are exported because they cross into the worker with gob.
type Job struct {
	Msg Message       // the message, the frame's payload
	CPU time.Duration // CPU time to spend on it before answering (-cpu)
}

// Message is a message's bytes, which a worker process decodes into one
// buffer it reuses for every message: gob would allocate a fresh slice
// for each, and a 2 MiB allocation per message costs the worker more
// (fresh pages to fault in, collections) than hashing it. A worker runs
// one call at a time, decoding the next only after answering this one,
// so the buffer is free again when the next message arrives.
type Message []byte

// workerBuf is the buffer of Message.GobDecode, in a worker process.
var workerBuf []byte

// GobEncode sends the bytes as they are (gob copies them into its own
// buffer).
func (m Message) GobEncode() ([]byte, error) { return m, nil }

// GobDecode copies b, which is the decoder's, into the reused buffer.
func (m *Message) GobDecode(b []byte) error {
	workerBuf = append(workerBuf[:0], b...)
	*m = workerBuf
	return nil
}

// Digest is the job's result: the message's SHA-256 digest.
type Digest = [sha256.Size]byte

// digestJob is the job: registered during package initialisation so that
// a worker process, a re-execution of this binary, knows it by name before
// executor.Init serves the pool. Replace it (and Digest) with your own
// function; an error it returns becomes a status-1 reply with its text.
var digestJob = executor.Register("reactor.digest", digest)

func digest(j Job) (Digest, error) {
	sum := sha256.Sum256(j.Msg)
	if j.CPU > 0 {
		burnCPU(j.CPU, sum)
	}
	return sum, nil
}

// burnCPU hashes until the calling thread has spent d of CPU time: real
// work, measured on the thread's own clock, so that an oversubscribed
// machine (more workers than cores) makes a message neither cheaper nor
// dearer, as a sleep or a wall-clock spin would.
func burnCPU(d time.Duration, seed Digest) Digest {
	runtime.LockOSThread() // CLOCK_THREAD_CPUTIME_ID is this thread's
	defer runtime.UnlockOSThread()
	start := threadCPU()
	h := seed
	for threadCPU()-start < d {
		for range 32 { // about 10 µs of hashing between two clock reads
			h = sha256.Sum256(h[:])
		}
	}
	return h
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic("reactor: clock_gettime(CLOCK_THREAD_CPUTIME_ID): " + err.Error())
	}
	return time.Duration(ts.Nano())
}
