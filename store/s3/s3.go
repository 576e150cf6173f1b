package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sandsnap/sandsnap/store"
)

const (
	// DefaultMaxConns is the number of requests in flight when
	// Config.MaxConns is 0.
	DefaultMaxConns = 16
	// DefaultRegion is used when Config.Region is empty. R2 wants "auto".
	DefaultRegion = "us-east-1"

	// sdkMaxAttempts and sdkMaxBackoff bound the SDK's own retries (see
	// doc.go: the patient policy lives in store/retry, above this store).
	sdkMaxAttempts = 3
	sdkMaxBackoff  = 2 * time.Second

	// smallRequestTimeout bounds requests whose size does not depend on the
	// data: HEAD, DELETE, one LIST page, one DeleteObjects batch.
	smallRequestTimeout = 60 * time.Second
	// headerTimeout bounds the wait for response headers after a request
	// has been fully sent.
	headerTimeout = 60 * time.Second
	dialTimeout   = 10 * time.Second

	// deleteBatch is the most keys DeleteObjects accepts in one request.
	deleteBatch = 1000
)

// Config describes one repository in one bucket. Only Bucket is required.
type Config struct {
	Bucket string
	// Prefix is the key prefix of the repository inside the bucket; "" is
	// the whole bucket.
	Prefix string
	// Endpoint is the base URL of the S3 API, such as
	// "https://ACCOUNT.r2.cloudflarestorage.com"; empty means Amazon S3 or
	// whatever the standard AWS configuration (AWS_ENDPOINT_URL_S3) says.
	Endpoint string
	// Region defaults to DefaultRegion; R2 takes "auto".
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. When both are
	// empty the standard AWS chain is used (environment, shared files,
	// instance roles).
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle puts the bucket in the URL path instead of the host name;
	// most custom endpoints need it.
	PathStyle bool
	// MaxConns bounds the requests in flight; 0 means DefaultMaxConns.
	MaxConns int
	// HTTPClient replaces the store's own client (and with it the
	// connection pool sizing and transport timeouts described in doc.go).
	// Tests use it to count attempts.
	HTTPClient *http.Client
	// Logf, if set, receives one line per retried request from the SDK.
	Logf func(format string, args ...any)
}

// BatchRemover is an optional extension of store.Store for stores that can
// delete many objects in one request. Callers type-assert and fall back to
// Remove per name. It will move to package store once a second store has
// it.
type BatchRemover interface {
	// RemoveMany deletes names; names that do not exist are not an error.
	RemoveMany(ctx context.Context, names []string) error
}

// Store is a store.Store over one bucket prefix. It is safe for concurrent
// use.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	endpoint string // for error messages
	sem      chan struct{}
}

var (
	_ store.Store  = (*Store)(nil)
	_ BatchRemover = (*Store)(nil)
)

// New returns a store over cfg.Bucket/cfg.Prefix. It loads credentials but
// sends no request, so a missing bucket or bad credentials show up on the
// first operation, wrapped in store.ErrPermanent. ctx is used only while
// New runs.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	if strings.ContainsAny(cfg.Bucket, "/\x00") {
		return nil, fmt.Errorf("s3: invalid bucket name %q", cfg.Bucket)
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("s3: give both an access key ID and a secret access key, or neither")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := validName(prefix); err != nil {
			return nil, fmt.Errorf("s3: invalid prefix %q: %w", cfg.Prefix, err)
		}
		prefix += "/"
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}

	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithHTTPClient(httpClient(maxConns)),
		config.WithRetryer(func() aws.Retryer {
			return &retryer{
				Standard: awsretry.NewStandard(func(o *awsretry.StandardOptions) {
					o.MaxAttempts = sdkMaxAttempts
					o.MaxBackoff = sdkMaxBackoff
					o.RateLimiter = ratelimit.None
				}),
				logf: cfg.Logf,
			}
		}),
		// The zero values mean "unset", which is the SDK's
		// checksum-everything default: see doc.go.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		if cfg.HTTPClient != nil {
			// Set here rather than in LoadDefaultConfig, which insists on
			// a client it can modify when AWS_CA_BUNDLE is set.
			o.HTTPClient = cfg.HTTPClient
		}
	})
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "the S3 endpoint"
	}
	return &Store{
		client:   client,
		bucket:   cfg.Bucket,
		prefix:   prefix,
		endpoint: endpoint,
		sem:      make(chan struct{}, maxConns),
	}, nil
}

