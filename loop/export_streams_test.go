package loop

// StreamReaderBuffer exposes a StreamReader's buffer to the tests, which
// check it as test_streams.py checks stream._buffer.
func StreamReaderBuffer(r *StreamReader) []byte { return r.arr[r.off:] }
