package sandsnap_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/location"
)

// TestExample runs Example against the S3 server that scripts/test.sh
// starts, under a prefix of its own, and removes what it wrote.
func TestExample(t *testing.T) {
	endpoint, bucket := os.Getenv("SANDSNAP_TEST_S3_ENDPOINT"), os.Getenv("SANDSNAP_TEST_S3_BUCKET")
	if endpoint == "" || bucket == "" {
		t.Skip("SANDSNAP_TEST_S3_ENDPOINT or SANDSNAP_TEST_S3_BUCKET not set: run scripts/test.sh to start the S3 server")
	}
	loc := fmt.Sprintf("s3://%s/example-%d", bucket, time.Now().UnixNano())
	t.Setenv("SANDSNAP_REPO", loc)
	t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)
	t.Cleanup(func() { removeAll(t, loc) })
	got := captureStdout(t, Example)
	want := "after-npm-install: 1 file, \"module.exports = pad\\n\"\ncreated: true, uploaded: true\n"
	if got != want {
		t.Errorf("Example printed %q; want %q", got, want)
	}
	// What the example left is a repository in the bucket: Open finds it.
	r, err := sandsnap.Open(t.Context(), loc, sandsnap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if hs, err := r.Snapshots(t.Context(), repo.ListOptions{}); err != nil || len(hs) != 1 || hs[0].Name != "after-npm-install" {
		t.Errorf("snapshots in %s: %+v, %v; want the example's one", loc, hs, err)
	}
}

// captureStdout runs fn with os.Stdout going to a pipe and returns what fn
// printed.
func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	defer func() { os.Stdout = old }()
	fn()
	w.Close()
	return <-out
}

// removeAll removes every object at loc. It runs as a cleanup, after
// t.Context is cancelled.
func removeAll(t *testing.T, loc string) {
	ctx := context.Background()
	st, err := location.Open(ctx, loc, location.Options{})
	if err != nil {
		t.Error(err)
		return
	}
	var names []string
	err = st.List(ctx, "", func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	for _, n := range names {
		if err == nil {
			err = st.Remove(ctx, n)
		}
	}
	if err != nil {
		t.Errorf("cleaning up %s: %v", loc, err)
	}
}

// TestOpenMissing checks that Open creates nothing and says where there
// is no repository, for a missing folder and an empty one alike.
func TestOpenMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, loc := range []string{missing, "file://" + missing, t.TempDir()} {
		_, err := sandsnap.Open(t.Context(), loc, sandsnap.Options{CacheDir: t.TempDir()})
		if !errors.Is(err, repo.ErrNoRepository) || !strings.Contains(err.Error(), "no sandsnap repository at "+loc) {
			t.Errorf("Open(%s) error = %v; want ErrNoRepository naming the location", loc, err)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created %s (%v)", missing, err)
	}
}

// TestOpenOrInit checks Created and that Init refuses an existing
// repository.
func TestOpenOrInit(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "a", "repo")
	first, err := sandsnap.OpenOrInit(t.Context(), loc, sandsnap.Options{})
	if err != nil || !first.Created {
		t.Fatalf("OpenOrInit of a missing folder: %+v, %v; want a created repository", first, err)
	}
	again, err := sandsnap.OpenOrInit(t.Context(), loc, sandsnap.Options{})
	if err != nil || again.Created || again.Config().ID != first.Config().ID {
		t.Errorf("second OpenOrInit: created %v, ID %s, %v; want the first's repository %s", again.Created, again.Config().ID, err, first.Config().ID)
	}
	_, err = sandsnap.Init(t.Context(), loc, sandsnap.Options{})
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "already exists at "+loc) {
		t.Errorf("Init over a repository: error = %v; want ErrExists naming the location", err)
	}
	better := filepath.Join(t.TempDir(), "better")
	r, err := sandsnap.Init(t.Context(), better, sandsnap.Options{Init: repo.InitOptions{Compression: "better"}})
	if err != nil || !r.Created || r.Config().Compression != "better" {
		t.Errorf("Init with compression better: %+v, %v", r, err)
	}
}

// TestMistypedLocation checks that a location typo creates nothing, also
// through the modes that create folders.
func TestMistypedLocation(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, loc := range []string{"s3:/bucket", "s3//bucket", "r2:x", "file:/x", "xyz://bucket"} {
		if _, err := sandsnap.OpenOrInit(t.Context(), loc, sandsnap.Options{}); !errors.Is(err, location.ErrInvalid) {
			t.Errorf("OpenOrInit(%q) error = %v; want location.ErrInvalid", loc, err)
		}
		if _, err := sandsnap.Init(t.Context(), loc, sandsnap.Options{}); !errors.Is(err, location.ErrInvalid) {
			t.Errorf("Init(%q) error = %v; want location.ErrInvalid", loc, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("mistyped locations created %v", entries)
	}
}

// TestStack backs up and restores through the host cache and checks what
// the caller sees of the stack: request counts below the cache, and a
// second process on the host served from the cache.
func TestStack(t *testing.T) {
	ctx := t.Context()
	loc, cacheDir := filepath.Join(t.TempDir(), "repo"), t.TempDir()
	src := t.TempDir()
	data := make([]byte, 1<<20)
	rand.Read(data) // incompressible: its pack is as large as the file
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := sandsnap.OpenOrInit(ctx, loc, sandsnap.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	h, err := w.Backup(ctx, src, repo.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Requests(); got.Puts == 0 || got.BytesUp == 0 {
		t.Errorf("requests after a backup: %+v; want puts counted", got)
	}
	r, err := sandsnap.Open(ctx, loc, sandsnap.Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(ctx, h.ID, filepath.Join(t.TempDir(), "dst"), repo.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	cs, ok := r.CacheStats()
	if !ok || cs.Hits == 0 {
		t.Errorf("cache stats after restoring what this host backed up: %+v, %v; want hits", cs, ok)
	}
	// The config, gc state and snapshot objects are read from the store;
	// the pack comes from the cache.
	if got := r.Requests(); got.BytesDown >= int64(len(data)) {
		t.Errorf("a restore from a warm host cache read %d bytes from the store; want less than the %d of the file", got.BytesDown, len(data))
	}
}

// TestCacheOptional checks that a cache folder that cannot be made fails
// Open unless the caller said it is optional.
func TestCacheOptional(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "repo")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "cache") // below a file: never a folder
	if _, err := sandsnap.OpenOrInit(t.Context(), loc, sandsnap.Options{CacheDir: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("OpenOrInit with cache %s: error = %v; want one naming it", bad, err)
	}
	r, err := sandsnap.OpenOrInit(t.Context(), loc, sandsnap.Options{CacheDir: bad, CacheOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.CacheStats(); ok {
		t.Error("an unusable optional cache is in use")
	}
}
