package main

import (
	"os"
	"strings"
	"testing"

	"github.com/asyncgo/asyncgo/internal/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The virtual clock makes the interleaving exact: each worker takes the
// next item in queue order as it becomes free; at 300ms worker-2's timer
// and worker-1's are due together, and run in the order they were set.
func TestQueueWorkers(t *testing.T) {
	const want = "worker-1 has slept for 200ms\n" +
		"worker-2 has slept for 300ms\n" +
		"worker-1 has slept for 100ms\n" +
		"worker-0 has slept for 500ms\n" +
		"worker-1 has slept for 250ms\n" +
		"worker-0 has slept for 150ms\n" +
		"worker-2 has slept for 400ms\n" +
		"====\n" +
		"3 workers slept in parallel for 700ms\n" +
		"total expected sleep time: 1.9s\n"
	exampletest.Expect(t, main, want)
}

// TestCookbookShowsExamples keeps docs/cookbook.md in step with the
// examples: each one's code after its imports is in a ```go block there.
func TestCookbookShowsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"queue_workers", "pipeline", "fanout", "taskgroup", "periodic", "procpool"} {
		src, err := os.ReadFile("../" + name + "/main.go")
		if err != nil {
			t.Fatal(err)
		}
		_, body, ok := strings.Cut(string(src), "\n)\n")
		if !ok {
			t.Fatalf("%s/main.go has no import block", name)
		}
		if !strings.Contains(string(doc), "```go\n"+strings.TrimLeft(body, "\n")+"```\n") {
			t.Errorf("docs/cookbook.md does not show examples/cookbook/%s/main.go as it is", name)
		}
	}
}
