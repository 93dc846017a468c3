package loop_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// errDiv stands for Python's ZeroDivisionError in the ported cases.
var errDiv = errors.New("division by zero")

// sleepThen sleeps d, then returns err.
func sleepThen(d time.Duration, err error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if e := loop.Sleep(ctx, d); e != nil {
			return e
		}
		return err
	}
}

// groupErrs returns the members of an *ExceptionGroup, or fails the test.
func groupErrs(t *testing.T, err error) []error {
	t.Helper()
	var eg *loop.ExceptionGroup
	if !errors.As(err, &eg) {
		t.Fatalf("err = %v; want an *ExceptionGroup", err)
	}
	if eg.Msg != "unhandled errors in a TaskGroup" {
		t.Errorf("Msg = %q; want %q", eg.Msg, "unhandled errors in a TaskGroup")
	}
	return eg.Errs
}

// Mirrors test_taskgroups.py: test_taskgroup_01 (exit waits for every child;
// invariant I61).
func TestTaskGroupWaitsForChildren(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		start := loopOf(ctx).Time()
		var t1, t2 *loop.Task[int]
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			t1, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 42, loop.Sleep(ctx, 100*time.Millisecond) })
			t2, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 11, loop.Sleep(ctx, 200*time.Millisecond) })
			return nil
		})
		if err != nil {
			return 0, err
		}
		v1, _ := t1.Result()
		v2, _ := t2.Result()
		if v1 != 42 || v2 != 11 {
			t.Errorf("results = %d, %d; want 42, 11", v1, v2)
		}
		if d := since(ctx, start); d != 200*time.Millisecond {
			t.Errorf("elapsed = %v; want 200ms", d)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_03 (invariant I62: a child that
// is merely cancelled does not fail the group).
func TestTaskGroupCancelledChildIsFine(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		var t1, t2 *loop.Task[int]
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			t1, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 42, loop.Sleep(ctx, time.Second) })
			if err := loop.Sleep(ctx, 150*time.Millisecond); err != nil {
				return err
			}
			t1.Cancel("")
			t2, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 11, loop.Sleep(ctx, 200*time.Millisecond) })
			return nil
		})
		if err != nil {
			t.Errorf("WithTaskGroup() = %v; want nil", err)
		}
		if v, _ := t2.Result(); !t1.Cancelled() || v != 11 {
			t.Errorf("t1 cancelled %v, t2 = %d; want true, 11", t1.Cancelled(), v)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_cancel_children_on_child_error (invariant
// I60: the first failure cancels the siblings and the body).
func TestTaskGroupCancelChildrenOnChildError(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		num := 0
		t2Cancel, runnerCancel := false, false
		runner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				for range 3 {
					tg.Go(sleepThen(100*time.Millisecond, errDiv))
				}
				tg.Go(func(ctx context.Context) error {
					if err := loop.Sleep(ctx, 5*time.Second); err != nil {
						t2Cancel = true
						return err
					}
					num++
					return nil
				})
				if err := loop.Sleep(ctx, 10*time.Second); err != nil {
					runnerCancel = true
					return err
				}
				return nil
			})
			if err != nil {
				return 0, err
			}
			num += 10
			return 0, nil
		})
		_, err := runner.Await(ctx)
		errs := groupErrs(t, err)
		if len(errs) != 3 || errs[0] != errDiv || errs[1] != errDiv || errs[2] != errDiv {
			t.Errorf("group = %v; want three division errors", errs)
		}
		if num != 0 || !t2Cancel || !runnerCancel {
			t.Errorf("num = %d, sibling cancelled %v, body cancelled %v; want 0, true, true", num, t2Cancel, runnerCancel)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_cancellation and test_taskgroup_07
// (invariant I64: cancelling the parent cancels the children, and the
// cancellation, message included, propagates).
func TestTaskGroupParentCancelled(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		num := 0
		foo := func(ctx context.Context) error {
			err := loop.Sleep(ctx, 5*time.Second)
			if errors.Is(err, loop.ErrCancelled) {
				num++
			}
			return err
		}
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				for range 5 {
					tg.Go(foo)
				}
				if err := loop.Sleep(ctx, 10*time.Second); err != nil {
					num += 10
					return err
				}
				return nil
			})
		})
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
		if r.Done() {
			t.Fatalf("runner done too early")
		}
		r.Cancel("test")
		_, err := r.Await(ctx)
		if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "test" {
			t.Errorf("await runner = %v; want CancelledError(test)", err)
		}
		if num != 15 {
			t.Errorf("num = %d; want 15", num)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_cancellation (the body has returned and
// the group is waiting for its children when the parent is cancelled).
func TestTaskGroupCancelledWhileExiting(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		num := 0
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				for range 5 {
					tg.Go(func(ctx context.Context) error {
						err := loop.Sleep(ctx, 5*time.Second)
						if errors.Is(err, loop.ErrCancelled) {
							num++
						}
						return err
					})
				}
				return nil
			})
		})
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
		r.Cancel("test")
		_, err := r.Await(ctx)
		if !errors.Is(err, loop.ErrCancelled) || loop.CancelMessage(err) != "test" {
			t.Errorf("await runner = %v; want CancelledError(test)", err)
		}
		if num != 5 {
			t.Errorf("num = %d; want 5", num)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_09 and test_taskgroup_10 (an
// error in the body cancels the children).
func TestTaskGroupBodyError(t *testing.T) {
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("sleep-first=%v", wait), func(t *testing.T) {
			_, err := run(t, func(ctx context.Context) (int, error) {
				var t1, t2 *loop.Task[int]
				err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
					t1, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 42, loop.Sleep(ctx, time.Second) })
					t2, _ = loop.SpawnIn(tg, func(ctx context.Context) (int, error) { return 11, loop.Sleep(ctx, 2*time.Second) })
					if wait {
						if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
							return err
						}
					}
					return errDiv
				})
				if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != errDiv {
					t.Errorf("group = %v; want [division error]", errs)
				}
				if !t1.Cancelled() || !t2.Cancelled() {
					t.Errorf("children cancelled: %v %v; want true true", t1.Cancelled(), t2.Cancelled())
				}
				return 0, nil
			})
			if err != nil {
				t.Fatalf("Run() = %v; want nil", err)
			}
		})
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_13 and test_taskgroup_14
// (nested groups: an inner group's failure reaches the outer one as a
// nested ExceptionGroup).
func TestTaskGroupNestedErrors(t *testing.T) {
	crashAfter := func(d time.Duration) func(ctx context.Context) error {
		return sleepThen(d, fmt.Errorf("value error %v", d))
	}
	for _, tc := range []struct {
		name         string
		outer, inner time.Duration
		nested       bool
	}{
		{"outer child fails", 100 * time.Millisecond, 10 * time.Second, false},
		{"inner child fails", 10 * time.Second, 100 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, func(ctx context.Context) (int, error) {
				err := loop.WithTaskGroup(ctx, func(ctx context.Context, g1 *loop.TaskGroup) error {
					g1.Go(crashAfter(tc.outer))
					return loop.WithTaskGroup(ctx, func(ctx context.Context, g2 *loop.TaskGroup) error {
						g2.Go(crashAfter(tc.inner))
						return nil
					})
				})
				errs := groupErrs(t, err)
				if len(errs) != 1 {
					t.Fatalf("group = %v; want one member", errs)
				}
				var inner *loop.ExceptionGroup
				if isGroup := errors.As(errs[0], &inner); isGroup != tc.nested {
					t.Errorf("member %v is a group: %v; want %v", errs[0], isGroup, tc.nested)
				}
				if tc.nested && (len(inner.Errs) != 1 || inner.Errs[0].Error() != "value error 100ms") {
					t.Errorf("inner group = %v; want [value error 100ms]", inner.Errs)
				}
				return 0, nil
			})
			if err != nil {
				t.Fatalf("Run() = %v; want nil", err)
			}
		})
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_15 (invariant I64: the parent
// is cancelled from outside, then a child fails while the body is still
// cleaning up: the ExceptionGroup wins over the cancellation).
func TestTaskGroupErrorsWinOverParentCancel(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, g1 *loop.TaskGroup) error {
				g1.Go(sleepThen(300*time.Millisecond, errDiv))
				err := loop.Sleep(ctx, 10*time.Second)
				if errors.Is(err, loop.ErrCancelled) {
					_ = loop.Sleep(ctx, 500*time.Millisecond)
				}
				return err
			})
		})
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
		r.Cancel("")
		_, err := r.Await(ctx)
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != errDiv {
			t.Errorf("group = %v; want [division error]", errs)
		}
		if r.Cancelled() {
			t.Errorf("the runner ended cancelled; want failed with the group")
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_16 (the same, one task deeper:
// the runner awaits the task that holds the group).
func TestTaskGroupErrorsWinOverParentCancelNested(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			nested := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
				return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, g1 *loop.TaskGroup) error {
					g1.Go(sleepThen(300*time.Millisecond, errDiv))
					err := loop.Sleep(ctx, 10*time.Second)
					if errors.Is(err, loop.ErrCancelled) {
						_ = loop.Sleep(ctx, 500*time.Millisecond)
					}
					return err
				})
			})
			return nested.Await(ctx)
		})
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
		r.Cancel("")
		_, err := r.Await(ctx)
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != errDiv {
			t.Errorf("group = %v; want [division error]", errs)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_18 (the body turns the parent's
// cancellation into an error: the group reports it).
func TestTaskGroupBodyRaisesOnCancel(t *testing.T) {
	myErr := errors.New("my exc")
	_, err := run(t, func(ctx context.Context) (int, error) {
		num := 0
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				if err := loop.Sleep(ctx, 10*time.Second); err != nil {
					num += 10
					return myErr
				}
				return nil
			})
		})
		if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
		r.Cancel("")
		_, err := r.Await(ctx)
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != myErr {
			t.Errorf("group = %v; want [my exc]", errs)
		}
		if num != 10 {
			t.Errorf("num = %d; want 10", num)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_19 (invariant I60: the group
// holds the children's errors in completion order, the body's last).
func TestTaskGroupChildAndBodyErrors(t *testing.T) {
	myErr := errors.New("my exc")
	_, err := run(t, func(ctx context.Context) (int, error) {
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(sleepThen(100*time.Millisecond, errDiv))
			_ = loop.Sleep(ctx, 10*time.Second) // nested(): raises in its finally
			return myErr
		})
		errs := groupErrs(t, err)
		if len(errs) != 2 || errs[0] != errDiv || errs[1] != myErr {
			t.Errorf("group = %v; want [division error, my exc]", errs)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_21a, adapted: Go has no
// BaseException (I63 is not ported); a panicking child is an ordinary
// failure, reported as a *PanicError in the group.
func TestTaskGroupPanickingChild(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		bodyCancelled := false
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(func(ctx context.Context) error {
				if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
				panic("my base exc")
			})
			err := loop.Sleep(ctx, 10*time.Second)
			bodyCancelled = errors.Is(err, loop.ErrCancelled)
			return err
		})
		errs := groupErrs(t, err)
		var pe *loop.PanicError
		if len(errs) != 1 || !errors.As(errs[0], &pe) || pe.Value != "my base exc" {
			t.Errorf("group = %v; want one *PanicError", errs)
		}
		if !bodyCancelled {
			t.Errorf("the body was not cancelled by the panicking child")
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_22 and test_taskgroup_11
// (nested groups, parent cancelled while waiting: a plain cancellation).
func TestTaskGroupNestedCancelled(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		r := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			return 0, loop.WithTaskGroup(ctx, func(ctx context.Context, g1 *loop.TaskGroup) error {
				g1.Go(sleepThen(time.Second, nil))
				return loop.WithTaskGroup(ctx, func(ctx context.Context, g2 *loop.TaskGroup) error {
					g2.Go(sleepThen(2*time.Second, nil))
					return loop.Sleep(ctx, 10*time.Second)
				})
			})
		})
		if err := loop.Sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
		r.Cancel("")
		if _, err := r.Await(ctx); !errors.Is(err, loop.ErrCancelled) || !r.Cancelled() {
			t.Errorf("await runner = %v, Cancelled() = %v; want CancelledError, true", err, r.Cancelled())
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_24 and test_taskgroup_25
// (invariant I61: children may add tasks while the group is exiting).
func TestTaskGroupChildrenSpawnWhileExiting(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		start := loopOf(ctx).Time()
		var spawned []error
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, g *loop.TaskGroup) error {
			return g.Go(func(ctx context.Context) error {
				if err := loop.Sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
				spawned = append(spawned, g.Go(sleepThen(100*time.Millisecond, nil)), g.Go(sleepThen(200*time.Millisecond, nil)))
				return nil
			})
		})
		if err != nil {
			t.Errorf("WithTaskGroup() = %v; want nil", err)
		}
		checkTrace(t, []error{nil, nil}, spawned)
		if d := since(ctx, start); d != 300*time.Millisecond {
			t.Errorf("elapsed = %v; want 300ms (the group waited for the late children)", d)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_no_create_task_after_failure
// (invariant I66: a group shutting down refuses new tasks).
func TestTaskGroupNoCreateTaskAfterFailure(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		var refused error
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, g *loop.TaskGroup) error {
			g.Go(sleepThen(time.Millisecond, errDiv))
			g.Go(func(ctx context.Context) error {
				if err := loop.Sleep(ctx, time.Second); errors.Is(err, loop.ErrCancelled) {
					refused = g.Go(sleepThen(time.Millisecond, errDiv))
				}
				return nil
			})
			return nil
		})
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != errDiv {
			t.Errorf("group = %v; want [division error]", errs)
		}
		if !errors.Is(refused, loop.ErrTaskGroupShuttingDown) {
			t.Errorf("Go() while shutting down = %v; want %v", refused, loop.ErrTaskGroupShuttingDown)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_already_entered,
// test_taskgroup_double_enter, test_taskgroup_finished,
// test_taskgroup_not_entered and test_taskgroup_without_parent_task (I66).
func TestTaskGroupStateErrors(t *testing.T) {
	noop := func(ctx context.Context) error { return nil }
	body := func(ctx context.Context) error { return nil }
	_, err := run(t, func(ctx context.Context) (int, error) {
		var tg loop.TaskGroup
		if err := tg.Go(noop); !errors.Is(err, loop.ErrTaskGroupNotEntered) {
			t.Errorf("Go() before entering = %v; want %v", err, loop.ErrTaskGroupNotEntered)
		}
		if err := tg.Do(context.Background(), body); !errors.Is(err, loop.ErrNotInTask) {
			t.Errorf("Do() outside a task = %v; want %v", err, loop.ErrNotInTask)
		}
		if err := tg.Go(noop); !errors.Is(err, loop.ErrTaskGroupNotEntered) {
			t.Errorf("Go() after a failed enter = %v; want %v", err, loop.ErrTaskGroupNotEntered)
		}
		var inner error
		err := tg.Do(ctx, func(ctx context.Context) error {
			inner = tg.Do(ctx, body)
			return nil
		})
		if err != nil || !errors.Is(inner, loop.ErrTaskGroupEntered) {
			t.Errorf("Do() inside itself = %v (outer %v); want %v", inner, err, loop.ErrTaskGroupEntered)
		}
		if err := tg.Do(ctx, body); !errors.Is(err, loop.ErrTaskGroupEntered) {
			t.Errorf("Do() twice = %v; want %v", err, loop.ErrTaskGroupEntered)
		}
		if err := tg.Go(noop); !errors.Is(err, loop.ErrTaskGroupFinished) {
			t.Errorf("Go() after the group finished = %v; want %v", err, loop.ErrTaskGroupFinished)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_taskgroup_task_name and test_name.
func TestTaskGroupTaskName(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		var name string
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, g *loop.TaskGroup) error {
			task, err := loop.SpawnIn(g, func(ctx context.Context) (int, error) {
				name = loop.CurrentTask(ctx).Name()
				return 0, loop.Sleep(ctx, 0)
			}, loop.WithName("yolo"))
			if err == nil && task.Name() != "yolo" {
				t.Errorf("Name() = %q; want yolo", task.Name())
			}
			return err
		})
		if err != nil || name != "yolo" {
			t.Errorf("WithTaskGroup() = %v, name seen inside = %q; want nil, yolo", err, name)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_cancelling_level_preserved and
// test_cancellation_does_not_leak_out_of_tg (invariant I65: the group
// withdraws its own cancellation of the parent).
func TestTaskGroupCancellingLevelPreserved(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		boom := errors.New("runtime error")
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
			tg.Go(sleepThen(0, boom))
			return nil
		})
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != boom {
			t.Errorf("group = %v; want [runtime error]", errs)
		}
		if n := loop.CurrentTask(ctx).Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
		if err := loop.Sleep(ctx, 0); err != nil {
			t.Errorf("Sleep(0) after the group = %v; want nil (the group's cancellation leaked)", err)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_nested_groups_both_cancelled.
func TestTaskGroupNestedGroupsBothCancelled(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		me := loop.CurrentTask(ctx)
		runtimeErr, valueErr := errors.New("runtime error"), errors.New("value error")
		err := loop.WithTaskGroup(ctx, func(ctx context.Context, outer *loop.TaskGroup) error {
			err := loop.WithTaskGroup(ctx, func(ctx context.Context, inner *loop.TaskGroup) error {
				inner.Go(sleepThen(0, runtimeErr))
				outer.Go(sleepThen(0, valueErr))
				return nil
			})
			if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != runtimeErr {
				t.Errorf("inner group = %v; want [runtime error]", errs)
			}
			if n := me.Cancelling(); n != 1 {
				t.Errorf("Cancelling() between the groups = %d; want 1", n)
			}
			return nil
		})
		if errs := groupErrs(t, err); len(errs) != 1 || errs[0] != valueErr {
			t.Errorf("outer group = %v; want [value error]", errs)
		}
		if n := me.Cancelling(); n != 0 {
			t.Errorf("Cancelling() after the groups = %d; want 0", n)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}

// Mirrors test_taskgroups.py: test_error_and_cancel (Python 3.13: a group
// that fails while its parent is being cancelled from outside keeps that
// cancellation pending; it reaches the parent's next await at once).
func TestTaskGroupErrorAndCancel(t *testing.T) {
	_, err := run(t, func(ctx context.Context) (int, error) {
		l := loopOf(ctx)
		event := loop.NewFuture[struct{}](l)
		var after time.Duration
		inner := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
			err := loop.WithTaskGroup(ctx, func(ctx context.Context, tg *loop.TaskGroup) error {
				tg.Go(func(ctx context.Context) error {
					_ = event.SetResult(struct{}{})
					if err := loop.Sleep(ctx, 0); err != nil {
						return err
					}
					return errors.New("runtime error")
				})
				if err := loop.Sleep(ctx, time.Second); err != nil {
					return err
				}
				t.Errorf("the sleep in the group was not cancelled")
				return nil
			})
			groupErrs(t, err)
			if n := loop.CurrentTask(ctx).Cancelling(); n != 1 {
				t.Errorf("Cancelling() after the group = %d; want 1", n)
			}
			start := l.Time()
			err = loop.Sleep(ctx, time.Second)
			after = l.Time().Sub(start)
			if err == nil {
				t.Errorf("the sleep after the group was not cancelled")
			}
			return 0, err
		})
		if _, err := event.Await(ctx); err != nil {
			return 0, err
		}
		if n := inner.Cancelling(); n != 0 {
			t.Errorf("Cancelling() = %d; want 0", n)
		}
		inner.Cancel("")
		if n := inner.Cancelling(); n != 1 {
			t.Errorf("Cancelling() = %d; want 1", n)
		}
		if _, err := inner.Await(ctx); !errors.Is(err, loop.ErrCancelled) || !inner.Cancelled() {
			t.Errorf("await inner = %v, Cancelled() = %v; want CancelledError, true", err, inner.Cancelled())
		}
		if after != 0 {
			t.Errorf("the cancelled sleep after the group lasted %v; want 0", after)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatalf("Run() = %v; want nil", err)
	}
}
