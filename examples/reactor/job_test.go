package main

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/internal/cpuburn"
)

// A Batch crosses gob whole, its messages decoded into the arena, which the
// next batch reuses once processBatch has run.
func TestBatchGobArena(t *testing.T) {
	var wire bytes.Buffer
	enc, dec := gob.NewEncoder(&wire), gob.NewDecoder(&wire)
	sizes := []int{0, 1, 1000, 64 << 10, 300 << 10}
	var first *byte
	for round := range 3 {
		in := Batch{CPU: time.Duration(round)}
		for i, n := range sizes {
			in.Msgs = append(in.Msgs, payload(n, round*10+i))
		}
		if err := enc.Encode(in); err != nil {
			t.Fatal(err)
		}
		var out Batch
		if err := dec.Decode(&out); err != nil {
			t.Fatal(err)
		}
		if len(out.Msgs) != len(in.Msgs) || out.CPU != in.CPU {
			t.Fatalf("round %d: decoded %d messages, CPU %v; want %d, %v", round, len(out.Msgs), out.CPU, len(in.Msgs), in.CPU)
		}
		for i := range in.Msgs {
			if !bytes.Equal(out.Msgs[i], in.Msgs[i]) {
				t.Errorf("round %d, message %d: decoded %d bytes differ", round, i, len(out.Msgs[i]))
			}
		}
		res, err := processBatch(Batch{Msgs: out.Msgs})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != "" || !bytes.Equal(r.Data, sha256Sum(in.Msgs[i])) {
				t.Errorf("round %d, result %d: %x %q; want the digest", round, i, r.Data, r.Err)
			}
		}
		if len(arena) != 0 {
			t.Errorf("round %d: the arena holds %d bytes after the batch; want 0", round, len(arena))
		}
		if p := &arena[:1][0]; round == 0 {
			first = p
		} else if p != first {
			t.Errorf("round %d: the arena was reallocated; want it reused", round)
		}
	}
}

// -cpu spends the thread's CPU time, and the result is still the digest.
func TestProcessCPU(t *testing.T) {
	msg := payload(100, 1)
	start := cpuburn.ThreadCPU()
	data, err := process(msg, 20*time.Millisecond)
	if spent := cpuburn.ThreadCPU() - start; spent < 20*time.Millisecond {
		t.Errorf("process spent %v of CPU time; want at least 20ms", spent)
	}
	if err != nil || !bytes.Equal(data, sha256Sum(msg)) {
		t.Errorf("process = %x, %v; want the digest", data, err)
	}
}
