package aio

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"

	"github.com/asyncgo/asyncgo/internal/wire"
)

// Items of queues and pipes cross as [tag uint32][bytes]: the tag is a
// hash of the item's Go type, so a process that reads the queue as
// another type gets ErrItemType for that item (and the queue goes on),
// not a value decoded into the wrong shape. Any process may take an item,
// so each is encoded on its own: scalars, strings and []byte by hand
// (tens of nanoseconds), types with MarshalBinary by theirs, and the rest
// with a gob stream of their own (microseconds: gob sends type
// information with every item).

// ErrItemType is the error of a Get (or Recv) whose item was put as a
// different type than the reader's. The item is consumed; the queue stays
// usable.
var ErrItemType = errors.New("aio: the item has another type than the reader's")

type codec[T any] struct {
	tag  uint32
	name string
}

func codecOf[T any]() codec[T] {
	name := reflect.TypeFor[T]().String()
	h := fnv.New32a()
	h.Write([]byte(name))
	return codec[T]{tag: h.Sum32(), name: name}
}

func (c codec[T]) encode(v T) (b []byte, err error) {
	b = make([]byte, 4, 16)
	binary.LittleEndian.PutUint32(b, c.tag)
	// The fast forms are for T itself: an interface T holding a []byte
	// goes through wire with its concrete type, as decode reads it.
	var fast any = v
	if reflect.TypeFor[T]().Kind() == reflect.Interface {
		fast = nil // matches no case
	}
	switch x := fast.(type) {
	case []byte:
		return append(b, x...), nil
	case string:
		return append(b, x...), nil
	case int:
		return binary.LittleEndian.AppendUint64(b, uint64(x)), nil
	case int64:
		return binary.LittleEndian.AppendUint64(b, uint64(x)), nil
	case int32:
		return binary.LittleEndian.AppendUint32(b, uint32(x)), nil
	case uint64:
		return binary.LittleEndian.AppendUint64(b, x), nil
	case uint32:
		return binary.LittleEndian.AppendUint32(b, x), nil
	case uint:
		return binary.LittleEndian.AppendUint64(b, uint64(x)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case bool:
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case encoding.BinaryMarshaler:
		if isNilPointer(v) {
			return nil, fmt.Errorf("aio: cannot encode a nil %s", c.name)
		}
		m, err := x.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("aio: cannot encode a %s: %w", c.name, err)
		}
		return append(b, m...), nil
	}
	if reflect.TypeFor[T]().Kind() == reflect.Pointer && isNilPointer(v) {
		// gob cannot encode a nil pointer, and never encodes another
		// value in zero bytes: a nil *X (a port's None sentinel)
		// crosses as the empty payload.
		return b, nil
	}
	var g []byte
	if reflect.TypeFor[T]().Kind() == reflect.Interface {
		g, err = wire.Marshal(&v) // an interface value keeps its concrete type
	} else {
		g, err = wire.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("aio: cannot encode a %s: %w", c.name, err)
	}
	return append(b, g...), nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func (c codec[T]) decode(b []byte) (v T, err error) {
	if len(b) < 4 {
		return v, fmt.Errorf("%w: a corrupt item", ErrItemType)
	}
	if tag := binary.LittleEndian.Uint32(b); tag != c.tag {
		return v, fmt.Errorf("%w (this process reads %s)", ErrItemType, c.name)
	}
	b = b[4:]
	short := func(n int) error {
		if len(b) != n {
			return fmt.Errorf("%w: %d bytes for a %s", ErrItemType, len(b), c.name)
		}
		return nil
	}
	switch p := any(&v).(type) {
	case *[]byte:
		*p = b
		return v, nil
	case *string:
		*p = string(b)
		return v, nil
	case *int:
		if err := short(8); err != nil {
			return v, err
		}
		*p = int(binary.LittleEndian.Uint64(b))
		return v, nil
	case *int64:
		if err := short(8); err != nil {
			return v, err
		}
		*p = int64(binary.LittleEndian.Uint64(b))
		return v, nil
	case *int32:
		if err := short(4); err != nil {
			return v, err
		}
		*p = int32(binary.LittleEndian.Uint32(b))
		return v, nil
	case *uint64:
		if err := short(8); err != nil {
			return v, err
		}
		*p = binary.LittleEndian.Uint64(b)
		return v, nil
	case *uint32:
		if err := short(4); err != nil {
			return v, err
		}
		*p = binary.LittleEndian.Uint32(b)
		return v, nil
	case *uint:
		if err := short(8); err != nil {
			return v, err
		}
		*p = uint(binary.LittleEndian.Uint64(b))
		return v, nil
	case *float64:
		if err := short(8); err != nil {
			return v, err
		}
		*p = math.Float64frombits(binary.LittleEndian.Uint64(b))
		return v, nil
	case *bool:
		if err := short(1); err != nil {
			return v, err
		}
		*p = b[0] != 0
		return v, nil
	}
	if _, ok := any(v).(encoding.BinaryMarshaler); ok {
		// T is a pointer type with MarshalBinary: make the value.
		t := reflect.TypeFor[T]()
		if t.Kind() == reflect.Pointer {
			nv := reflect.New(t.Elem())
			if u, ok := nv.Interface().(encoding.BinaryUnmarshaler); ok {
				if err := u.UnmarshalBinary(b); err != nil {
					return v, fmt.Errorf("aio: cannot decode a %s: %w", c.name, err)
				}
				return nv.Interface().(T), nil
			}
		}
	}
	if u, ok := any(&v).(encoding.BinaryUnmarshaler); ok {
		if _, ok := any(v).(encoding.BinaryMarshaler); ok {
			if err := u.UnmarshalBinary(b); err != nil {
				return v, fmt.Errorf("aio: cannot decode a %s: %w", c.name, err)
			}
			return v, nil
		}
	}
	if len(b) == 0 && reflect.TypeFor[T]().Kind() == reflect.Pointer {
		return v, nil // a nil pointer
	}
	if err := wire.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("aio: cannot decode a %s: %w", c.name, err)
	}
	return v, nil
}
