package main

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/cpuburn"
)

// process is the job, what the server does with one message, in a worker
// process: here the message's SHA-256 digest, after cpu of CPU time spent
// (-cpu). Replace it with your own; its result is the reply's payload
// after the status byte 0, and an error (or a panic) becomes a status-1
// reply with its text, for that message alone.
func process(msg []byte, cpu time.Duration) ([]byte, error) {
	sum := sha256.Sum256(msg)
	if cpu > 0 {
		cpuburn.Burn(cpu, sum)
	}
	return sum[:], nil
}

// Batch is the argument of one call to a worker process: messages that
// were waiting together, processed in turn. Its fields are exported
// because they cross into the worker with gob.
type Batch struct {
	Msgs []Message
	CPU  time.Duration // CPU time process spends on each message (-cpu)
}

// Result is the answer for one message of a Batch.
type Result struct {
	Data []byte // process's result
	Err  string // or its error; "" for none
}

// batchJob is the function the pool runs: registered during package
// initialisation so that a worker process, a re-execution of this binary,
// knows it by name before executor.Init serves the pool. One call per
// batch rather than per message: under load the cost of a call (a
// wake-up and a write on each side) is shared by the messages of a batch,
// as ProcessPoolExecutor.map's chunksize shares it.
var batchJob = executor.Register("reactor.batch", processBatch)

func processBatch(b Batch) ([]Result, error) {
	defer resetArena()
	res := make([]Result, len(b.Msgs))
	for i, m := range b.Msgs {
		res[i] = processOne(m, b.CPU)
	}
	return res, nil
}

// processOne runs process for one message; a panic fails that message
// only, not its batch.
func processOne(msg []byte, cpu time.Duration) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{Err: fmt.Sprintf("reactor: the job panicked: %v", p)}
		}
	}()
	data, err := process(msg, cpu)
	if err != nil {
		return Result{Err: err.Error()}
	}
	return Result{Data: data}
}

// Message is a message's bytes. A worker process decodes the messages of
// a batch into one arena it reuses for every batch: gob would allocate a
// fresh slice for each message, and a 2 MiB allocation per message costs
// the worker more (fresh pages to fault in, collections) than hashing it.
// A worker runs one call at a time and decodes the next only after
// answering this one, so the arena is free again when the next batch
// arrives.
type Message []byte

// arena holds the messages of the batch a worker process runs; need is
// their bytes so far.
var (
	arena []byte
	need  int
)

// resetArena frees the arena for the next batch, with room for all of a
// batch like this one.
func resetArena() {
	if cap(arena) < need {
		arena = make([]byte, 0, need)
	}
	arena, need = arena[:0], 0
}

// GobEncode sends the bytes as they are (gob copies them into its own
// buffer).
func (m Message) GobEncode() ([]byte, error) { return m, nil }

// GobDecode copies b, which is the decoder's, into the arena. When the
// arena is full a larger one replaces it (the messages already in the old
// one keep it alive until the batch is done).
func (m *Message) GobDecode(b []byte) error {
	need += len(b)
	if cap(arena)-len(arena) < len(b) {
		arena = make([]byte, 0, max(2*cap(arena), len(b)))
	}
	start := len(arena)
	arena = append(arena, b...)
	*m = arena[start:len(arena):len(arena)]
	return nil
}
