package natsexec

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/asyncgo/asyncgo/executor"
	"github.com/asyncgo/asyncgo/internal/wire"
)

// The codec is the ProcessPool's (encoding/gob, as internal/wire frames it),
// one self-contained gob stream per message: messages of one connection
// reach different peers, so no type information can be assumed sent.

// Headers of every message. A call's id, reply subject and function ride in
// NATS headers rather than in the gob body, so that a worker that cannot
// decode a body still knows whom to tell.
const (
	hdrMsgID = "Nats-Msg-Id"    // the call's id, for the stream's dedupe window
	hdrReply = "Asyncgo-Reply"  // the caller's subject
	hdrFn    = "Asyncgo-Fn"     // the registered function's name
	hdrKind  = "Asyncgo-Kind"   // on the caller's subject: kindStart or kindResult
	hdrBlob  = "Asyncgo-Object" // the body is in the object store, under this name
	hdrSize  = "Asyncgo-Size"   // the body's size, for a blob
	// hdrDelivery is on a start request: the call's delivery count (1 for
	// the first), as the server numbers them.
	hdrDelivery = "Asyncgo-Delivery"
	// hdrAckWait is on a call: its caller's AckWait, which a worker that
	// bound to the consumer before the caller set it would not know.
	hdrAckWait = "Asyncgo-Ack-Wait"

	kindStart  = "start"
	kindResult = "result"
	kindAlive  = "alive" // a running call's worker is alive, every AckWait/3

	startOK     = "ok"
	startCancel = "cancelled"
)

// resultHead heads a result body; on success the result follows it.
type resultHead struct {
	Err *executor.RemoteError
	// ErrValue is Err.Err() as a gob stream of its own (wire.Marshal), as
	// the ProcessPool sends it: one the caller fails to rebuild leaves it
	// the text.
	ErrValue []byte
}

// encodeValues encodes values in order as one gob stream; a panic in gob
// (a nil pointer) is an error.
func encodeValues(values ...any) (b []byte, err error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	defer func() {
		if r := recover(); r != nil {
			err = &wire.EncodeError{Err: fmt.Errorf("%v", r)}
		}
	}()
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return nil, &wire.EncodeError{Err: err}
		}
	}
	return buf.Bytes(), nil
}

// decoder reads the values of one body, a gob failure or panic an error:
// the executor.Decoder a Handler and a Job read from.
type decoder struct{ dec *gob.Decoder }

func newDecoder(b []byte) *decoder { return &decoder{dec: gob.NewDecoder(bytes.NewReader(b))} }

func (d *decoder) Decode(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("natsexec: cannot decode: %v", r)
		}
	}()
	return d.dec.Decode(v)
}

// marshalled decodes a value wire.Marshal encoded, for
// RemoteError.DecodeErr.
type marshalled []byte

func (b marshalled) Decode(v any) error { return wire.Unmarshal(b, v) }

// marshalValue encodes a registered error type's value on its own, as
// the ProcessPool does.
func marshalValue(v any) ([]byte, error) { return wire.Marshal(v) }
