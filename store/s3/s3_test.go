package s3

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/storetest"
)

// The tests in this file run against a real S3 server: the one that
// scripts/test.sh starts (SANDSNAP_TEST_S3_ENDPOINT and
// SANDSNAP_TEST_S3_BUCKET, credentials from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, region from AWS_REGION), or Cloudflare R2 for
// TestR2. Without those variables they skip.

// serverConfig returns the configuration of the test server's bucket, or
// skips the test.
func serverConfig(t *testing.T) Config {
	t.Helper()
	endpoint := os.Getenv("SANDSNAP_TEST_S3_ENDPOINT")
	if endpoint == "" {
		t.Skipf("SANDSNAP_TEST_S3_ENDPOINT not set: run scripts/test.sh to start the S3 server")
	}
	bucket := os.Getenv("SANDSNAP_TEST_S3_BUCKET")
	if bucket == "" {
		bucket = "sandsnap-test"
	}
	return Config{
		Bucket:    bucket,
		Endpoint:  endpoint,
		Region:    os.Getenv("AWS_REGION"),
		PathStyle: true,
		Logf:      t.Logf,
	}
}

// r2Config returns the configuration of the R2 test bucket, or skips the
// test.
func r2Config(t *testing.T) Config {
	t.Helper()
	vars := []string{"R2_TEST_ACCOUNT_ID", "R2_TEST_BUCKET", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"}
	for _, v := range vars {
		if os.Getenv(v) == "" {
			t.Skipf("%s not set: the R2 test needs %s", v, strings.Join(vars, ", "))
		}
	}
	return Config{
		Bucket:          os.Getenv("R2_TEST_BUCKET"),
		Endpoint:        "https://" + os.Getenv("R2_TEST_ACCOUNT_ID") + ".r2.cloudflarestorage.com",
		Region:          "auto",
		AccessKeyID:     os.Getenv("R2_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("R2_SECRET_ACCESS_KEY"),
		PathStyle:       true, // as store/location does
		Logf:            t.Logf,
	}
}

// uniquePrefix returns a key prefix that no other test or test run uses.
func uniquePrefix(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	return "s3test/" + name + "-" + strings.ToLower(rand.Text()[:10])
}

// openTest opens cfg under a unique prefix and removes everything under
// it when the test ends, also on a real bucket such as R2's.
func openTest(t *testing.T, cfg Config, createBucket bool) *Store {
	t.Helper()
	cfg.Prefix = uniquePrefix(t)
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if createBucket {
		if err := s.CreateBucket(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var names []string
		err := s.List(ctx, "", func(fi store.Info) error {
			names = append(names, fi.Name)
			return nil
		})
		if err == nil {
			err = s.RemoveMany(ctx, names)
		}
		if err != nil {
			t.Errorf("cleaning up prefix %s: %v", cfg.Prefix, err)
		}
	})
	return s
}

func TestSuite(t *testing.T) {
	cfg := serverConfig(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, cfg, true) })
}

func TestR2(t *testing.T) {
	cfg := r2Config(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, cfg, false) })
}

func TestWrongCredentials(t *testing.T) {
	cfg := serverConfig(t)
	s := openTest(t, cfg, true)
	if err := s.Save(t.Context(), "kept", []byte("x"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg.Prefix = s.prefix
	tests := []struct {
		name        string
		key, secret string
		// A HEAD response has no body: versitygw answers an unknown key
		// with 404 there, which Stat cannot tell from a missing object.
		statMayBeNotFound bool
	}{
		{"wrong secret", os.Getenv("AWS_ACCESS_KEY_ID"), "sandsnap-wrong-secret", false},
		{"unknown key", "sandsnap-unknown-key", "sandsnap-wrong-secret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfg
			cfg.AccessKeyID, cfg.SecretAccessKey = tt.key, tt.secret
			bad, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range ops(t.Context(), bad, "kept") {
				if r.op == "stat" && tt.statMayBeNotFound && errors.Is(r.err, store.ErrNotFound) {
					continue
				}
				if !errors.Is(r.err, store.ErrPermanent) || !strings.Contains(r.err.Error(), "check credentials") {
					t.Errorf("%s: error = %v, want ErrPermanent saying to check credentials", r.op, r.err)
				}
			}
		})
	}
	if got, err := store.LoadAll(t.Context(), s, "kept", 0, 0); err != nil || string(got) != "x" {
		t.Errorf("after the refused requests: content = %q, %v; want %q", got, err, "x")
	}
}

func TestMissingBucket(t *testing.T) {
	cfg := serverConfig(t)
	cfg.Bucket = "sandsnap-missing-" + strings.ToLower(rand.Text()[:10])
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ops(t.Context(), s, "x") {
		op, err := r.op, r.err
		if op == "stat" {
			// A HEAD response has no body to name the bucket (doc.go).
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("stat in a missing bucket: error = %v, want ErrNotFound", err)
			}
			continue
		}
		if !errors.Is(err, store.ErrPermanent) || !strings.Contains(err.Error(), cfg.Bucket) {
			t.Errorf("%s in a missing bucket: error = %v, want ErrPermanent naming the bucket", op, err)
		}
	}
}

