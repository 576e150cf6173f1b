package sandsnap_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sandsnap/sandsnap"
	"github.com/sandsnap/sandsnap/repo"
)

// Example backs a directory up into the repository that $SANDSNAP_REPO
// names (an S3 bucket in the tests; the endpoint of an S3-compatible
// server comes from AWS_ENDPOINT_URL_S3, or from Options.Endpoint) and
// restores it elsewhere, as a sandbox would before it stops and after it
// resumes. It prints
//
//	after-npm-install: 1 file, "module.exports = pad\n"
//	created: true, uploaded: true
//
// TestExample runs it against the test S3 server.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "sandsnap-example-")
	check(err)
	defer os.RemoveAll(tmp)
	work, fork := filepath.Join(tmp, "work"), filepath.Join(tmp, "fork")
	check(os.MkdirAll(filepath.Join(work, "node_modules", "left-pad"), 0o755))
	check(os.WriteFile(filepath.Join(work, "node_modules", "left-pad", "index.js"), []byte("module.exports = pad\n"), 0o644))

	r, err := sandsnap.OpenOrInit(ctx, os.Getenv("SANDSNAP_REPO"), sandsnap.Options{
		CacheDir: filepath.Join(tmp, "cache"), // usually one folder per host, shared by its sandboxes
	})
	check(err)
	h, err := r.Backup(ctx, work, repo.BackupOptions{Name: "after-npm-install", TTL: 72 * time.Hour})
	check(err)
	// The handle is all a later restore needs; usually it travels as JSON.
	_, err = r.Restore(ctx, h.ID, fork, repo.RestoreOptions{})
	check(err)

	b, err := os.ReadFile(filepath.Join(fork, "node_modules", "left-pad", "index.js"))
	check(err)
	fmt.Printf("%s: %d file, %q\n", h.Name, h.Stats.Files, b)
	fmt.Printf("created: %v, uploaded: %v\n", r.Created, r.Requests().Puts > 0)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
