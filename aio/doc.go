// Package aio is aioprocessing for Go: child processes, and the queues,
// pipes, locks, events, conditions, semaphores and barriers they share with
// their parent, each with blocking methods and awaitable Coro twins that
// never block a loop. A Pipe's Connection also hands a live network
// connection to another process, with the bytes already read from it
// (SendConn, RecvConn): a loop per process then serves it.
package aio
