package processpool

import (
	"bytes"
	"encoding/gob"
	"math/rand/v2"
	"strings"
	"testing"
)

type fitsPoint struct {
	X, Y int64
	Name string
	Tags []string
	In   *fitsPoint
}

// fits is an upper bound: for random values, whenever it says a value
// fits in L bytes, gob's encoding of it (past the type's first message)
// is at most L; and it says so for L = the real size plus its slack.
func TestFitsIsABound(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	str := func() string { return strings.Repeat("x", r.IntN(300)) }
	for i := range 2000 {
		var v any
		switch i % 5 {
		case 0:
			s := make([]int, r.IntN(3000))
			for k := range s {
				s[k] = int(r.Int64()) >> r.IntN(64)
			}
			v = s
		case 1:
			v = make([]byte, r.IntN(5000))
		case 2:
			v = str()
		case 3:
			p := fitsPoint{X: r.Int64(), Y: -r.Int64(), Name: str(), Tags: []string{str(), str()}}
			if r.IntN(2) == 0 {
				p.In = &fitsPoint{Name: str()}
			}
			v = p
		case 4:
			s := make([]float64, r.IntN(1000))
			for k := range s {
				s[k] = r.NormFloat64()
			}
			v = s
		}
		var buf bytes.Buffer
		enc := gob.NewEncoder(&buf)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		size := buf.Len()
		if fits(v, size-1) {
			t.Fatalf("fits(%T of %d bytes, %d) = true", v, size, size-1)
		}
	}
	for _, v := range []any{nil, map[int]int{}, []any{1}, func() {}} {
		if fits(v, 1<<20) {
			t.Errorf("fits(%T) = true; want false for what it cannot bound", v)
		}
	}
}
