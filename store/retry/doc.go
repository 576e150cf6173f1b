// Package retry wraps a store.Store so that transient failures are retried
// with exponential backoff and full jitter.
//
// # What is retried
//
// An error is transient unless it is (errors.Is) one of store.ErrNotFound,
// ErrExists, ErrPrecondition, ErrInvalidRange, ErrInvalidName, ErrPermanent,
// context.Canceled or context.DeadlineExceeded, or the call's context is
// done. A cancelled context stops retrying at once and writes nothing.
//
// Load is retried when the inner Load fails before or after calling fn, or
// when the reader handed to fn failed (a connection reset, a truncated
// body: io.ErrUnexpectedEOF). An error that fn returns while its reader
// never failed is fn's own (bad data, a full disk) and comes back at once.
// fn may therefore run more than once and must start over each time, as
// store.Store.Load already requires.
//
// List is retried from the start, but fn sees each name once: names at or
// before the last one delivered are skipped, which relies on List's
// lexical order. An error from fn is returned at once.
//
// Save resends the same bytes. Remove and Stat are idempotent. Invalidate
// (store.Invalidator) is forwarded once: it drops a local copy.
//
// # Ambiguous conditional saves
//
// A failed attempt may still have been applied (the request reached the
// server, the response got lost). A create-only Save (IfNoneMatch) whose
// retry then finds the object reports store.ErrExists, and an IfMatch Save
// whose retry finds its own new version reports store.ErrPrecondition,
// although the first attempt may have succeeded. The wrapper does not hide
// this: such errors also wrap ErrAmbiguous, and the caller decides (for a
// content-addressed name, ErrExists means the same bytes are there; for
// other names, Load and compare).
package retry
