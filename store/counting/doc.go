// Package counting wraps a store.Store and counts its requests and bytes,
// for benchmarks and for tests that pin how many requests an operation
// costs (R2 bills per request).
//
// Each call of a method counts as one request of its kind, whether it
// succeeds or not: Save is a PUT, Load a GET, Stat a HEAD, List a LIST (one
// per call, however many pages the inner store fetches) and Remove a
// DELETE. Invalidate (store.Invalidator) is forwarded and not counted: it
// drops a local copy and reaches no server. BytesUp adds len(data) per Save call; BytesDown adds the bytes
// that fn actually read from Load's reader. Put the counter inside a retry
// wrapper to count every attempt (what the server sees), or outside it to
// count the caller's calls.
package counting