type opResult struct {
	op  string
	err error
}

// ops runs every store method once on name and returns each one's error.
func ops(ctx context.Context, s *Store, name string) []opResult {
	_, statErr := s.Stat(ctx, name)
	return []opResult{
		{"save", s.Save(ctx, name, []byte("y"), store.SaveOptions{})},
		{"load", s.Load(ctx, name, 0, 0, func(io.Reader) error { return nil })},
		{"stat", statErr},
		{"list", s.List(ctx, "", func(store.Info) error { return nil })},
		{"remove", s.Remove(ctx, name)},
		{"remove many", s.RemoveMany(ctx, []string{name})},
	}
}

func TestServerRemoveMany(t *testing.T) {
	s := openTest(t, serverConfig(t), true)
	for _, name := range []string{"a", "b/c", "d"} {
		if err := s.Save(t.Context(), name, []byte(name), store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveMany(t.Context(), []string{"a", "b/c", "never-saved"}); err != nil {
		t.Fatalf("RemoveMany: %v", err)
	}
	var left []string
	if err := s.List(t.Context(), "", func(fi store.Info) error { left = append(left, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "d" {
		t.Errorf("after RemoveMany, List = %q, want [d]", left)
	}
	if err := s.RemoveMany(t.Context(), []string{"d", "../x"}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("RemoveMany with an invalid name: error = %v, want ErrInvalidName", err)
	}
}

// TestServerRangedReads checks the Range requests against the server with
// a pack-shaped object: many small reads at odd offsets.
func TestServerRangedReads(t *testing.T) {
	s := openTest(t, serverConfig(t), true)
	data := make([]byte, 300_001)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	if err := s.Save(t.Context(), "packs/00/p", data, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ off, n int64 }{
		{0, 1}, {1, 1}, {4095, 2}, {65535, 65537}, {299_999, 2}, {300_000, 1}, {123_457, 0}, {300_001, 0},
	}
	for _, tt := range tests {
		got, err := store.LoadAll(t.Context(), s, "packs/00/p", tt.off, tt.n)
		end := int64(len(data))
		if tt.n > 0 {
			end = tt.off + tt.n
		}
		if err != nil || string(got) != string(data[tt.off:end]) {
			t.Errorf("Load(%d, %d) = %d bytes, %v; want bytes %d-%d", tt.off, tt.n, len(got), err, tt.off, end)
		}
	}
}

// TestServerConditionalWrites checks the create-only and if-match writes
// the repository's commit protocol leans on, with the ETags from List.
func TestServerConditionalWrites(t *testing.T) {
	s := openTest(t, serverConfig(t), true)
	ctx := t.Context()
	if err := s.Save(ctx, "snapshots/s", []byte("1"), store.SaveOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "snapshots/s", []byte("2"), store.SaveOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create-only Save: error = %v, want ErrExists", err)
	}
	var etag string
	if err := s.List(ctx, "snapshots/", func(fi store.Info) error { etag = fi.ETag; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "snapshots/s", []byte("3"), store.SaveOptions{IfMatch: etag}); err != nil {
		t.Errorf("Save if-match the listed ETag: %v", err)
	}
	if err := s.Save(ctx, "snapshots/s", []byte("4"), store.SaveOptions{IfMatch: etag}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("Save if-match a stale ETag: error = %v, want ErrPrecondition", err)
	}
	if got, err := store.LoadAll(ctx, s, "snapshots/s", 0, 0); err != nil || string(got) != "3" {
		t.Errorf("content = %q, %v; want %q", got, err, "3")
	}
}
