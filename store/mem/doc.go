// Package mem is an in-memory store.Store for fast unit tests.
//
// It is deliberately stricter than the production stores, so that code
// which passes against it also behaves against local folders and S3:
//
//   - Names are validated: "", a leading or trailing "/", an empty, "." or
//     ".." element, or a NUL byte is store.ErrInvalidName.
//   - Data is copied in on Save and out on Load, so neither the caller's
//     slice nor the reader handed to fn aliases stored bytes, and the reader
//     fails once fn has returned (a caller that keeps it has a bug).
//   - An ETag is a fresh counter value per Save ("m1", "m2", ...), so two
//     saves of equal bytes still get different tags; callers may not rely
//     on ETags being content hashes.
//   - Ranges are strict: a negative offset or length, or a range that ends
//     past the object's end, is store.ErrInvalidRange. An offset equal to
//     the size with length 0 ("to the end") is valid and yields no bytes.
//   - Every method returns ctx.Err() (wrapped) before doing anything, and
//     List checks ctx again before each call of fn.
//
// ModTime comes from an injectable clock (NewWithClock). A Store is safe for
// concurrent use; fn callbacks run without the store's lock held, so they may
// call back into the store.
package mem
