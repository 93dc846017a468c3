// Package natsexec runs registered functions (executor.Register) on worker
// processes on any host, through NATS JetStream: Python's Dask
// Client.get_executor, Celery or Ray for asyncgo. An Executor implements
// executor.Executor, so executor.Submit, executor.Map and
// loop.RunInExecutor take it unchanged; only the Executor a program builds
// changes.
//
//	var square = executor.Register("square", func(x int) (int, error) { return x * x, nil })
//
//	func main() {
//		executor.Init() // first thing: a local worker process runs here
//		ex, err := natsexec.New(natsexec.Options{LocalWorkers: 2}) // embedded server
//		...
//		defer ex.Shutdown(true, false)
//		f, _ := executor.Submit(ex, square.Bind(7))
//		v, err := f.Result(ctx)
//	}
//
// and on any other host, a worker: natsexec.Serve(ctx,
// natsexec.ServeOptions{URL: url}).
//
// It is a package of its own so that nothing else in asyncgo links NATS.
//
// # Calls and results
//
// Each call is one message of a JetStream stream with work-queue retention
// (Options.Stream, "ASYNCGO" by default, on the subject "<stream>.calls"),
// with a fresh id as its Nats-Msg-Id, so that the stream's dedupe window
// (two minutes) stores a call once however often its publish is retried.
// All workers share one durable pull consumer ("workers") with explicit
// acks. A worker asks the caller whether the call may start (a request to
// the caller's own subject, "<stream>.results.<id>"), runs the function,
// sends the result to that subject as a request, and acks the call once
// the caller confirms it. Arguments and
// results cross as the ProcessPool's do: encoding/gob, one self-contained
// stream per message; errors as *executor.RemoteError, registered
// sentinels matching with errors.Is and registered error types with
// errors.As, as across processes.
//
// The caller encodes and publishes on a goroutine of its own, so Submit
// never waits for the server (nor a loop that submits through
// RunInExecutor).
//
// # Delivery
//
// Execution is at least once; resolution exactly once. A call runs again
// when the worker running it dies or loses its connection: the server
// redelivers it once AckWait passes without an ack or an in-progress ack
// (which a worker sends every AckWait/3 while a call runs, so a long call
// keeps its lease). The caller's future takes the first result and ignores
// any later one. After MaxDeliver deliveries without a result the server
// gives the call up, and its future fails with ErrMaxDeliver: when the
// server says so (its MAX_DELIVERIES advisory, which nats-server sends
// only when a worker asks for calls), or when the worker of the last
// delivery goes silent for AckWait (it tells the caller it is alive every
// AckWait/3), whichever comes first; so a call that kills every worker
// fails too. Functions
// that must not run twice must be idempotent, as with any at-least-once
// queue (Celery's acks_late, Dask's retries).
//
// # Cancellation and shutdown
//
// A call starts when the caller answers its worker's start request: the
// caller's future is marked running there (set_running_or_notify_cancel),
// so Future.Cancel succeeds until then, and a worker that reaches a
// cancelled call drops it without running it. A running call cannot be
// cancelled, as in concurrent.futures; registered functions take no ctx,
// so it runs to its end. A call whose caller has no subscriber on its
// subject (gone, or reconnecting) is put back for n seconds at its n-th
// delivery, and dropped after MaxDeliver such tries (10s with the
// default of 5): workers are never stuck on a dead caller.
//
// Shutdown(wait, cancelFutures) is concurrent.futures': no new calls;
// with cancelFutures, the calls not started are cancelled; the connection,
// local workers and embedded server stay until every other future is done.
//
// Results travel on core NATS, not in a stream, but a worker acks a call
// only once its caller confirms the result: it sends the result again
// while the caller reconnects (for 20s), then puts the call back, so a
// result is not lost to a caller that moved to another server of a
// cluster. Calls survive the server's restart on a file store, and a
// cluster node's loss with Options.Replicas > 1. A caller that dies loses
// its futures, as a process does; its calls are dropped as above.
//
// # Large values
//
// A body larger than the server's max_payload (1 MiB by default; 8 MiB
// on the embedded server) less 8 KiB of headroom goes through the
// JetStream object store (bucket "<stream>_objects"), in 128 KiB chunks,
// and the message carries its name: arguments and results of any size the
// store holds, up to internal/wire's MaxFrame (1 GiB). Objects are deleted
// once read; those of a caller or worker that died expire after
// DefaultObjectTTL.
//
// # The embedded server
//
// With no URL, New starts a nats-server in this process, with JetStream on
// a file store in a temporary directory, listening on 127.0.0.1 with a
// random token that only the URL (Executor.URL) carries: local workers and
// workers given that URL can connect, other users of the host cannot.
// Shutdown stops it and removes the directory.
//
// # Local workers
//
// Options.LocalWorkers starts worker processes of this binary, as a
// process pool does (see executor.Init); they serve the stream like any
// other worker until Shutdown.
package natsexec
