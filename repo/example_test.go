package repo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/local"
)

// Example backs a directory up into a local repository and restores it
// elsewhere, as a sandbox would before it stops and after it resumes.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "sandsnap-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	src := filepath.Join(tmp, "work")
	if err := os.MkdirAll(filepath.Join(src, "node_modules", "left-pad"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "node_modules", "left-pad", "index.js"), []byte("module.exports = pad\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	st, err := local.Create(filepath.Join(tmp, "repo"))
	if err != nil {
		log.Fatal(err)
	}
	r, err := repo.OpenOrInit(ctx, st, repo.Options{})
	if err != nil {
		log.Fatal(err)
	}
	h, err := r.Backup(ctx, src, repo.BackupOptions{Name: "after-npm-install"})
	if err != nil {
		log.Fatal(err)
	}

	// The handle is all a later restore needs; usually it travels as JSON.
	if _, err := r.Restore(ctx, h.ID, filepath.Join(tmp, "fork"), repo.RestoreOptions{}); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(tmp, "fork", "node_modules", "left-pad", "index.js"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d file, %q", h.Name, h.Stats.Files, b)
	// Output: after-npm-install: 1 file, "module.exports = pad\n"
}
