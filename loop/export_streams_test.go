package loop

// StreamReaderBuffer exposes a StreamReader's buffer to the tests, which
// check it as test_streams.py checks stream._buffer.
func StreamReaderBuffer(r *StreamReader) []byte { return r.arr[r.off:] }

// CallbackSlots is how many callback slots f keeps: the first and the
// rest, used or not.
func CallbackSlots[T any](f *Future[T]) int {
	c := f.base()
	n := 1
	if c.cbs != nil {
		n += len(*c.cbs)
	}
	return n
}
