package processpool

import (
	"encoding"
	"encoding/gob"
	"reflect"
)

// Submit sends a call to an idle worker on the submitter's goroutine only
// when its argument is provably small: scalars, short strings and byte
// slices, and arrays, structs and pointers of those, a few levels deep,
// none with an encoding method of its own (GobEncode, MarshalBinary,
// MarshalText), which could take any time.
// Such a call costs the submitter about what a CallSoonThreadsafe does: an
// encode of a few dozen bytes and one write into the idle worker's empty
// socket buffer, which never blocks. Any other argument (a 2 MiB slice, a
// map, an interface) is encoded and written by the worker's own goroutine,
// so that a submitter on a loop never waits for it. Handing the small ones
// over too would cost every round trip a goroutine switch through the
// netpoller: 3–5 µs of the 30 µs (BenchmarkProcessPoolRoundTrip).
const (
	smallBytes = 256 // the longest string or []byte sent inline
	smallNodes = 32  // the most values walked to decide
	smallDepth = 4
)

// small reports whether v is provably small to encode (see above).
func small(v any) bool {
	if v == nil {
		return false
	}
	budget := smallNodes
	return smallValue(reflect.ValueOf(v), smallDepth, &budget)
}

var (
	gobEncoder      = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
)

// marshals reports whether gob would encode t, or *t, with a method of its
// own.
func marshals(t reflect.Type) bool {
	for _, t := range []reflect.Type{t, reflect.PointerTo(t)} {
		if t.Implements(gobEncoder) || t.Implements(binaryMarshaler) || t.Implements(textMarshaler) {
			return true
		}
	}
	return false
}

func smallValue(v reflect.Value, depth int, budget *int) bool {
	if *budget--; *budget < 0 || depth < 0 {
		return false
	}
	// Only named types, structs (which promote their fields' methods)
	// and pointers can have methods.
	if t := v.Type(); t.PkgPath() != "" || t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer {
		if marshals(t) {
			return false
		}
	}
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.String:
		return v.Len() <= smallBytes
	case reflect.Slice:
		return v.Type().Elem().Kind() == reflect.Uint8 && v.Len() <= smallBytes
	case reflect.Array:
		if v.Len() > smallNodes {
			return false
		}
		for i := range v.Len() {
			if !smallValue(v.Index(i), depth-1, budget) {
				return false
			}
		}
		return true
	case reflect.Struct:
		// gob encodes exported fields only, and refuses a struct with
		// none: the worker's goroutine reports that.
		exported := 0
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			exported++
			if !smallValue(v.Field(i), depth-1, budget) {
				return false
			}
		}
		return exported > 0
	case reflect.Pointer:
		// A nil pointer fails to encode (at top level; inside a struct it
		// is left out): the worker's goroutine reports it.
		return !v.IsNil() && smallValue(v.Elem(), depth-1, budget)
	}
	return false // maps, interfaces, funcs, channels
}

// aheadLimit bounds the encoded size of a call the reader sends ahead of
// the one a worker runs (see worker.ahead). The reader writes it itself,
// while the worker is busy: the write must fit in the socket's buffer
// (about 200 KiB for a Unix socket), which then holds nothing else, or
// the reader would block on it while the worker blocks writing the reader
// its answer. Larger calls go through the worker's sender goroutine.
const aheadLimit = 64 << 10

// fits reports whether v's gob encoding is provably at most limit bytes:
// an upper bound over scalars (9 bytes each, and a byte of field or
// length overhead), strings and byte slices, and slices, arrays, structs
// and pointers of those, none with an encoding method of its own.
func fits(v any, limit int) bool {
	if v == nil {
		return false
	}
	n := 16 // the value's type id and message header
	return boundSize(reflect.ValueOf(v), smallDepth, &n, limit)
}

func boundSize(v reflect.Value, depth int, n *int, limit int) bool {
	if depth < 0 || *n > limit {
		return false
	}
	if t := v.Type(); t.PkgPath() != "" || t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer {
		if marshals(t) {
			return false
		}
	}
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		*n += 10
	case reflect.Complex64, reflect.Complex128:
		*n += 19
	case reflect.String:
		*n += 10 + v.Len()
	case reflect.Slice, reflect.Array:
		*n += 10
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			*n += v.Len()
			break
		}
		switch v.Type().Elem().Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float32, reflect.Float64:
			if v.Type().Elem().PkgPath() == "" { // no methods: 9 bytes each at most
				*n += 9 * v.Len()
				break
			}
			fallthrough
		default:
			for i := range v.Len() {
				if !boundSize(v.Index(i), depth-1, n, limit) {
					return false
				}
			}
		}
	case reflect.Struct:
		exported := 0
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			exported++
			*n += 2
			if !boundSize(v.Field(i), depth-1, n, limit) {
				return false
			}
		}
		if exported == 0 {
			return false
		}
	case reflect.Pointer:
		if v.IsNil() || !boundSize(v.Elem(), depth-1, n, limit) {
			return false
		}
	default:
		return false // maps, interfaces, funcs, channels
	}
	return *n <= limit
}
