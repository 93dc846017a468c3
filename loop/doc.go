// Package loop is Python's asyncio in Go: an event loop that one goroutine
// drives, tasks that are coroutines and switch only where they await,
// asyncio's futures, cancellation, timeouts and task groups, and the order
// in which asyncio runs callbacks, timers and wake-ups. The names are
// asyncio's in Go case (call_soon is [Loop.CallSoon], create_task is
// [Spawn], gather is [Gather]); docs/porting.md in the repository maps
// every asyncio name to its Go one and lists each difference.
//
// The smallest program:
//
//	n, err := loop.Run(context.Background(), func(ctx context.Context) (int, error) {
//		t := loop.Spawn(ctx, func(ctx context.Context) (int, error) {
//			if err := loop.Sleep(ctx, time.Second); err != nil {
//				return 0, err
//			}
//			return 42, nil
//		})
//		return t.Await(ctx)
//	})
//
// # Execution model
//
// A [Loop] is driven by one goroutine at a time, the one inside
// [Loop.RunForever] or [Loop.RunUntilComplete]; [Run] (asyncio.run) makes a
// fresh loop, drives it until its main function returns, and closes it.
// The loop runs callbacks ([Loop.CallSoon], [Loop.CallLater],
// [Loop.CallAt], done callbacks of futures) itself, in its own goroutine.
//
// A task ([Task], made by [Spawn], [CreateTask], [Go] or [SpawnIn]) is a
// function func(ctx context.Context) (T, error) running as a coroutine: it
// has a goroutine of its own, but the loop hands control to it and takes
// control back directly, and never lets two of them run at once. At most
// one callback or task body runs on a loop at any instant, and a task gives
// up the loop only where it awaits: [Future.Await], [Sleep], [WaitFor],
// [Wait], an iteration of [AsCompleted], the end of [TaskGroup.Do], and
// the waiting methods of the locks and queues. Code between two awaits is
// atomic with respect to every other task and callback of the loop, exactly
// as in asyncio, so state shared by the tasks of one loop needs no mutex;
// the race detector sees every switch as a synchronisation and agrees.
//
// The ctx a task's function receives is the task's ctx: it carries the
// loop and the task. Every await takes it (or a ctx derived from it) as its
// first argument; awaiting with any other ctx returns [ErrNotInTask].
// [RunningLoop] and [CurrentTask] read it, and [Spawn] starts the new task
// on its loop.
//
// Blocking a task blocks the whole loop: a time.Sleep, a receive from a
// channel, a mutex or a blocking system call inside a task stops every
// other task and callback of that loop until it returns. Use [Sleep], the
// loop's futures, locks and queues to wait, and run blocking work on
// another goroutine that reports back through [Loop.CallSoonThreadsafe].
// Debug mode reports callbacks and task steps that take too long.
//
// # Goroutines
//
// A loop, its futures and its tasks are for the loop's goroutine: code in
// its callbacks and tasks, or, while the loop is not running, the goroutine
// that owns it (to create tasks before [Loop.RunUntilComplete], or to call
// [Loop.Close] after it). These are safe from any goroutine:
//
//   - [Loop.CallSoonThreadsafe], the one door into a running loop: fn runs
//     on the loop in a later iteration, and a loop waiting idle wakes up.
//   - [RunCoroutineThreadsafe], built on it: it starts a task on the loop
//     and returns an [executor.Future] that any goroutine may block on,
//     with a timeout, or cancel.
//   - [Loop.IsRunning] and [Loop.IsClosed].
//   - [Future.DoneChan] (also on a Task): a channel closed when the future
//     is done; once it is closed, Result and Err may be read too.
//   - The context.Context methods of a task's ctx (Done, Err, Value,
//     Deadline), and [context.AfterFunc] and [context.WithCancel] on it:
//     plain goroutines a task starts may watch its cancellation.
//
// Everything else is loop-only. In debug mode, scheduling a callback or
// creating a task from another goroutine while the loop runs panics with a
// message that says so, as asyncio's debug mode raises; under the race
// detector other misuses show up as data races.
//
// # Ordering
//
// The loop works in iterations, as asyncio's _run_once does. Each one
// moves the callbacks that arrived through CallSoonThreadsafe, then the
// timers that are due, to the end of the ready queue, and runs what the
// queue holds at that point; what those callbacks schedule waits for the
// next iteration. Hence:
//
//   - Callbacks run in the order they were scheduled (FIFO), whether by
//     CallSoon or, among themselves, by CallSoonThreadsafe. A
//     CallSoonThreadsafe callback joins the ready queue when the loop next
//     polls or calls CallSoon, whichever comes first; until then a future
//     completion or task wake-up scheduled on the loop may overtake it
//     (asyncio appends both to one deque at once).
//   - Timers run in deadline order, and timers with equal deadlines in the
//     order they were scheduled. This is stricter than CPython, whose heap
//     leaves ties unordered. CallLater with a duration <= 0 runs in the next
//     iteration, after the callbacks already ready.
//   - A future's done callbacks are scheduled with CallSoon when it
//     completes, in the order they were added, never called synchronously;
//     a task that awaits the future resumes through the ready queue in the
//     same way. Awaiting a future that is already done returns at once,
//     without a switch.
//   - A new task does not run at once: its first step is scheduled like a
//     callback, so it starts after the creator's next await.
//   - Sleep(ctx, 0) yields exactly once: the task resumes after the
//     callbacks that were ready. A longer sleep resumes the task in the
//     iteration after its timer fires, as asyncio's sleep future does.
//
// The loop keeps every pending task reachable, so a task nobody holds
// still runs to its end (asyncio keeps only weak references, and loses
// such tasks to the garbage collector). [Loop.AllTasks] lists them.
//
// # Cancellation
//
// Cancellation is asyncio's: [Task.Cancel] is a request. If the task has
// not started, its function never runs. Otherwise its current await returns
// a [*CancelledError] carrying the message given to Cancel; if the task is
// awaiting another future or task, that one is cancelled instead, and the
// error comes from it. The task may catch the error and go on, and is then
// not cancelled; a task whose function returns an error that matches
// [ErrCancelled] (or [context.Canceled]) ends cancelled. [Task.Cancelling]
// and [Task.Uncancel] count the requests, as [TaskGroup] and [Timeout] need.
//
// Cancel also cancels the task's ctx at once, so plain Go code inside the
// task (an http.Request, a select on ctx.Done()) stops with it. A Go
// context cannot be un-cancelled: the ctx stays cancelled even if the task
// catches the cancellation and goes on. For that reason the cancellations
// that asyncio withdraws again do not touch the task's ctx: when the
// deadline of a [Timeout] (or of [WaitFor]) passes, the task running it is
// cancelled and the body's own ctx ends, not the task's ctx, and a
// TaskGroup whose child failed cancels the body it runs in the same way. What the task awaits at that moment is
// cancelled as usual, ctx included, and so are the children of a failing
// TaskGroup. A task's ctx is also cancelled when the task finishes.
//
// A task sees the values of the ctx it was created from, never its
// cancellation: cancelling a task does not cancel the tasks it spawned
// (as in asyncio; use a TaskGroup to tie lifetimes together). Cancelling
// the ctx given to [Run] cancels the main task. [Loop.Close] cannot leave
// tasks behind: each pending task is reported to the exception handler
// ("Task was destroyed but it is pending!") and unwound: its current await,
// and every await after it, returns a cancellation error at once.
//
// A task whose function returns an error matching context.Canceled (say
// ctx.Err()) ends cancelled, and its error then matches [ErrCancelled] and
// carries the message given to Cancel. A panic is never a cancellation,
// whatever its value.
//
// # Derived contexts
//
// A task's ctx is a context.Context, and Go code derives from it: an await
// given context.WithTimeout(ctx, d), WithDeadline or WithCancel honours
// that ctx's deadline and cancellation. If the derived ctx ends first, the
// await returns its error (it matches ctx.Err(): context.DeadlineExceeded
// or context.Canceled) and the task itself is not cancelled. What the
// await waited for is left as asyncio's wait_for(shield(f)) leaves it: a
// future or task runs on and may be awaited again; a sleep's timer is
// dropped; a lock, condition, semaphore, barrier or queue method that gives
// up holds nothing and loses nothing (an abandoned Get takes no item, an
// abandoned Put inserts nothing, an abandoned Acquire holds no lock, and a
// wake-up it had received is passed on; Condition.Wait still re-acquires
// its lock before it returns). A [TaskGroup] whose ctx ends cancels its
// children and still returns only once they are done. An await that needs
// no wait (a done future, a free lock, a queue with items) succeeds even
// if the derived ctx has ended, as asyncio checks for cancellation only
// where a task yields; one that has to wait returns the error at once. A
// ctx derived by values only (context.WithValue) behaves as the task's.
//
// On the virtual clock a ctx's deadline is read as loop time: derive one
// with context.WithDeadline(ctx, l.Time().Add(d)). The virtual clock starts
// at the wall-clock time of [New], so context.WithTimeout(ctx, d) gives the
// same deadline until virtual time has run ahead of the wall clock. A ctx
// cancelled by code running on the loop ends its awaits before the loop
// next waits or moves its clock.
//
// Inside a [Timeout] (and so [WithTimeout]), the body's ctx reports the
// deadline through Deadline, so a net/http or gRPC call made with it sees
// the deadline, and it ends with context.DeadlineExceeded when the deadline
// passes (and with context.Canceled when the body returns). Awaits on that
// ctx follow asyncio rather than the ctx: the expiry cancels the task at
// its current await, and cleanup that awaits after it still waits.
//
// # Errors
//
// asyncio's exceptions are error values for [errors.Is] and [errors.As]:
// [ErrCancelled] (asyncio.CancelledError, which wraps context.Canceled; the
// errors carry the message as [*CancelledError], read by [CancelMessage]),
// [ErrTimeout] (TimeoutError, which wraps context.DeadlineExceeded and is
// not a cancellation; WaitFor and Timeout return it as a [*TimeoutError]
// whose Cause is the CancelledError that caused it, Python's `raise
// TimeoutError from exc`), [ErrInvalidState], and [*ExceptionGroup], the
// several errors of a TaskGroup at once. The RuntimeErrors asyncio raises
// for a loop in the wrong state are sentinels too ([ErrLoopClosed],
// [ErrLoopRunning], [ErrNoRunningLoop], ...).
//
// One rule gives every error's text: the package name and a colon, then
// asyncio's message as CPython words it, its capitals kept, with the
// final period, reprs and values left out and Python's names spelled as
// this package spells them ("loop: Event loop is closed", "loop:
// TaskDone() called too many times", "loop: invalid state: Result is not
// set"). Where asyncio raises without a message, or has no such error, the
// text after the colon is a lowercase Go description ("loop: cancelled",
// "loop: queue empty"). Compare errors with errors.Is, never by text.
//
// An error that nobody reads (with Result, Err, Await, or through a
// combinator such as Gather) is reported to the loop's exception handler
// with asyncio's message, "Task exception was never retrieved" or "Future
// exception was never retrieved", and the task or future in the context's
// Task and Future: when its future is garbage-collected, or at the latest
// when the loop closes (Python reports at interpreter exit), so a short
// program's fire-and-forget task does not fail silently. A report about a
// collected future carries a finished stand-in with its name and error.
// Reports go to the handler the user set, also those a collector makes
// after the loop closed. [Loop.SetExceptionHandler] replaces the handler;
// the default one, [Loop.DefaultExceptionHandler], logs with log/slog at
// error level (see [WithLogger]).
//
// # Panics
//
// A panic inside a task never crashes the loop: it becomes the task's
// error, a [*PanicError] that holds the panic value and the stack of the
// panicking goroutine (Go has no BaseException: a panic is an error like
// any other to a TaskGroup). A panic in a callback is reported to the
// exception handler as a *PanicError, and the loop goes on with the next
// callback; a panic in the exception handler is logged. Misuse of the API
// panics only where asyncio raises and Go has no error result to return
// it in: scheduling on a closed loop panics with [ErrLoopClosed], and
// [Spawn] with a ctx that belongs to no task panics with
// [ErrNoRunningLoop].
//
// A task runs on a coroutine, and Go's runtime aborts the whole process if
// a coroutine is switched while its goroutine's OS-thread lock differs from
// its creator's. The loop keeps that from happening: a task that awaits
// while locked to its thread (runtime.LockOSThread) has its lock released
// and the await panics with [ErrLockedOSThread], so the task fails with a
// *PanicError, and a task that returns locked fails with ErrLockedOSThread.
// Run thread-bound work (a C library that wants one thread, setns) with
// [ToThread] instead. A loop may be driven from a goroutine locked to its
// thread (a GUI program's main), but then only from that goroutine while
// tasks it started are in progress: [Loop.RunForever] and [Loop.Close]
// return ErrLockedOSThread to any other. On such a loop a task must not
// change its lock count either (one more runtime.LockOSThread, or an
// UnlockOSThread, across an await): the runtime compares the count, which
// Go gives no way to read, and aborts the process. A coroutine made there
// whose task called runtime.Goexit can never be switched to again, and
// stays parked until the process exits.
//
// runtime.Goexit inside a task (t.Fatal or t.FailNow in a test) ends that
// task with [ErrGoexit], runs its deferred calls, and never reaches the
// goroutine that drives the loop: the loop goes on.
//
// [Loop.Close] ends every task: a task that recovers from its unwinding
// and awaits again (a "recover and retry" worker loop) is refused a few
// times, then reported to the exception handler ("coroutine ignored
// GeneratorExit", as asyncio reports it) and made to leave with
// runtime.Goexit, which it cannot catch. A task that spins without ever
// awaiting again cannot be stopped by anything.
//
// # Virtual clock
//
// The loop's clock is [Loop.Time], and every timer, Sleep and deadline is
// on it. With [WithVirtualClock], time starts at the wall-clock time of
// [New] and stands still while anything is ready to run; whenever the loop is idle it jumps
// to the next timer's deadline. Code that sleeps for hours runs at once,
// in exactly the order it would run in real time, which makes tests of
// timing code fast and deterministic. Idle means nothing is ready and
// nothing has arrived from other goroutines: the virtual clock does not
// wait for work running elsewhere (a RunCoroutineThreadsafe caller, a
// goroutine that will call CallSoonThreadsafe) while a timer is pending.
//
// # Network I/O
//
// The loop waits for descriptors where it waits for timers (an epoll set
// on Linux, parked in Go's netpoller; poll(2) elsewhere), and reads and
// writes ready sockets on its own goroutine: no goroutine per connection.
// The layers are asyncio's: [Loop.AddReader] and [Loop.AddWriter] for raw
// descriptors; a [Socket] and the sock_* calls ([Loop.SockAccept],
// [Loop.SockRecv], [Loop.SockSendall], ...); transports and protocols
// ([Loop.CreateServer], [Loop.CreateConnection], [Protocol],
// [Transport]); and streams on top of them. A protocol's callbacks run on
// the loop in asyncio's order (ConnectionMade, DataReceived...,
// EOFReceived, ConnectionLost) and must not block. DataReceived's slice is
// the loop's read buffer, valid only during the call. An await on a socket
// or stream honours ctx like every other await: cancelled or timed out, it
// has consumed nothing. Loop.Close reports transports still open and closes
// them, so every descriptor is closed exactly once. On the virtual clock, a
// loop with descriptors looks at them without waiting and then jumps to its
// next timer if nothing is ready; with no timer pending it waits for I/O.
//
// # Debug mode
//
// [WithDebug], [Loop.SetDebug] or the environment variable ASYNCGO_DEBUG=1
// (asyncio's PYTHONASYNCIODEBUG) turn on asyncio's debug mode: every
// callback and task step that runs for [DefaultSlowCallbackDuration] (100ms,
// see [WithSlowCallbackDuration]) or longer is logged at warn level, and
// calls from the wrong goroutine panic. It makes each task switch much
// slower (it reads the clock and the goroutine's id). Tasks destroyed while
// pending and errors never retrieved are reported in every mode.
//
// # Costs
//
// A task switch is one coroutine handoff, the mechanism of [iter.Pull],
// with no goroutine scheduling in between. CallSoon allocates nothing in
// steady state. A parked task costs about 3 KiB of memory (its goroutine's
// stack and record, and the task), against 1.15 KiB for an asyncio task,
// and the garbage collector scans every parked task's stack. docs/bench in
// the repository measures asyncgo against CPython's asyncio and uvloop.
//
// # Source map
//
// Each file mirrors the asyncio module a porter would look in:
// base_events.go is base_events.py (the Loop: scheduling, the iteration,
// Close, the exception handler), events.go is events.py (Handle,
// TimerHandle), futures.go, tasks.go (Task, Sleep, Gather, Wait, WaitFor,
// Shield, AsCompleted, RunCoroutineThreadsafe), timeouts.go,
// taskgroups.go, locks.go, queues.go, runners.go (Run), exceptions.go and
// threads.go (ToThread) are their namesakes; executor_bridge.go is
// run_in_executor and wrap_future. What asyncio has no module for: coro.go
// drives the coroutines tasks run on (stepping, the OS-thread rule,
// Goexit, unwinding at Close); context.go is the task's ctx and the
// watching of derived ctxs; debug.go is debug mode; waiters.go is the wait
// list every lock and queue blocks on; ring.go, timerheap.go and
// selfpipe.go are the ready queue, the timer heap and the wake-up a blocked
// loop sleeps on. The network half: selector_events.go is selector_events.py
// (the descriptor registry and pollIO), with poll_linux.go and
// poll_other.go as its selectors; socket.go is the Socket and the sock_*
// calls; selector_transport.go the socket transport; base_events_net.go
// create_server, create_connection and Server; protocols.go and
// transports.go are their namesakes; sslproto.go is TLS, streams.go streams
// and datagram.go UDP. The OS half: unix_events.go is unix_events.py's
// pipe transports (ConnectReadPipe, ConnectWritePipe) and unix_signals.go
// its signal handlers; base_subprocess.go and subprocess.go are their
// namesakes, with proc_linux.go (a pidfd in the poller) and proc_other.go
// as the child watchers.
//
// # Subprocesses and signals
//
// [CreateSubprocessExec] and [CreateSubprocessShell] start a child with
// its streams inherited, or [PIPE], [DEVNULL], [STDOUT] (stderr only) or
// [StdioFile]; the [Process] has Stdin (a StreamWriter), Stdout and Stderr
// (StreamReaders), Communicate, Wait, SendSignal, Terminate, Kill and a
// ReturnCode that is minus the signal for a killed child, as Python's.
// [Loop.SubprocessExec] and [Loop.SubprocessShell] are the protocol form
// ([SubprocessProtocol]). On Linux the loop learns of a child's exit from
// a pidfd in its poller and reaps it there: no thread or goroutine per
// child, and signals go through the pidfd, never to a reused pid.
// Cancelling Wait or Communicate kills nothing, as in asyncio.
//
// [Loop.AddSignalHandler] runs a callback on the loop for each signal
// (never inside the signal delivery); [Run] turns the first SIGINT into
// cancelling the main task ([ErrKeyboardInterrupt] when it ends
// cancelled) and a second into an immediate stop, as asyncio.run.
package loop
