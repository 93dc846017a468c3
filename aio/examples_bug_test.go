package aio_test

import (
	"testing"

	"github.com/asyncgo/asyncgo/aio"
	"github.com/asyncgo/asyncgo/executor"
)

// Found porting the seed's aioprocessing program (examples/seed_aioprocessing):
// Python ends a queue with a None sentinel, and its port is a Queue[*int]
// with nil, but Put(nil) failed ("gob: cannot encode nil pointer of type
// *int"). A nil pointer now crosses as nil, both ways.

var nilEcho = executor.Register("aio_test.nilEcho", func(a echoPtrArgs) (struct{}, error) {
	for {
		v, err := a.In.Get()
		if err != nil {
			return struct{}{}, err
		}
		if err := a.Out.Put(v); err != nil {
			return struct{}{}, err
		}
		if v == nil {
			return struct{}{}, nil
		}
	}
})

type echoPtrArgs struct{ In, Out *aio.Queue[*int] }

func TestQueueNilPointer(t *testing.T) {
	q := aio.NewQueue[*int](0)
	if err := q.Put(nil); err != nil {
		t.Fatalf("Put(nil) = %v; want nil", err)
	}
	if v, err := q.Get(); v != nil || err != nil {
		t.Fatalf("Get() = %v, %v; want nil, nil", v, err)
	}

	in, out := aio.NewQueue[*int](0), aio.NewQueue[*int](0)
	p := aio.NewProcess(nilEcho.Bind(echoPtrArgs{In: in, Out: out}))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p.IsAlive() {
			p.Kill() // a failed check left it waiting for an item
		}
		p.Join()
	}()
	seven := 7
	for _, v := range []*int{&seven, nil} {
		if err := in.Put(v); err != nil {
			t.Fatalf("Put(%v) = %v", v, err)
		}
	}
	if v, err := out.Get(); err != nil || v == nil || *v != 7 {
		t.Fatalf("Get() from the child = %v, %v; want a pointer to 7", v, err)
	}
	if v, err := out.Get(); v != nil || err != nil {
		t.Fatalf("Get() from the child = %v, %v; want nil, nil", v, err)
	}
}
