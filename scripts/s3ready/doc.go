// Command s3ready waits until the S3 server at an endpoint answers, then
// creates the buckets named on its command line (a bucket that exists
// already is fine). scripts/test.sh runs it after starting versitygw, so
// that every package's tests find the test bucket.
//
// Usage:
//
//	go run ./scripts/s3ready -endpoint http://127.0.0.1:PORT [-timeout 30s] BUCKET...
//
// Credentials and region come from the standard AWS variables
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
package main
