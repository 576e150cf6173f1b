// Package location turns a repository location, as a user types it, into
// a ready store.Store.
//
// A location is one of:
//
//	/path/to/repo, ./repo, repo      a local folder (store/local)
//	file:///path/to/repo              the same, as a URL
//	s3://BUCKET/PREFIX                an S3 bucket, under an optional key prefix
//	r2://ACCOUNT_ID/BUCKET/PREFIX     a Cloudflare R2 bucket of that account
//
// A location that looks like a mistyped URL is ErrInvalid, never a local
// folder: a scheme-shaped prefix with a colon but no "//" ("s3:/bucket",
// "r2:x", "file:/x", "backup:2024"), a known scheme without its colon
// ("s3//bucket"), or an unknown scheme ("gs://bucket"). The error suggests
// the URL meant; a folder really named so is written "./s3:x". Without this
// a typo would become a new, empty local repository, since backup creates
// one where there is none.
//
// For s3:// the endpoint is Options.Endpoint, else AWS_ENDPOINT_URL_S3, else
// AWS_ENDPOINT_URL, else Amazon S3 itself; a custom endpoint switches to
// path-style addressing, which every S3-compatible server accepts. The
// region is AWS_REGION (else AWS_DEFAULT_REGION, else us-east-1), and the
// credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, shared files, instance roles).
//
// For r2:// the endpoint is https://ACCOUNT_ID.r2.cloudflarestorage.com
// (Options.Endpoint overrides it, for example with the ".eu." endpoint of an
// EU-jurisdiction bucket), the region is "auto", and the credentials are
// R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY when set, else the standard AWS
// chain.
//
// Remote stores come wrapped in store/retry, so transient failures are
// retried patiently; the S3 client's own few quick retries sit below that
// (see store/s3). Local stores are not wrapped: a disk error does not heal
// by waiting.
//
// Open never contacts the server: a wrong bucket or wrong credentials show
// up on the first request, as errors wrapping store.ErrPermanent.
package location
