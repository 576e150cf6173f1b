package repo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/mem"
)

// markerName is the incomplete-restore marker's name (repo.markerName).
const markerName = ".sandsnap-restoring"

// TestRestoreReservedName: a snapshot whose root holds the marker's name
// is refused before anything is written, and a backup of a directory
// holding it is refused.
func TestRestoreReservedName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tree := &manifest.Tree{Nodes: []manifest.Node{
		{Name: markerName, Type: manifest.TypeFile, Mode: 0o644},
		{Name: "a", Type: manifest.TypeFile, Mode: 0o644},
	}}
	enc, err := tree.Encode()
	mustDo(t, err)
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	id := storeTree(t, st, enc)
	r, err := repo.Open(ctx, st, repo.Options{})
	mustDo(t, err)
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Restore(ctx, id, dst, repo.RestoreOptions{}); !errors.Is(err, repo.ErrUnsafePath) || !strings.Contains(err.Error(), markerName) {
		t.Errorf("restore of a snapshot holding %s: %v; want ErrUnsafePath naming it", markerName, err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("refused restore created its target: %v", err)
	}

	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a"), nil)
	writeFile(t, filepath.Join(src, markerName), []byte("not even JSON"))
	if _, err := r.Backup(ctx, src, repo.BackupOptions{}); !errors.Is(err, repo.ErrIncomplete) || !strings.Contains(err.Error(), filepath.Join(src, markerName)) {
		t.Errorf("backup of a directory holding the marker: %v; want ErrIncomplete naming the marker", err)
	}
}
