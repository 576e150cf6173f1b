package location

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/local"
	"github.com/sandsnap/sandsnap/store/retry"
	"github.com/sandsnap/sandsnap/store/s3"
)

// ErrInvalid marks a location that cannot be parsed or is not supported.
var ErrInvalid = errors.New("location: invalid repository location")

// Options adjusts how a location is opened. The zero value is ready to use.
type Options struct {
	// Endpoint overrides the S3 API endpoint that the environment gives
	// (s3://) or that the account implies (r2://).
	Endpoint string
	// Logf, if set, reports retries.
	Logf func(format string, args ...any)
}

// Open returns the store at location, which must exist: a local folder
// that is missing is an error wrapping store.ErrNotFound. ctx is used only
// while Open runs.
func Open(ctx context.Context, location string, opts Options) (store.Store, error) {
	return open(ctx, location, opts, false)
}

// Create is Open, except that it makes a missing local folder (and its
// parents). For S3 and R2 it is the same as Open: buckets are made by
// their owner, not by sandsnap.
func Create(ctx context.Context, location string, opts Options) (store.Store, error) {
	return open(ctx, location, opts, true)
}

func open(ctx context.Context, location string, opts Options, create bool) (store.Store, error) {
	t, err := parse(location, opts.Endpoint, os.Getenv)
	if err != nil {
		return nil, err
	}
	if t.dir != "" {
		if create {
			return local.Create(t.dir)
		}
		return local.Open(t.dir)
	}
	cfg := t.s3
	cfg.Logf = opts.Logf
	s, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("location: %s: %w", location, err)
	}
	return retry.New(s, retry.Options{Logf: opts.Logf}), nil
}

// target is a parsed location: a local folder (dir) or an S3 bucket.
type target struct {
	dir string
	s3  s3.Config
}

// parse reads location; getenv supplies the environment.
func parse(location, endpoint string, getenv func(string) string) (target, error) {
	if location == "" {
		return target{}, fmt.Errorf("%w: empty location", ErrInvalid)
	}
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		if err := checkPath(location); err != nil {
			return target{}, err
		}
		return target{dir: location}, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		return target{}, fmt.Errorf("%w %q: %v", ErrInvalid, location, err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return target{}, fmt.Errorf("%w %q: query, fragment or user info not supported", ErrInvalid, location)
	}
	switch scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" || u.Path == "" {
			return target{}, fmt.Errorf("%w %q: want file:///absolute/path", ErrInvalid, location)
		}
		return target{dir: u.Path}, nil
	case "s3":
		return parseS3(location, rest, endpoint, getenv)
	case "r2":
		return parseR2(location, rest, endpoint, getenv)
	}
	return target{}, fmt.Errorf("%w %q: unknown scheme %q (want a path, file://, s3:// or r2://)", ErrInvalid, location, scheme)
}

// schemes are the URL schemes a location may have.
var schemes = []string{"file", "s3", "r2"}

// checkPath refuses a location without "://" that looks like a URL typed
// wrong rather than a folder: a scheme-shaped prefix before a colon
// ("s3:/bucket", "r2:x", "file:/x", "backup:2024") or a known scheme
// followed by "//" ("s3//bucket"). Taken as a folder, such a typo would
// silently create a new local repository (backup creates one where there
// is none) instead of reaching the bucket. A folder really named so is
// still reachable as "./NAME" or by its absolute path.
func checkPath(location string) error {
	if i := strings.IndexByte(location, ':'); i > 0 && isScheme(location[:i]) {
		scheme := strings.ToLower(location[:i])
		if slices.Contains(schemes, scheme) {
			return fmt.Errorf("%w %q: a URL needs \"://\" after %q: did you mean %s? (a local folder: ./%s)",
				ErrInvalid, location, location[:i], suggestURL(scheme, location[i+1:]), location)
		}
		return fmt.Errorf("%w %q: looks like a URL with scheme %q (want s3://, r2:// or file://; a local folder: ./%s)",
			ErrInvalid, location, location[:i], location)
	}
	first, after, _ := strings.Cut(location, "/")
	if slices.Contains(schemes, strings.ToLower(first)) && strings.HasPrefix(after, "/") {
		return fmt.Errorf("%w %q: did you mean %s? (a local folder: ./%s)",
			ErrInvalid, location, suggestURL(strings.ToLower(first), after), location)
	}
	return nil
}

