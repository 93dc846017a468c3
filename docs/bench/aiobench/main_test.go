//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if rawChild() { // a floor's child, this test binary re-executed
		return
	}
	executor.Init() // a child of a Process or a Pool runs here and exits
	goleak.VerifyTestMain(m)
}

// TestWorkloads runs every workload with a tiny -n and checks the lines
// it prints: well-formed JSON, the impl, names and metrics that
// docs/bench/aioreport.py matches, and positive values.
func TestWorkloads(t *testing.T) {
	for _, tc := range []struct {
		workload, n string
		want        []string // "impl name metric" of each line, in order
	}{
		{"queue_small", "200", []string{"asyncgo queue_small items/s", "asyncgo queue_small µs/item"}},
		{"queue_2mib", "8", []string{"asyncgo queue_2mib MB/s", "asyncgo queue_2mib items/s"}},
		{"raw_socketpair_2mib", "8", []string{"go-raw raw_socketpair_2mib MB/s", "go-raw raw_socketpair_2mib items/s"}},
		{"event_roundtrip", "50", []string{"asyncgo event_roundtrip µs/roundtrip"}},
		{"lock_roundtrip", "50", []string{"asyncgo lock_roundtrip µs/roundtrip"}},
		{"queue_roundtrip", "50", []string{"asyncgo queue_roundtrip µs/roundtrip"}},
		{"pipe_roundtrip", "50", []string{"go-raw pipe_roundtrip µs/roundtrip", "go-raw pipe_roundtrip_netpoll µs/roundtrip"}},
		{"pool_map", "1000", []string{"asyncgo pool_map items/s"}},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run([]string{"-workload=" + tc.workload, "-n=" + tc.n}, &stdout, &stderr); code != 0 {
				t.Fatalf("run(-workload=%s) = %d; want 0; stderr:\n%s", tc.workload, code, stderr.String())
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
				var r map[string]any
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				v, ok := r["value"].(float64)
				if !ok || !(v > 0) || math.IsInf(v, 0) {
					t.Errorf("line %q: value %v; want a positive number", line, r["value"])
				}
				if r["unit"] != r["metric"] {
					t.Errorf("line %q: unit %v; want the metric, %v", line, r["unit"], r["metric"])
				}
				got = append(got, r["impl"].(string)+" "+r["name"].(string)+" "+r["metric"].(string))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-workload=nope"},
		{},
		{"-workload=queue_small", "-n=-1"},
		{"-workload=queue_small", "extra"},
		{"-bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d; want 2", args, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) printed %q; want nothing", args, stdout.String())
		}
	}
}
