// Package storetest is the one conformance suite that every store.Store
// implementation runs (mem, local, s3) and that wrapper stacks may run too.
//
// Run takes a constructor rather than a store, so that every subtest starts
// from an empty store: a fresh directory for local, a fresh key prefix for
// S3. The suite is written to finish in seconds, also over HTTP against a
// real S3 server; its largest steps are one 20 MiB object and a listing of
// 1100 objects (more than one 1000-key S3 page).
//
// Semantics pinned here beyond store.go's comments:
//
//   - Load with offset == size and length 0 yields no bytes and no error;
//     a negative offset or length is store.ErrInvalidRange, as is any range
//     ending past the object's end (also on a zero-length object).
//   - Load, Stat and Remove of a missing name: ErrNotFound (Remove: nil).
//   - Save with IfMatch on a missing name: ErrNotFound or ErrPrecondition.
//   - A Save's ETag differs from the previous one when the bytes differ, and
//     List reports the same ETag as Stat.
//   - Every method given a cancelled context returns an error wrapping
//     context.Canceled and changes nothing.
//   - fn's error comes back from List and Load (errors.Is), after fn was
//     called exactly once.
//   - ModTime is stamped by the store's clock on every Save, within
//     5 minutes of the host's; List and Stat agree to the second; an
//     overwrite moves it forward (after at most a second, S3's HEAD
//     resolution) and never back; an object saved later is never stamped
//     earlier. Leases, clock probes and TTLs rely on all of it.
package storetest