// retryer is the SDK's standard retryer, bounded as doc.go says, that
// reports each retry to Logf. (The SDK's own retry logging also reports
// every failure that is not retried, such as each 404.)
type retryer struct {
	*awsretry.Standard
	logf func(format string, args ...any)
}

func (r *retryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.Standard.RetryDelay(attempt, err)
	if r.logf != nil && derr == nil {
		r.logf("s3: retrying in %v (attempt %d of %d): %v", d.Round(time.Millisecond), attempt+1, sdkMaxAttempts, err)
	}
	return d, derr
}

// httpClient returns a client whose pool keeps maxConns idle connections
// to the endpoint and whose transport bounds dialing and the wait for
// response headers.
func httpClient(maxConns int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 2 * maxConns
			tr.MaxIdleConnsPerHost = maxConns
			tr.TLSHandshakeTimeout = dialTimeout
			tr.ResponseHeaderTimeout = headerTimeout
		})
}

// acquire takes a request slot, or fails when ctx ends first.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) release() { <-s.sem }

func (s *Store) key(name string) string { return s.prefix + name }

// Save implements store.Store with one PutObject. The body is a
// bytes.Reader, so the SDK can sign it and rewind it for its own retries.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	if err := s.check(ctx, "save", name); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.key(name)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	_, err := s.client.PutObject(ctx, in)
	if err != nil {
		return s.translate("save", name, err, opSave{create: opts.IfNoneMatch, ifMatch: opts.IfMatch != ""})
	}
	return nil
}

// Load implements store.Store with one GetObject, ranged unless the whole
// object is wanted. The reader handed to fn fails with io.ErrUnexpectedEOF
// if the body ends before the expected length.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	if err := s.check(ctx, "load", name); err != nil {
		return err
	}
	if offset < 0 || length < 0 {
		return fmt.Errorf("s3: load %q: offset %d, length %d: %w", name, offset, length, store.ErrInvalidRange)
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(name)),
	}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		s.release()
		err = s.translate("load", name, err, opSave{})
		if errors.Is(err, store.ErrInvalidRange) && offset > 0 && length == 0 {
			// "bytes=N-" on an N-byte object is unsatisfiable for S3,
			// but reading nothing from the very end is a valid request.
			return s.loadAtEnd(ctx, name, offset, fn, err)
		}
		return err
	}
	// The slot is held until the body is read and closed (LIFO defers).
	defer s.release()
	defer out.Body.Close()

	want := length
	if want == 0 {
		want = aws.ToInt64(out.ContentLength)
		if out.ContentLength == nil {
			want = -1 // unknown: trust the transport's own framing
		}
	} else if got := aws.ToInt64(out.ContentLength); out.ContentLength != nil && got < length {
		// A range running past the end comes back truncated, with the
		// object's size in Content-Range.
		if size, ok := rangeSize(aws.ToString(out.ContentRange)); ok && offset+length > size {
			return fmt.Errorf("s3: load %q: bytes %d-%d of a %d-byte object: %w",
				name, offset, offset+length-1, size, store.ErrInvalidRange)
		}
	}
	r := &exactReader{r: out.Body, left: want}
	if err := fn(r); err != nil {
		return err
	}
	return nil
}

// loadAtEnd handles a Load of nothing from offset == size, which S3 refuses
// with 416: a Stat tells whether the offset is exactly the end.
func (s *Store) loadAtEnd(ctx context.Context, name string, offset int64, fn func(io.Reader) error, rangeErr error) error {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return err
	}
	if info.Size != offset {
		return rangeErr
	}
	return fn(bytes.NewReader(nil))
}

// rangeSize parses the total size out of a Content-Range header
// ("bytes 0-9/1234").
func rangeSize(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 || cr[i+1:] == "*" {
		return 0, false
	}
	var n int64
	if _, err := fmt.Sscanf(cr[i+1:], "%d", &n); err != nil {
		return 0, false
	}
	return n, true
}

