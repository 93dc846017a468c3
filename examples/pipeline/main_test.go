package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	executor.Init() // a stage's process runs here and exits
	goleak.VerifyTestMain(m)
}

// want is the summary computed here, in one process: item i is
// byte(i*7 + j%251) at offset j, inverted.
func want(n, transformers int) string {
	crcs := make([]uint32, n)
	data := make([]byte, 2<<20)
	for i := range n {
		for j := range data {
			data[j] = ^byte(i*7 + j%251)
		}
		crcs[i] = crc32.ChecksumIEEE(data)
	}
	sums := crc32.NewIEEE()
	for _, c := range crcs {
		fmt.Fprintf(sums, "%08x", c)
	}
	return fmt.Sprintf("%d items of 2 MiB: made by 1 process, inverted by %d, checksummed by 1\n", n, transformers) +
		fmt.Sprintf("item 0: crc32 %08x; item %d: crc32 %08x\n", crcs[0], n-1, crcs[n-1]) +
		fmt.Sprintf("%d MiB checksummed; crc32 of the checksums in item order: %08x\n", 2*n, sums.Sum32())
}

// The pipeline's output is exact whatever order the transformers finish
// in: the parent orders the results by item, and its GetNowaits after the
// joins find every one (pipeline fails otherwise).
func TestPipeline(t *testing.T) {
	for _, tc := range []struct{ n, transformers int }{{16, 2}, {1, 1}, {5, 3}} {
		t.Run(fmt.Sprintf("n=%d,transformers=%d", tc.n, tc.transformers), func(t *testing.T) {
			os.Args = []string{"pipeline", "-n", strconv.Itoa(tc.n), "-transformers", strconv.Itoa(tc.transformers)}
			start := time.Now()
			exampletest.Expect(t, main, want(tc.n, tc.transformers))
			d := time.Since(start)
			t.Logf("%d MiB through 3 stages in %v (%.0f MiB/s)", 2*tc.n, d, float64(2*tc.n)/d.Seconds())
		})
	}
}
