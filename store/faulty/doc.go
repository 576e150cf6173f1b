// Package faulty wraps a store.Store and injects faults, for testing how
// callers and wrappers (retry) survive an unreliable store.
//
// # Fault kinds
//
//   - FailBefore: the call returns ErrInjected without reaching the inner
//     store (a request that never arrived).
//   - FailAfter: the call is applied and then reports ErrInjected (a lost
//     response): a Save or Remove took effect, a Load or List ran fn. A
//     call that failed anyway keeps its own error.
//   - Delay: the call waits up to Options.MaxDelay first, then proceeds.
//   - TruncateRead: Load's reader ends with io.ErrUnexpectedEOF after a
//     random number of bytes (below 64 KiB) instead of a clean io.EOF; on
//     other methods it acts as FailBefore.
//
// Invalidate (store.Invalidator) is forwarded without a fault: it drops a
// local copy and reaches no server.
//
// ErrInjected is transient: retry.Retryable reports true for it.
//
// # Choosing faults
//
// Each call first asks Options.Inject, if set, which lets a test fault one
// precise call; when it returns None, a fault is injected with probability
// Options.Rate, of a kind drawn uniformly from Options.Kinds, on the methods
// in Options.Methods. The draws come from one generator seeded with
// Options.Seed, so a single-goroutine test sees the same faults every run;
// with concurrent callers the order of draws, and so the faults, vary. A
// call whose context is already done passes through without a fault, so the
// inner store reports the context's error.
package faulty