// exactReader reads a body that must hold exactly left bytes (left < 0:
// unknown). A body that ends early is io.ErrUnexpectedEOF, which retry
// wrappers treat as transient; a longer one is an error too.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left < 0 {
		return e.r.Read(p)
	}
	if e.left == 0 {
		// Probe for extra bytes rather than trusting the server.
		var one [1]byte
		n, err := e.r.Read(one[:])
		if n > 0 {
			return 0, errors.New("s3: response body longer than its range")
		}
		if err == nil || err == io.EOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Stat implements store.Store with one HeadObject.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := s.check(ctx, "stat", name); err != nil {
		return store.Info{}, err
	}
	if err := s.acquire(ctx); err != nil {
		return store.Info{}, err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, smallRequestTimeout)
	defer cancel()
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(name)),
	})
	if err != nil {
		return store.Info{}, s.translate("stat", name, err, opSave{})
	}
	return store.Info{
		Name:    name,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    aws.ToString(out.ETag),
	}, nil
}

// List implements store.Store with ListObjectsV2 pages of up to 1000 keys.
// fn runs between pages, without holding a request slot, so it may call
// the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.IndexByte(prefix, 0) >= 0 || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("s3: list %q: %w", prefix, store.ErrInvalidName)
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := s.listPage(ctx, p)
		if err != nil {
			return s.translate("list", prefix, err, opSave{})
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || name == "" || strings.HasSuffix(name, "/") {
				// A "directory marker" made by other tools is not an
				// object of ours.
				continue
			}
			info := store.Info{
				Name:    name,
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified),
				ETag:    aws.ToString(o.ETag),
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) listPage(ctx context.Context, p *s3.ListObjectsV2Paginator) (*s3.ListObjectsV2Output, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, smallRequestTimeout)
	defer cancel()
	return p.NextPage(ctx)
}

// Remove implements store.Store with one DeleteObject.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := s.check(ctx, "remove", name); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, smallRequestTimeout)
	defer cancel()
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.key(name)),
	})
	if err != nil {
		err = s.translate("remove", name, err, opSave{})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	return nil
}

// RemoveMany implements BatchRemover with DeleteObjects requests of up to
// 1000 keys each, one after the other. Keys the server could not delete are
// reported together in one joined error.
func (s *Store) RemoveMany(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := s.check(ctx, "remove", name); err != nil {
			return err
		}
	}
	for len(names) > 0 {
		n := min(len(names), deleteBatch)
		if err := s.removeBatch(ctx, names[:n]); err != nil {
			return err
		}
		names = names[n:]
	}
	return nil
}

func (s *Store) removeBatch(ctx context.Context, names []string) error {
	ids := make([]types.ObjectIdentifier, len(names))
	for i, name := range names {
		ids[i] = types.ObjectIdentifier{Key: aws.String(s.key(name))}
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, smallRequestTimeout)
	defer cancel()
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return s.translate("remove", fmt.Sprintf("%d objects from %s", len(names), names[0]), err, opSave{})
	}
	var errs []error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		name := strings.TrimPrefix(aws.ToString(e.Key), s.prefix)
		errs = append(errs, fmt.Errorf("s3: remove %q: %s: %s", name, aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return errors.Join(errs...)
}

// CreateBucket creates the store's bucket if it does not exist yet. The
// store itself never calls it: repositories live in buckets that their
// owner made; tests and set-up tools use it.
func (s *Store) CreateBucket(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	var owned *types.BucketAlreadyOwnedByYou
	if errors.As(err, &owned) {
		return nil
	}
	return s.translate("create bucket", s.bucket, err, opSave{})
}

// check refuses work on a done context or an invalid name.
func (s *Store) check(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validName(name); err != nil {
		return fmt.Errorf("s3: %s %q: %w", op, name, err)
	}
	return nil
}

// validName enforces the store's naming rules (see store.ErrInvalidName).
func validName(name string) error {
	if strings.IndexByte(name, 0) >= 0 {
		return store.ErrInvalidName
	}
	// Empty elements ("", "/abs", "a/", "a//b") are refused too: a folder
	// store could not hold them, and names must mean the same everywhere.
	for elem := range strings.SplitSeq(name, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return store.ErrInvalidName
		}
	}
	return nil
}
