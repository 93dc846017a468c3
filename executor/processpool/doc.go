// Package processpool is concurrent.futures.ProcessPoolExecutor for Go: a
// Pool runs functions registered with executor.Register in worker
// processes and returns executor futures of their results. It implements
// executor.Executor, so executor.Submit, executor.Map and
// loop.RunInExecutor take it.
//
//	var square = executor.Register("square", func(x int) (int, error) { return x * x, nil })
//
//	func main() {
//		executor.Init() // first thing: a worker process runs here
//		p, err := processpool.New(processpool.Options{MaxWorkers: 2})
//		...
//		defer p.Shutdown(true, false)
//		f, _ := executor.Submit(p, square.Bind(7))
//		v, err := f.Result(context.Background())
//	}
//
// It is a package of its own so that importing executor, or loop, links no
// process machinery (os/exec, encoding/gob, the worker's role).
//
// # Worker processes
//
// A worker is this binary re-executed (through /proc/self/exe: the running
// binary, even if its file has been replaced since) with a marker in its
// environment; executor.Init, called first thing in main (and in TestMain),
// turns it into a worker and never returns there. Functions must therefore
// be registered during package initialisation, so that the worker knows
// them too; one registered only in the parent fails with
// executor.ErrNotRegistered.
//
// A worker whose main does not call executor.Init runs the program
// instead. So that it cannot start pools of its own, and they theirs,
// without end, New refuses in such a process with an error that names the
// fix; and the pool gives up on a worker that does not answer its start
// handshake (sent by Init) within Options.StartTimeout: the pool breaks,
// and its futures fail with executor.ErrBrokenProcessPool.
//
// # Calls
//
// Arguments and results cross a private socketpair (no filesystem socket,
// no port) as encoding/gob values on one stream per worker, so type
// information crosses once. Submit only queues a call, or hands it to an
// idle worker's own goroutine: encoding and writing happen there, never on
// the submitter's goroutine (a loop's, through loop.RunInExecutor, which
// a 2 MiB argument would otherwise stall); only a provably small argument
// (a few hundred bytes of scalars and strings, see small.go) is written by
// the submitter, in one write that never blocks. A type gob cannot carry
// (a func, a channel, a struct with no exported field) fails at
// executor.Register; an argument or result of interface type carries the
// gob.Register'ed type it holds. A value that still cannot be encoded, on
// either side (a nil pointer, an interface holding a type gob does not
// know), fails that one future with an error saying so, and the worker
// goes on. A result the
// parent cannot decode fails its future and retires that worker (a fresh
// one replaces it), where CPython breaks the whole pool: one binary runs
// on both sides, so such a stream is one worker's fault.
//
// A worker runs one call at a time, but while it runs a chunk of a Map
// (executor.Func.BindChunk) and the queue holds a call per worker, the
// next chunk is sent behind it, so that the worker starts on it without
// waiting a round trip; while its chunks take less than a millisecond
// each, up to 8 are sent behind it (Pool.Map of 100,000 ints in chunks
// of 100, one run: 4.6-5.6 M items/s with one ahead, 8.5-10.2 M with 8).
// Those chunks have started: they can no longer be cancelled, as the
// calls CPython's ProcessPoolExecutor queues ahead of its workers.
// Other calls are never sent ahead: one waiting behind a long call while
// another worker is free could wait for ever for that call's effect.
//
// An error returned or panicked in a worker arrives as an
// *executor.RemoteError with its type name, message and the worker's
// stack; it prints the worker's error text. A sentinel registered with
// executor.RegisterError matches with errors.Is; an error of a type
// registered with executor.RegisterErrorType, or one wrapping it, unwraps
// to a copy of that value, for errors.As. The value travels as a gob
// stream of its own beside the answer, so one that gob cannot carry, or
// the parent cannot rebuild, leaves the text and disturbs nothing. A
// registered function that calls runtime.Goexit fails its future in the
// same way (errors.Is(err, executor.ErrGoexit)), and the worker goes on.
//
// # Failure and shutdown
//
// Workers die with the parent: they are started from one locked OS thread
// per pool with Pdeathsig, they exit when their control socket closes, and
// each leads a process group that is killed when it exits. A worker is
// signalled through its pidfd (os.Process), never through a pid that may
// have been reused; its group only while the worker is unreaped. A worker
// that dies under the pool marks the pool broken first, then fails every
// pending future with ErrBrokenProcessPool, and the pool refuses new work,
// as in Python; nothing hangs.
//
// Shutdown(wait, cancelFutures) is Python's: queued calls still run (a
// worker retired by MaxTasksPerChild is replaced for them) unless
// cancelFutures cancels them; with wait it returns once every worker has
// been reaped. Every future a pool accepted ends, whatever the flags. Called
// from a done callback (which runs on a goroutine of the pool), Shutdown
// with wait waits for everything else and returns; Python raises "cannot
// join current thread" there.
//
// # Other systems
//
// Workers need Linux (Pdeathsig, pidfds, POLLRDHUP); elsewhere New returns
// an error wrapping errors.ErrUnsupported, and the rest of asyncgo (loop,
// executor.ThreadPool) works as on Linux.
package processpool
