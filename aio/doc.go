// Package aio is aioprocessing for Go: child processes, and the queues,
// pipes, locks, events, conditions, semaphores and barriers they share with
// their parent, each with blocking methods and awaitable Coro twins that
// never block a loop.
package aio
