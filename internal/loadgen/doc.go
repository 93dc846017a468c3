// Package loadgen drives a server over N connections and reports what it
// measured: the engine of the load generator of the network and reactor
// benchmarks (the command docs/bench/loadgen, and examples/reactor's -demo).
//
// # Modes
//
// Echo: Config.Conns connections each send a message, read the whole echo
// back, check it byte for byte (its first 8 bytes carry a sequence number)
// and send the next (closed loop), or, with Config.Rate, send on a fixed
// schedule. Connection i sends messages of Sizes[i%len(Sizes)] bytes.
//
// Idle: open the connections, echo one message of Sizes[0] bytes on each,
// hold them all for Config.Hold, read the server's VmRSS (Config.PID), and
// check that every one still echoes.
//
// Reactor: the reactor protocol of examples/reactor. A frame is a 4-byte
// big-endian length and then that many bytes; the client sends message
// frames and the server answers each, in order per connection, with one
// frame whose payload is a status byte, 0 and the result or 1 and a UTF-8
// error message. The default job's result is the 32-byte SHA-256 digest of
// the message, which Config.Check verifies. Message j of connection i has
// Sizes[(i+j)%len(Sizes)] bytes, so every connection sends the whole mix in
// turn. Each connection keeps up to Config.InFlight messages on the wire
// (pipelining): with more than one, a writer goroutine sends while a reader
// goroutine takes the replies in order.
//
// # Measurement
//
// A run has an unmeasured warmup and then a measured window: what is counted
// (requests or messages per second, MB/s of payload, one direction, 10^6
// bytes/s) and the latency percentiles (a log-bucket histogram, within 0.8%
// of the exact value) are of the messages due in the window. In rate mode a
// message's latency runs from the time it was due, not the time it could be
// sent, so a server that falls behind is charged for the queue it built.
//
// # Costs
//
// A connection's buffers and payloads are allocated once, before the clock
// starts: the loops allocate nothing per message. Reactor payloads are
// random bytes generated per connection (two per entry of Sizes, used in
// turn, so that a reply out of order or repeated fails the digest check),
// their digests computed once; connections share payload sets when they
// would take more than 512 MiB together.
package loadgen
