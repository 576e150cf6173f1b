// Package sandsnap opens a sandsnap repository by location, in one call,
// with the same stack under it as the sandsnap command: the store the
// location names (remote stores retried patiently), a request counter,
// and the host cache whose fills are verified before they are kept.
//
// # Quick start
//
//	r, err := sandsnap.OpenOrInit(ctx, "s3://my-bucket/sandboxes", sandsnap.Options{
//		CacheDir: "/var/cache/sandsnap", // shared by every sandbox on the host
//	})
//	if err != nil { ... }
//	h, err := r.Backup(ctx, "/sandbox/work", repo.BackupOptions{Name: "after-npm-install", TTL: 72 * time.Hour})
//	...
//	_, err = r.Restore(ctx, h.ID, "/sandbox/fork-1", repo.RestoreOptions{})
//
// A location is a local folder, file:///path, s3://BUCKET/PREFIX (endpoint
// from Options.Endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; the usual
// AWS credentials) or r2://ACCOUNT_ID/BUCKET/PREFIX (R2_ACCESS_KEY_ID and
// R2_SECRET_ACCESS_KEY); a location that looks like a mistyped URL is an
// error, never a new folder. store/location has the details.
//
// Open wants an existing repository, OpenOrInit creates one where there is
// none (Repository.Created says so), Init creates one and fails if one
// exists. The Repository returned embeds *repo.Repository, so Backup,
// Restore, Snapshots, Resolve, Verify, GC and the rest are called on it
// directly; Requests and CacheStats report what the store and the host
// cache served. Errors keep their sentinels for errors.Is:
// repo.ErrNoRepository (also for a missing local folder),
// location.ErrInvalid, store.ErrExists, and those of repo.
//
// Package repo holds the engine and store the storage layer; use them
// directly to assemble another stack (an in-memory store in tests, a
// store wrapper of your own).
package sandsnap
