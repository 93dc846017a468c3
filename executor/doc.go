// Package executor is Python's concurrent.futures for Go: a thread-safe
// Future, and two executors, ThreadPool and ProcessPool, that run calls and
// return futures of their results. The loop package bridges them to tasks
// (loop.RunInExecutor, loop.WrapFuture, loop.ToThread); this package knows
// nothing of the loop.
//
// # Calls
//
// A Call is what an executor runs. A ThreadPool runs any Go function
// (Local, SubmitFunc). A ProcessPool runs functions registered by name with
// Register, in worker processes; Register returns a typed handle whose Bind
// method makes a Call, so a call with the wrong argument or result type
// does not compile:
//
//	var square = executor.Register("square", func(x int) (int, error) { return x * x, nil })
//
//	func main() {
//		executor.Init() // first thing: a worker process runs here
//		p, _ := executor.NewProcessPool(executor.ProcessPoolOptions{MaxWorkers: 2})
//		defer p.Shutdown(true, false)
//		f, _ := executor.Submit(p, square.Bind(7))
//		v, err := f.Result(context.Background())
//		...
//	}
//
// # Worker processes
//
// A worker is this binary re-executed with a marker in its environment;
// Init, called first thing in main (and in TestMain), turns it into a
// worker and never returns there. Functions must therefore be registered
// during package initialisation, so that the worker knows them too; one
// registered only in the parent fails with ErrNotRegistered. Arguments and
// results cross a private socketpair (no filesystem socket, no port) as
// encoding/gob values on one stream per worker, so type information
// crosses once; a value that cannot be encoded fails its future before
// anything is sent.
//
// Workers die with the parent: they are started from one locked OS thread
// per pool with Pdeathsig, they exit when their control socket closes, and
// each leads a process group that Shutdown kills. A worker that dies under
// the pool fails every pending future with ErrBrokenProcessPool and the
// pool refuses new work, as in Python; nothing hangs. An error returned or
// panicked in a worker arrives as a *RemoteError with its type name,
// message and the worker's stack.
//
// # Futures
//
// Future is concurrent.futures.Future: every method is safe from any
// goroutine. Result and Err take a ctx where Python takes a timeout; its
// expiry cancels nothing. Cancel succeeds only before the call starts.
package executor
