package executor_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/asyncgo/asyncgo/executor"
)

// BindChunk: one call runs a registered function on each item of a chunk
// (aio.Pool's Map sends one per chunk); its handler is registered beside
// the function's own.

var errChunkItem = errors.New("item refused")

func init() { executor.RegisterError(errChunkItem) }

var chunkSquare = executor.Register("registry_map_test.square", func(x int) (int, error) {
	switch x {
	case -1:
		return 0, errChunkItem
	case -2:
		panic("negative two")
	}
	return x * x, nil
})

// decodeInto is a Decoder that hands Serve a fixed argument.
type decodeInto[A any] struct{ v A }

func (d decodeInto[A]) Decode(v any) error {
	*v.(*A) = d.v
	return nil
}

func TestBindChunkHandler(t *testing.T) {
	c := chunkSquare.BindChunk([]int{1, 2, 3})
	if c.Name() == chunkSquare.Name() || !strings.HasPrefix(c.Name(), chunkSquare.Name()) {
		t.Fatalf("BindChunk().Name() = %q; want a name of its own derived from %q", c.Name(), chunkSquare.Name())
	}
	h := executor.Lookup(c.Name())
	if h == nil {
		t.Fatalf("Lookup(%q) = nil; want the chunk handler Register added", c.Name())
	}
	if h.Name() != c.Name() {
		t.Errorf("handler Name() = %q; want %q", h.Name(), c.Name())
	}
	if got, ok := c.Arg().([]int); !ok || len(got) != 3 {
		t.Errorf("BindChunk().Arg() = %#v; want the []int items", c.Arg())
	}
	r, err, argErr := h.Serve(decodeInto[[]int]{[]int{1, 2, 3}})
	if err != nil || argErr != nil {
		t.Fatalf("Serve() = %v, %v, %v; want no error", r, err, argErr)
	}
	if diff := cmp.Diff([]int{1, 4, 9}, r); diff != "" {
		t.Errorf("Serve() result mismatch (-want +got):\n%s", diff)
	}
}

func TestBindChunkItemError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		items []int
		item  int // RemoteError.Item: 1 + the index
		panic bool
	}{
		{"first", []int{-1, 2}, 1, false},
		{"last", []int{1, 2, -1}, 3, false},
		{"first of two", []int{1, -1, -1}, 2, false},
		{"panic", []int{1, -2, -1}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := executor.Lookup(chunkSquare.BindChunk(nil).Name())
			r, err, argErr := h.Serve(decodeInto[[]int]{tc.items})
			if err == nil || argErr != nil || r != nil {
				t.Fatalf("Serve(%v) = %v, %v, %v; want an item's error", tc.items, r, err, argErr)
			}
			re := executor.NewRemoteError(err)
			if re.Item != tc.item || re.Panic != tc.panic {
				t.Errorf("NewRemoteError().Item, Panic = %d, %v; want %d, %v", re.Item, re.Panic, tc.item, tc.panic)
			}
			if !tc.panic && (!errors.Is(re, errChunkItem) || re.Error() != errChunkItem.Error()) {
				t.Errorf("RemoteError = %q (Is sentinel %v); want the item's own error", re, errors.Is(re, errChunkItem))
			}
			if tc.panic && re.Message != "negative two" {
				t.Errorf("RemoteError.Message = %q; want the panic value", re.Message)
			}
		})
	}
	if re := executor.NewRemoteError(errChunkItem); re.Item != 0 {
		t.Errorf("NewRemoteError(plain error).Item = %d; want 0", re.Item)
	}
}

func TestBindChunkLocal(t *testing.T) {
	tp, err := executor.NewThreadPool(executor.ThreadPoolOptions{MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(true, false)
	f, err := executor.Submit(tp, chunkSquare.BindChunk([]int{2, 3}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Result(context.Background())
	if err != nil || !cmp.Equal(got, []int{4, 9}) {
		t.Errorf("chunk on a ThreadPool = %v, %v; want [4 9], nil", got, err)
	}
	f, err = executor.Submit(tp, chunkSquare.BindChunk([]int{2, -1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(context.Background()); err != errChunkItem {
		t.Errorf("failing chunk on a ThreadPool = %v; want the item's own error", err)
	}
	var zero executor.Func[int, int]
	if c := zero.BindChunk([]int{1}); !c.IsZero() {
		t.Errorf("zero Func's BindChunk() = %v; want the zero Call", c)
	}
}

// The chunk handler's name is taken: registering it is registering twice.
func TestBindChunkNameTaken(t *testing.T) {
	name := regName("chunkTaken")
	f := executor.Register(name, func(x int) (int, error) { return x, nil })
	msg := registerPanic(func() {
		executor.Register(f.BindChunk(nil).Name(), func(x int) (int, error) { return x, nil })
	})
	if !strings.Contains(msg, "registered twice") {
		t.Errorf("Register(the chunk handler's name) panicked with %q; want registered twice", msg)
	}
}