// suggestURL is the URL a mistyped location most likely meant: scheme,
// "://" and rest without its leading slashes (one kept for file://, whose
// path is absolute).
func suggestURL(scheme, rest string) string {
	rest = strings.TrimLeft(rest, "/")
	if scheme == "file" {
		rest = "/" + rest
	}
	return scheme + "://" + rest
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986: a
// letter, then letters, digits, "+", "-" or ".").
func isScheme(s string) bool {
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// parseS3 reads "BUCKET/PREFIX", the part of an s3:// location after the
// scheme.
func parseS3(location, rest, endpoint string, getenv func(string) string) (target, error) {
	bucket, prefix, err := bucketPrefix(location, rest)
	if err != nil {
		return target{}, err
	}
	if endpoint == "" {
		endpoint = getenv("AWS_ENDPOINT_URL_S3")
	}
	if endpoint == "" {
		endpoint = getenv("AWS_ENDPOINT_URL")
	}
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = s3.DefaultRegion
	}
	return target{s3: s3.Config{
		Bucket:    bucket,
		Prefix:    prefix,
		Endpoint:  endpoint,
		Region:    region,
		PathStyle: endpoint != "",
	}}, nil
}

// parseR2 reads "ACCOUNT_ID/BUCKET/PREFIX", the part of an r2:// location
// after the scheme.
func parseR2(location, rest, endpoint string, getenv func(string) string) (target, error) {
	account, rest, _ := strings.Cut(rest, "/")
	if account == "" || strings.Trim(strings.ToLower(account), "0123456789abcdef") != "" {
		return target{}, fmt.Errorf("%w %q: want r2://ACCOUNT_ID/BUCKET/PREFIX with a hexadecimal account ID", ErrInvalid, location)
	}
	bucket, prefix, err := bucketPrefix(location, rest)
	if err != nil {
		return target{}, err
	}
	if endpoint == "" {
		endpoint = "https://" + strings.ToLower(account) + ".r2.cloudflarestorage.com"
	}
	key, secret := getenv("R2_ACCESS_KEY_ID"), getenv("R2_SECRET_ACCESS_KEY")
	if (key == "") != (secret == "") {
		return target{}, fmt.Errorf("location: %q: set both R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY, or neither", location)
	}
	return target{s3: s3.Config{
		Bucket:          bucket,
		Prefix:          prefix,
		Endpoint:        endpoint,
		Region:          "auto",
		AccessKeyID:     key,
		SecretAccessKey: secret,
		PathStyle:       true,
	}}, nil
}

// bucketPrefix splits "BUCKET/PREFIX" and checks both.
func bucketPrefix(location, rest string) (bucket, prefix string, err error) {
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("%w %q: bucket name %q: want 3 to 63 lowercase letters, digits, dots and hyphens", ErrInvalid, location, bucket)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return bucket, "", nil
	}
	for elem := range strings.SplitSeq(prefix, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.IndexByte(elem, 0) >= 0 {
			return "", "", fmt.Errorf("%w %q: prefix %q has an empty, \".\" or \"..\" element", ErrInvalid, location, prefix)
		}
	}
	return bucket, prefix, nil
}

// validBucket applies S3's bucket naming rules, loosely: R2 and AWS both
// accept what passes, and what fails would be refused by the server with a
// less helpful message.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	first, last := b[0], b[len(b)-1]
	return first != '-' && first != '.' && last != '-' && last != '.'
}
