// Package s3 is a store.Store over the S3 API: Amazon S3, Cloudflare R2, and
// any server that speaks the same protocol (the test command runs versitygw).
//
// Words used here:
//
//   - bucket: the S3 bucket that holds the repository. It must exist; New
//     never creates it (CreateBucket does, for tests and set-up tools).
//   - prefix: the key prefix under which the repository lives inside the
//     bucket. A store object named "config" is the key PREFIX/config. The
//     prefix is always stored with one trailing slash, so "a" and "a/" are the
//     same repository.
//   - endpoint: the base URL of the S3 API. Empty means Amazon S3 itself;
//     custom endpoints (R2, versitygw, MinIO) usually need path-style
//     addressing (Config.PathStyle).
//
// # Errors
//
// Every aws-sdk-go-v2 and smithy-go type stays inside this package. Errors
// are translated at the edge, in one function, into the store sentinels:
// 404 NoSuchKey is store.ErrNotFound, 416 is store.ErrInvalidRange, 412 (and
// 409 ConditionalRequestConflict) is store.ErrExists for a create-only Save and
// store.ErrPrecondition for an If-Match Save. Refused credentials (403) and a
// missing bucket are wrapped with store.ErrPermanent and a one-line message,
// so that retry wrappers give up at once. Everything else (5xx, resets,
// refused connections, short bodies as io.ErrUnexpectedEOF) is left
// unclassified, that is transient.
//
// A HEAD request has no body, so Stat cannot tell a missing bucket from a
// missing object: Stat in a missing bucket reports store.ErrNotFound. Every
// other method names the bucket.
//
// # Retries, in two layers
//
// The SDK's own retryer makes at most three attempts per request, with at most
// two seconds between them, and without its client-side retry quota (which
// would otherwise turn a burst of failures into "retry quota exceeded" errors
// unrelated to the request). This absorbs single dropped connections and
// 503 SlowDown bursts cheaply, and makes an unreachable endpoint fail within
// seconds. The long, patient policy (minutes, with logging) belongs to the
// store/retry wrapper that store/location puts above this store; it skips
// errors marked store.ErrPermanent.
//
// # Concurrency and timeouts
//
// At most Config.MaxConns requests are in flight at once (a semaphore); a
// Load holds its slot until fn returns, because the body is still being read,
// so fn must not call back into the same store. The HTTP transport keeps
// MaxConns idle connections to the endpoint, so that a full pipeline never
// re-dials.
//
// There is no overall timeout on Save and Load: a 16 MiB pack over a slow
// link can take minutes, and the caller's ctx is the deadline. The transport
// bounds the parts that are never legitimately slow: dialing (10 s), the TLS
// handshake (10 s) and the wait for response headers once a request is fully
// sent (60 s). Stat, Remove, RemoveMany batches and each List page, whose
// size does not depend on the data, also get a 60 s per-request deadline.
//
// # Checksums
//
// RequestChecksumCalculation and ResponseChecksumValidation are both set to
// "when required". The SDK's default (trailing CRC32 checksums on every
// upload, validation on every download) breaks uploads and ranged reads on R2
// and on several S3-compatible servers. Integrity does not depend on it: every
// pack names itself by the BLAKE3 of its bytes and every blob is verified on
// read. The store never sets Content-MD5, so it cannot collide with an
// x-amz-checksum-* header that the SDK adds where the API requires one
// (DeleteObjects).
package s3
