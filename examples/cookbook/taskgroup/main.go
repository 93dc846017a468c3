// Command taskgroup runs fetches in a TaskGroup and handles the group's
// errors as `except*` does: the timeouts are dealt with here, the rest is
// returned to the caller.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgo/asyncgo/loop"
)

// FetchError is a failed fetch, with the status the server sent.
type FetchError struct {
	URL    string
	Status int
}

func (e *FetchError) Error() string { return fmt.Sprintf("fetch %s: status %d", e.URL, e.Status) }

type job struct {
	url     string
	delay   time.Duration // how long the server takes
	status  int           // what it answers
	timeout time.Duration // how long we wait for it
}

// /b fails at 100ms, the moment /slow and /slower time out, so the group
// holds all three errors. A failure before that would have cancelled them,
// and a task that ends cancelled adds nothing to the group.
var jobs = []job{
	{"/a", 50 * time.Millisecond, 200, 100 * time.Millisecond},
	{"/slow", time.Hour, 200, 100 * time.Millisecond},
	{"/b", 100 * time.Millisecond, 500, 200 * time.Millisecond},
	{"/slower", time.Hour, 200, 100 * time.Millisecond},
}

func fetch(ctx context.Context, j job) (string, error) {
	get := loop.Spawn(ctx, func(ctx context.Context) (string, error) {
		if err := loop.Sleep(ctx, j.delay); err != nil {
			return "", err
		}
		if j.status != 200 {
			return "", &FetchError{URL: j.url, Status: j.status}
		}
		return "body of " + j.url, nil
	})
	return loop.WaitFor(ctx, get, j.timeout)
}

// fetchAll is
//
//	try:
//	    async with asyncio.TaskGroup() as tg:
//	        for j in jobs:
//	            tg.create_task(fetch(j))
//	except* TimeoutError as eg:
//	    print(len(eg.exceptions), "timed out")
func fetchAll(ctx context.Context) error {
	var tg loop.TaskGroup
	err := tg.Do(ctx, func(ctx context.Context) error {
		for _, j := range jobs {
			if _, err := loop.SpawnIn(&tg, func(ctx context.Context) (string, error) {
				body, err := fetch(ctx, j)
				if err == nil {
					fmt.Println("got", body)
				}
				return body, err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	var eg *loop.ExceptionGroup
	if !errors.As(err, &eg) {
		return err // nil, or an error of the body's own
	}
	timeouts, rest := eg.Split(loop.Is(loop.ErrTimeout))
	if timeouts != nil {
		fmt.Println(len(timeouts.(*loop.ExceptionGroup).Errs), "timed out")
	}
	return rest // what except* TimeoutError did not catch goes on up
}

func main() {
	err := loop.RunMain(context.Background(), func(ctx context.Context) error {
		err := fetchAll(ctx)
		// except* FetchError, one level up: loop.As picks by type.
		var eg *loop.ExceptionGroup
		if errors.As(err, &eg) {
			failed, rest := eg.Split(loop.As[*FetchError]())
			if failed != nil {
				fmt.Println("failed:", failed)
			}
			return rest
		}
		return err
	}, loop.WithVirtualClock())
	fmt.Println("main returned", err)
}
