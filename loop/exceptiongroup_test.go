package loop_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/asyncgo/asyncgo/loop"
)

type codeErr struct{ code int }

func (e *codeErr) Error() string { return fmt.Sprintf("code %d", e.code) }

// Mirrors test_exception_group.py: ExceptionGroupSplitTests
// (test_basics_split_by_type__match, _no_match, _passthrough and
// test_basics_subgroup_split__bad_arg_type's shapes): a nested group split
// by an error type and by a sentinel keeps the nesting and the message.
func TestExceptionGroupSplit(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	c1, c2 := &codeErr{1}, fmt.Errorf("wrapped: %w", &codeErr{2})
	inner := &loop.ExceptionGroup{Msg: "inner", Errs: []error{c1, errB}}
	eg := &loop.ExceptionGroup{Msg: "outer", Errs: []error{errA, inner, c2}}

	matched, rest := eg.Split(loop.As[*codeErr]())
	want := &loop.ExceptionGroup{Msg: "outer", Errs: []error{&loop.ExceptionGroup{Msg: "inner", Errs: []error{c1}}, c2}}
	sameAs(t, "Split(As[*codeErr]) matched", want.Error(), matched.Error())
	wantRest := &loop.ExceptionGroup{Msg: "outer", Errs: []error{errA, &loop.ExceptionGroup{Msg: "inner", Errs: []error{errB}}}}
	sameAs(t, "Split(As[*codeErr]) rest", wantRest.Error(), rest.Error())
	if !errors.Is(rest, errA) || errors.Is(rest, c1) {
		t.Errorf("rest %v: want errA in it, not c1", rest)
	}

	// Nothing matches: the matched part is a nil error (not a typed nil),
	// the rest is the group itself.
	matched, rest = eg.Split(loop.Is(loop.ErrTimeout))
	if matched != nil || rest != error(eg) {
		t.Errorf("Split(no match) = %v, %v; want nil, the group itself", matched, rest)
	}
	// Everything matches: the group itself, and a nil rest.
	matched, rest = eg.Split(func(error) bool { return true })
	if matched != error(eg) || rest != nil {
		t.Errorf("Split(all) = %v, %v; want the group itself, nil", matched, rest)
	}
	if sub := eg.Subgroup(loop.Is(errB)); sub == nil || !errors.Is(sub, errB) || errors.Is(sub, errA) {
		t.Errorf("Subgroup(Is(errB)) = %v", sub)
	}
	if sub := eg.Subgroup(loop.Is(loop.ErrCancelled)); sub != nil {
		t.Errorf("Subgroup(no match) = %v; want nil", sub)
	}
}

// errors.As over a group finds the first matching member, depth first:
// the documented "what it finds".
func TestExceptionGroupErrorsAsFindsFirst(t *testing.T) {
	eg := &loop.ExceptionGroup{Msg: "g", Errs: []error{
		errors.New("x"),
		&loop.ExceptionGroup{Msg: "inner", Errs: []error{&codeErr{7}}},
		&codeErr{8},
	}}
	var ce *codeErr
	if !errors.As(eg, &ce) || ce.code != 7 {
		t.Errorf("errors.As(group) = %v; want the first member, code 7", ce)
	}
}

// except* over a TaskGroup: handle the timeouts, return the rest.
func TestExceptionGroupSplitFromTaskGroup(t *testing.T) {
	boom := errors.New("boom")
	inTask(t, func(ctx context.Context) {
		var tg loop.TaskGroup
		err := tg.Do(ctx, func(ctx context.Context) error {
			_, _ = loop.SpawnIn(&tg, func(ctx context.Context) (int, error) { return 0, loop.ErrTimeout })
			_, _ = loop.SpawnIn(&tg, func(ctx context.Context) (int, error) { return 0, boom })
			return nil
		})
		var eg *loop.ExceptionGroup
		if !errors.As(err, &eg) {
			t.Fatalf("TaskGroup = %v; want an ExceptionGroup", err)
		}
		timeouts, rest := eg.Split(loop.Is(loop.ErrTimeout))
		if timeouts == nil || !errors.Is(rest, boom) || errors.Is(rest, loop.ErrTimeout) {
			t.Errorf("Split = %v, %v", timeouts, rest)
		}
	})
}

// A randomized test against a reference model: the leaves of the matched
// part are exactly the matching leaves in order, those of the rest the
// others, every group in either part keeps its message, and no part holds
// an empty group.
func TestExceptionGroupSplitRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var build func(depth int) *loop.ExceptionGroup
	leafN := 0
	build = func(depth int) *loop.ExceptionGroup {
		g := &loop.ExceptionGroup{Msg: fmt.Sprintf("g%d", depth)}
		for range 1 + rng.IntN(4) {
			if depth < 3 && rng.IntN(3) == 0 {
				g.Errs = append(g.Errs, build(depth+1))
			} else {
				leafN++
				g.Errs = append(g.Errs, &codeErr{leafN})
			}
		}
		return g
	}
	var leaves func(err error, out *[]int)
	leaves = func(err error, out *[]int) {
		if g, ok := err.(*loop.ExceptionGroup); ok {
			if len(g.Errs) == 0 {
				t.Errorf("empty group %q in a part", g.Msg)
			}
			for _, e := range g.Errs {
				leaves(e, out)
			}
			return
		}
		if err != nil {
			*out = append(*out, err.(*codeErr).code)
		}
	}
	for range 500 {
		eg := build(0)
		mod := 1 + rng.IntN(4)
		match := func(err error) bool { return err.(*codeErr).code%mod == 0 }
		var all, wantM, wantR []int
		leaves(eg, &all)
		for _, c := range all {
			if c%mod == 0 {
				wantM = append(wantM, c)
			} else {
				wantR = append(wantR, c)
			}
		}
		m, r := eg.Split(match)
		var gotM, gotR []int
		leaves(m, &gotM)
		leaves(r, &gotR)
		sameAs(t, "matched leaves", wantM, gotM)
		sameAs(t, "rest leaves", wantR, gotR)
		if (m == nil) != (len(wantM) == 0) || (r == nil) != (len(wantR) == 0) {
			t.Fatalf("nil parts wrong: %v / %v for %v / %v", m, r, wantM, wantR)
		}
		var sub []int
		leaves(eg.Subgroup(match), &sub)
		sameAs(t, "Subgroup leaves", wantM, sub)
	}
}
