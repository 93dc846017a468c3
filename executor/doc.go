// Package executor is Python's concurrent.futures for Go: a thread-safe
// Future, the Executor interface, and ThreadPool, which runs calls on
// goroutines and returns futures of their results. Package
// executor/processpool adds the process pool. The loop package bridges
// executors to tasks (loop.RunInExecutor, loop.WrapFuture, loop.ToThread);
// this package knows nothing of the loop, and nothing of processes: it
// builds everywhere and links no os/exec nor encoding/gob.
//
// # Calls
//
// A Call is what an executor runs. A ThreadPool runs any Go function
// (Local, SubmitFunc). A process pool runs functions registered by name
// with Register, in worker processes; Register returns a typed handle
// whose Bind method makes a Call, so a call with the wrong argument or
// result type does not compile:
//
//	var square = executor.Register("square", func(x int) (int, error) { return x * x, nil })
//
//	func main() {
//		executor.Init() // first thing: a worker process runs here
//		p, _ := processpool.New(processpool.Options{MaxWorkers: 2})
//		defer p.Shutdown(true, false)
//		f, _ := executor.Submit(p, square.Bind(7))
//		v, err := f.Result(context.Background())
//		...
//	}
//
// A registered function runs in this process too, on a ThreadPool. A panic
// in a call, or runtime.Goexit (t.FailNow in a test), fails its future with
// a *PanicError and nothing else.
//
// # Values across processes
//
// Arguments and results cross with encoding/gob. Register checks the types
// when it runs, at package initialisation, and panics with the function,
// the type and the field if gob cannot carry them (a chan, a func, a struct
// with no exported field, ...), rather than let every call fail in the
// child. An argument or result of interface type (any) crosses with the
// concrete type it holds, which gob.Register must know, in both processes.
//
// # Worker processes
//
// A worker is this binary re-executed with a marker in its environment;
// Init, called first thing in main (and in TestMain), turns it into a
// worker and never returns there. Functions must therefore be registered
// during package initialisation, so that the worker knows them too; one
// registered only in the parent fails with ErrNotRegistered. An error
// returned or panicked in a worker arrives as a *RemoteError with its type
// name, message and the worker's stack, whose Error is the worker's error
// text. Sentinels registered with RegisterError keep their identity across
// (errors.Is), and an error of a type registered with RegisterErrorType,
// wrapped or not, crosses as a value that errors.As finds. See package
// processpool.
//
// # Writing an executor
//
// Executor is implementable from another package: SubmitJob receives a
// Job, a call with its future, and must end that future whatever happens.
// An executor running calls in this process calls Job.RunLocal; one running
// them elsewhere sends Job.Name and Job.Arg, and there runs the function
// Lookup finds by that name, decoding its argument through a Decoder;
// NewRemoteError describes its error for the way back. Its Err, a value of
// a registered error type, travels beside it (encoded as its own type, by
// the name in ErrType), and RemoteError.DecodeErr rebuilds it on arrival.
//
// # Futures
//
// Future is concurrent.futures.Future: every method is safe from any
// goroutine. Result and Err take a ctx where Python takes a timeout; its
// expiry cancels nothing. Cancel succeeds only before the call starts.
//
// # Goroutines
//
// A pool owns its goroutines: Shutdown with wait returns once they have
// ended. Called from one of them (a done callback, or a call running on a
// ThreadPool), it waits for all the others instead of deadlocking, as
// Python raises "cannot join current thread" there. A bug-panic in a
// pool's own goroutine breaks the pool and is re-panicked, with its stack,
// by Shutdown with wait, instead of killing the process.
package executor
