package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/mem"
)

// cachedFile returns the path of name's copy in the host cache at dir
// (objects/<hex SHA-256 of the name>, see store/cache's doc).
func cachedFile(dir, name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(dir, "objects", hex.EncodeToString(sum[:]))
}

// packOfType returns the name of the one pack in st whose blobs are of
// type t.
func packOfType(t *testing.T, st store.Store, typ pack.BlobType) string {
	t.Helper()
	ctx := context.Background()
	var found []string
	mustDo(t, st.List(ctx, "packs/", func(fi store.Info) error {
		b, err := store.LoadAll(ctx, st, fi.Name, 0, 0)
		if err != nil {
			return err
		}
		es, err := pack.ParseTrailer(chunk.Hash(b), bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		if es[0].Type == typ {
			found = append(found, fi.Name)
		}
		return nil
	}))
	if len(found) != 1 {
		t.Fatalf("want one pack of blob type %d, found %v", typ, found)
	}
	return found[0]
}

// syncLog collects a repository's or cache's log lines.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *syncLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

// TestCorruptCacheHealed: a host-cache copy of a data pack, a tree pack
// or an index delta that rotted on disk (one byte flipped inside its
// data) does not break restores on the host: the repository finds the
// hash mismatch, the cache drops its copy, the object is fetched again
// from the store (one more GET of it, counted below the cache), the
// restore succeeds, and the cached copy is sound again.
func TestCorruptCacheHealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, kind := range []string{"data pack", "tree pack", "index delta"} {
		t.Run(kind, func(t *testing.T) {
			src := t.TempDir()
			writeFile(t, filepath.Join(src, "big.bin"), randomBytes(5, 700<<10))
			writeFile(t, filepath.Join(src, "sub", "small.txt"), []byte("small file\n"))
			inner := &loadCounter{Store: mem.New(), loads: make(map[string]int)}
			dir := t.TempDir()
			var log syncLog
			c, err := cache.New(inner, dir, cache.Options{VerifyReader: repo.VerifyObjectReader, Logf: log.logf})
			mustDo(t, err)
			h := backupOf(t, newTestRepo(t, c, repo.Options{Workers: 1}), src, repo.BackupOptions{})

			var name string
			switch kind {
			case "data pack":
				name = packOfType(t, inner.Store, pack.DataBlob)
			case "tree pack":
				name = packOfType(t, inner.Store, pack.TreeBlob)
			default:
				mustDo(t, inner.Store.List(ctx, "index/", func(fi store.Info) error { name = fi.Name; return nil }))
			}
			// The backup's Save put the object into the cache; flip a byte
			// in the middle of the copy (past the 16-byte header).
			p := cachedFile(dir, name)
			b, err := os.ReadFile(p)
			mustDo(t, err)
			b[16+(len(b)-16)/3] ^= 0x10
			mustDo(t, os.WriteFile(p, b, 0o600))
			inner.loads = make(map[string]int)

			// A new process on this host: it opens the repository (reading
			// the index through the cache) and restores.
			r, err := repo.Open(ctx, c, repo.Options{Workers: 1, Logf: log.logf})
			mustDo(t, err)
			dst := filepath.Join(t.TempDir(), "dst")
			restoreOK(t, r, h.ID, dst)
			sameTree(t, src, dst)

			if got := inner.loads[name]; got != 1 {
				t.Errorf("store served %d GETs of %s, want 1 (the refetch)", got, name)
			}
			if got := c.Stats().Healed; got != 1 {
				t.Errorf("cache Healed = %d, want 1", got)
			}
			if !log.has(name) || !log.has("failed verification") {
				t.Errorf("nothing logged about %s: %q", name, log.lines)
			}
			b, err = os.ReadFile(p)
			mustDo(t, err)
			if err := repo.VerifyObject(name, b[16:]); err != nil {
				t.Errorf("cached copy after the restore: %v", err)
			}
		})
	}
}

// TestCorruptPackStillFails: when the store's own copy is corrupt, the
// second read fails as the first did, and the error names the pack.
func TestCorruptPackStillFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(6, 600<<10))
	inner := &loadCounter{Store: mem.New(), loads: make(map[string]int)}
	c, err := cache.New(inner, t.TempDir(), cache.Options{VerifyReader: repo.VerifyObjectReader})
	mustDo(t, err)
	h := backupOf(t, newTestRepo(t, c, repo.Options{Workers: 1}), src, repo.BackupOptions{})
	name, data, es := dataPack(t, inner.Store)
	bad := bytes.Clone(data)
	bad[es[0].Frame.Offset+es[0].Frame.Length/2] ^= 0x40
	mustDo(t, inner.Store.Save(ctx, name, bad, store.SaveOptions{}))
	// Through a cache that does not verify what it fills, so that the
	// corrupt pack is served: the blob check must catch it, twice.
	c2, err := cache.New(inner, t.TempDir(), cache.Options{})
	mustDo(t, err)
	r, err := repo.Open(ctx, c2, repo.Options{Workers: 1})
	mustDo(t, err)
	_, err = r.Restore(ctx, h.ID, filepath.Join(t.TempDir(), "dst"), repo.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "big.bin") {
		t.Fatalf("restore from a corrupt pack: %v; want an error naming %s and big.bin", err, name)
	}
	if got := c2.Stats().Healed; got != 1 {
		t.Errorf("cache Healed = %d, want 1 (the copy was dropped once)", got)
	}
}
