package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/internal/fstree"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/mem"
)

func newTestRepo(t testing.TB, st store.Store, opts repo.Options) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), st, repo.InitOptions{}, opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return r
}

func backupOf(t testing.TB, r *repo.Repository, src string, opts repo.BackupOptions) repo.Handle {
	t.Helper()
	h, err := r.Backup(context.Background(), src, opts)
	if err != nil {
		t.Fatalf("Backup(%s): %v", src, err)
	}
	return h
}

func restoreOK(t testing.TB, r *repo.Repository, id chunk.ID, dst string) repo.RestoreStats {
	t.Helper()
	return restoreWith(t, r, id, dst, repo.RestoreOptions{})
}

// restoreOver restores in place with Delete: these repositories have no
// cache folder, so nothing records that dst was restored before.
func restoreOver(t testing.TB, r *repo.Repository, id chunk.ID, dst string) repo.RestoreStats {
	t.Helper()
	return restoreWith(t, r, id, dst, repo.RestoreOptions{Delete: true})
}

func restoreWith(t testing.TB, r *repo.Repository, id chunk.ID, dst string, opts repo.RestoreOptions) repo.RestoreStats {
	t.Helper()
	s, err := r.Restore(context.Background(), id, dst, opts)
	if err != nil {
		t.Fatalf("Restore to %s: %v", dst, err)
	}
	return s
}

// sameTree fails the test if dst differs from src at the stat level.
func sameTree(t testing.TB, src, dst string, skipped ...string) {
	t.Helper()
	diffs, err := fstree.CompareWith(src, dst, fstree.Options{
		IgnoreRootMeta: true,
		Exclude:        func(rel string) bool { return slices.Contains(skipped, rel) },
	})
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	for _, d := range diffs {
		t.Errorf("after restore: %s", d)
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	mustDo(t, os.MkdirAll(filepath.Dir(path), 0o755))
	mustDo(t, os.WriteFile(path, data, 0o644))
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b[:n]
}

// dirNames lists dir, for checks that nothing was written there.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestRestoreFidelity(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	rep, err := fstree.BuildFidelity(src, fstree.FidelityOptions{Seed: 7, LargeSize: 4 << 20, Special: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rep.Notes {
		t.Log("fidelity:", n)
	}
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := filepath.Join(t.TempDir(), "new", "dst") // created by Restore
	var progress repo.Progress
	s, err := r.Restore(context.Background(), h.ID, dst, repo.RestoreOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, rep.Skipped...)
	if s.Files != h.Stats.Files || s.Dirs != h.Stats.Dirs || s.Symlinks != h.Stats.Symlinks || s.Other != h.Stats.Other || s.Bytes != h.Stats.Bytes {
		t.Errorf("restore counts %+v, backup counted %+v", s, h.Stats)
	}
	if s.FilesUnchanged != 0 || s.Removed != 0 || s.PacksFetched == 0 {
		t.Errorf("fresh restore stats %+v", s)
	}
	if got, want := progress.Files.Load(), int64(s.Files); got != want {
		t.Errorf("progress files = %d; want %d", got, want)
	}
	if got, want := progress.Bytes.Load(), progress.TotalBytes.Load(); got != want {
		t.Errorf("progress bytes = %d; want %d", got, want)
	}
	for _, rel := range rep.Sparse {
		alloc, err := fstree.Allocated(filepath.Join(dst, rel))
		if err != nil {
			t.Fatal(err)
		}
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated, want holes", rel, alloc)
		}
	}

	// Restoring again in place changes nothing and fetches nothing.
	s2 := restoreOver(t, r, h.ID, dst)
	sameTree(t, src, dst, rep.Skipped...)
	if s2.FilesWritten != 0 || s2.Removed != 0 || s2.PacksFetched != 0 || s2.FilesUnchanged != s2.Files {
		t.Errorf("second restore stats %+v; want every file unchanged", s2)
	}
}

// TestRestoreTargetSymlink: a target given as a symlink is followed once.
func TestRestoreTargetSymlink(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a/b.txt"), []byte("hello"))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	base := t.TempDir()
	real := filepath.Join(base, "real")
	mustDo(t, os.Mkdir(real, 0o755))
	mustDo(t, os.Symlink("real", filepath.Join(base, "link")))
	restoreOK(t, r, h.ID, filepath.Join(base, "link"))
	sameTree(t, src, real)

	file := filepath.Join(base, "file")
	writeFile(t, file, nil)
	if _, err := r.Restore(context.Background(), h.ID, file, repo.RestoreOptions{}); !errors.Is(err, repo.ErrNotDir) {
		t.Errorf("restore onto a file: %v; want ErrNotDir", err)
	}
}

// inPlaceSource builds the tree that the in-place cases start from: 5
// files, 2 directories, a symlink.
func inPlaceSource(t *testing.T) string {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha alpha"))
	writeFile(t, filepath.Join(src, "b.bin"), randomBytes(1, 100<<10))
	writeFile(t, filepath.Join(src, "d/c.txt"), []byte("gamma"))
	writeFile(t, filepath.Join(src, "d/e/f.txt"), []byte("phi"))
	writeFile(t, filepath.Join(src, "d/e/g.txt"), []byte("gee"))
	mustDo(t, os.Symlink("d/c.txt", filepath.Join(src, "link")))
	return src
}

func TestRestoreInPlace(t *testing.T) {
	t.Parallel()
	src := inPlaceSource(t)
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	tests := []struct {
		name                       string
		change                     func(t *testing.T, dst, outside string)
		written, unchanged, remove uint64
	}{
		{"nothing", func(*testing.T, string, string) {}, 0, 5, 0},
		{"same size and mtime, other content", func(t *testing.T, dst, _ string) {
			p := filepath.Join(dst, "a.txt")
			fi, err := os.Stat(p)
			mustDo(t, err)
			mustDo(t, os.WriteFile(p, []byte("ALPHA alpha"), 0o644))
			mustDo(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}, 1, 4, 0},
		{"longer file", func(t *testing.T, dst, _ string) {
			writeFile(t, filepath.Join(dst, "d/e/f.txt"), []byte("phi phi phi"))
		}, 1, 4, 0},
		{"metadata only", func(t *testing.T, dst, _ string) {
			p := filepath.Join(dst, "b.bin")
			mustDo(t, os.Chmod(p, 0o600))
			mustDo(t, unix.Lsetxattr(p, "user.extra", []byte("x"), 0))
			mustDo(t, os.Chmod(filepath.Join(dst, "d"), 0o700))
		}, 0, 5, 0},
		{"extra file", func(t *testing.T, dst, _ string) {
			writeFile(t, filepath.Join(dst, "d/extra"), []byte("x"))
		}, 0, 5, 1},
		{"extra dir", func(t *testing.T, dst, _ string) {
			writeFile(t, filepath.Join(dst, "x/y/z"), []byte("x"))
			mustDo(t, os.Chmod(filepath.Join(dst, "x/y"), 0o555))
		}, 0, 5, 3},
		{"dir in place of a file", func(t *testing.T, dst, _ string) {
			p := filepath.Join(dst, "a.txt")
			mustDo(t, os.Remove(p))
			writeFile(t, filepath.Join(p, "inner"), []byte("x"))
		}, 1, 4, 2},
		{"file in place of a dir", func(t *testing.T, dst, _ string) {
			mustDo(t, os.RemoveAll(filepath.Join(dst, "d/e")))
			writeFile(t, filepath.Join(dst, "d/e"), []byte("x"))
		}, 2, 3, 1},
		{"symlink in place of a dir", func(t *testing.T, dst, outside string) {
			mustDo(t, os.RemoveAll(filepath.Join(dst, "d")))
			mustDo(t, os.Symlink(outside, filepath.Join(dst, "d")))
		}, 3, 2, 1},
		{"symlink with another target", func(t *testing.T, dst, outside string) {
			mustDo(t, os.Remove(filepath.Join(dst, "link")))
			mustDo(t, os.Symlink(outside, filepath.Join(dst, "link")))
		}, 0, 5, 1},
		{"fifo in place of a file", func(t *testing.T, dst, _ string) {
			p := filepath.Join(dst, "d/c.txt")
			mustDo(t, os.Remove(p))
			mustDo(t, unix.Mkfifo(p, 0o644))
		}, 1, 4, 1},
		{"extra hard link", func(t *testing.T, dst, _ string) {
			// a.txt is checked (and found linked) before d/extra is removed.
			mustDo(t, os.Link(filepath.Join(dst, "a.txt"), filepath.Join(dst, "d/extra")))
		}, 1, 4, 1},
		{"hard link from outside", func(t *testing.T, dst, outside string) {
			// Rewritten rather than changed in place, so the outside name
			// keeps its mode; the link is removed again after the check.
			p := filepath.Join(dst, "b.bin")
			mustDo(t, os.Chmod(p, 0o600))
			mustDo(t, os.Link(p, filepath.Join(outside, "link")))
			t.Cleanup(func() {
				fi, err := os.Stat(filepath.Join(outside, "link"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("the outside link changed: %v, %v", fi.Mode(), err)
				}
			})
		}, 1, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			outside := t.TempDir()
			restoreOK(t, r, h.ID, dst)
			tt.change(t, dst, outside)
			s := restoreOver(t, r, h.ID, dst)
			sameTree(t, src, dst)
			if s.FilesWritten != tt.written || s.FilesUnchanged != tt.unchanged || s.Removed != tt.remove {
				t.Errorf("written %d, unchanged %d, removed %d; want %d, %d, %d",
					s.FilesWritten, s.FilesUnchanged, s.Removed, tt.written, tt.unchanged, tt.remove)
			}
			if names := dirNames(t, outside); len(names) != 0 && !slices.Equal(names, []string{"link"}) {
				t.Errorf("restore wrote outside its target: %v", names)
			}
		})
	}
}

func TestRestoreHardLinks(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "one"), []byte("one inode"))
	writeFile(t, filepath.Join(src, "z/two"), nil)
	mustDo(t, os.Remove(filepath.Join(src, "z/two")))
	mustDo(t, os.Link(filepath.Join(src, "one"), filepath.Join(src, "z/two")))
	mustDo(t, os.Link(filepath.Join(src, "one"), filepath.Join(src, "three")))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	dst := t.TempDir()
	s := restoreOK(t, r, h.ID, dst)
	sameTree(t, src, dst)
	if s.FilesWritten != 1 || s.Files != 3 {
		t.Errorf("fresh restore wrote %d of %d files; want 1 of 3", s.FilesWritten, s.Files)
	}

	// A copy in place of a link is replaced by the link.
	p := filepath.Join(dst, "z/two")
	fi, err := os.Stat(p)
	mustDo(t, err)
	mustDo(t, os.Remove(p))
	writeFile(t, p, []byte("one inode"))
	mustDo(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	s = restoreOver(t, r, h.ID, dst)
	sameTree(t, src, dst)
	if s.FilesWritten != 0 || s.FilesUnchanged != 2 || s.Removed != 1 {
		t.Errorf("relink: written %d, unchanged %d, removed %d; want 0, 2, 1", s.FilesWritten, s.FilesUnchanged, s.Removed)
	}
}

// flakyStore breaks the first read of every pack halfway and then calls
// the callback again, as a retrying store does.
type flakyStore struct {
	store.Store
}

var errFlaky = errors.New("connection reset")

func (f flakyStore) Load(ctx context.Context, name string, off, length int64, fn func(io.Reader) error) error {
	if !strings.HasPrefix(name, "packs/") || length == 0 {
		return f.Store.Load(ctx, name, off, length, fn)
	}
	err := f.Store.Load(ctx, name, off, length, func(rd io.Reader) error {
		return fn(io.MultiReader(io.LimitReader(rd, length/2), iotest.ErrReader(errFlaky)))
	})
	if !errors.Is(err, errFlaky) {
		return fmt.Errorf("first read: %v, want %v", err, errFlaky)
	}
	return f.Store.Load(ctx, name, off, length, fn)
}

// TestRestoreRetriedRead: a range read that the store retries writes
// every byte once.
func TestRestoreRetriedRead(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(src, fmt.Sprint("f", i)), randomBytes(uint64(i), 50<<10+i))
	}
	writeFile(t, filepath.Join(src, "big"), randomBytes(99, 3<<20))
	st := mem.New()
	h := backupOf(t, newTestRepo(t, st, repo.Options{}), src, repo.BackupOptions{})
	r, err := repo.Open(context.Background(), flakyStore{st}, repo.Options{})
	mustDo(t, err)
	dst := t.TempDir()
	s := restoreOK(t, r, h.ID, dst)
	sameTree(t, src, dst)
	if s.BytesWritten != s.Bytes || s.FilesWritten != s.Files {
		t.Errorf("wrote %d files, %d bytes; want %d, %d", s.FilesWritten, s.BytesWritten, s.Files, s.Bytes)
	}
}

// TestRestorePlantedSymlink: symlinks planted in the target where the
// snapshot has directories never redirect a write outside the target.
func TestRestorePlantedSymlink(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a/file"), []byte("inside a"))
	writeFile(t, filepath.Join(src, "a/sub/deep"), []byte("inside a/sub"))
	writeFile(t, filepath.Join(src, "b/new"), []byte("new in b"))
	r := newTestRepo(t, mem.New(), repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{})
	tests := []struct {
		name  string
		plant func(dst, outside string) error
	}{
		{"top", func(dst, outside string) error { return os.Symlink(outside, filepath.Join(dst, "a")) }},
		{"nested", func(dst, outside string) error {
			if err := os.Mkdir(filepath.Join(dst, "a"), 0o755); err != nil {
				return err
			}
			return os.Symlink(outside, filepath.Join(dst, "a", "sub"))
		}},
		{"file name", func(dst, outside string) error {
			if err := os.Mkdir(filepath.Join(dst, "b"), 0o755); err != nil {
				return err
			}
			return os.Symlink(filepath.Join(outside, "new"), filepath.Join(dst, "b", "new"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, outside := t.TempDir(), t.TempDir()
			mustDo(t, tt.plant(dst, outside))
			restoreOver(t, r, h.ID, dst)
			sameTree(t, src, dst)
			if names := dirNames(t, outside); len(names) != 0 {
				t.Errorf("restore wrote through a planted symlink: %v", names)
			}
		})
	}
}

func TestRestoreExpired(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("f"))
	// Expiry is judged by the store's clock (object ModTimes), not the
	// host's: the test moves the store's.
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var after atomic.Int64
	st := mem.NewWithClock(func() time.Time { return now.Add(time.Duration(after.Load())) })
	r := newTestRepo(t, st, repo.Options{})
	h := backupOf(t, r, src, repo.BackupOptions{TTL: time.Hour})
	for _, tt := range []struct {
		after   time.Duration
		expired bool
	}{{59 * time.Minute, false}, {time.Hour, true}, {48 * time.Hour, true}} {
		after.Store(int64(tt.after))
		later, err := repo.Open(context.Background(), st, repo.Options{})
		mustDo(t, err)
		dst := filepath.Join(t.TempDir(), "dst")
		_, err = later.Restore(context.Background(), h.ID, dst, repo.RestoreOptions{})
		if !tt.expired {
			if err != nil {
				t.Errorf("after %v: %v", tt.after, err)
			}
			continue
		}
		if !errors.Is(err, repo.ErrExpired) || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), h.ID.String()) {
			t.Errorf("after %v: error %v; want ErrExpired naming %s", tt.after, err, h.ID)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("after %v: an expired restore created its target", tt.after)
		}
	}
}

// dataPack returns the name, bytes and entries of the one data pack in st.
func dataPack(t *testing.T, st store.Store) (string, []byte, []pack.Entry) {
	t.Helper()
	var found []string
	var data []byte
	var entries []pack.Entry
	ctx := context.Background()
	mustDo(t, st.List(ctx, "packs/", func(fi store.Info) error {
		b, err := store.LoadAll(ctx, st, fi.Name, 0, 0)
		if err != nil {
			return err
		}
		id := chunk.Hash(b)
		es, err := pack.ParseTrailer(id, bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		if len(es) > 0 && es[0].Type == pack.DataBlob {
			found = append(found, fi.Name)
			data, entries = b, es
		}
		return nil
	}))
	if len(found) != 1 {
		t.Fatalf("want one data pack, found %v", found)
	}
	return found[0], data, entries
}

// packDamage is one way a data pack can be bad. damage takes what
// dataPack returns; want is the sentinel a read of the damaged pack
// fails with, when one fits.
type packDamage struct {
	name   string
	want   error
	damage func(st *mem.Store, name string, data []byte, es []pack.Entry) error
}

// packDamages flip a byte inside the first frame, cut the pack in the
// middle of it, or remove the pack.
var packDamages = []packDamage{
	{"corrupt", pack.ErrCorrupt, func(st *mem.Store, name string, data []byte, es []pack.Entry) error {
		bad := bytes.Clone(data)
		bad[es[0].Frame.Offset+es[0].Frame.Length/2] ^= 0x40
		return st.Save(context.Background(), name, bad, store.SaveOptions{})
	}},
	{"truncated", nil, func(st *mem.Store, name string, data []byte, es []pack.Entry) error {
		return st.Save(context.Background(), name, data[:es[0].Frame.Offset+es[0].Frame.Length/2], store.SaveOptions{})
	}},
	{"missing", store.ErrNotFound, func(st *mem.Store, name string, _ []byte, _ []pack.Entry) error {
		return st.Remove(context.Background(), name)
	}},
}

// damagedRepo backs up one file, big.bin, into a new repository and
// damages its data pack; it returns the repository, the snapshot and the
// pack's name.
func damagedRepo(t *testing.T, d packDamage) (*repo.Repository, chunk.ID, string) {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), randomBytes(3, 600<<10))
	st := mem.New()
	r := newTestRepo(t, st, repo.Options{Workers: 1})
	h := backupOf(t, r, src, repo.BackupOptions{})
	name, data, es := dataPack(t, st)
	mustDo(t, d.damage(st, name, data, es))
	return r, h.ID, name
}

func TestRestoreBadPack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range packDamages {
		t.Run(tt.name, func(t *testing.T) {
			r, id, name := damagedRepo(t, tt)

			// A fresh target and one that holds an old version of the file.
			for _, old := range [][]byte{nil, []byte("the old version")} {
				parent := t.TempDir()
				dst := filepath.Join(parent, "dst")
				if old != nil {
					writeFile(t, filepath.Join(dst, "big.bin"), old)
				}
				_, err := r.Restore(ctx, id, dst, repo.RestoreOptions{Delete: true})
				if err == nil {
					t.Fatal("restore from a damaged pack succeeded")
				}
				if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "big.bin") {
					t.Errorf("error %q does not name the pack %s and the file big.bin", err, name)
				}
				// A new target is staged beside it: nothing is left.
				if got, want := dirNames(t, parent), []string{"dst"}; old == nil && len(got) != 0 || old != nil && !slices.Equal(got, want) {
					t.Errorf("failed restore left %v in the target's parent", got)
				}
				if old != nil {
					// In place: the old file, and the marker saying the
					// restore did not finish.
					if got := dirNames(t, dst); !slices.Equal(got, []string{".sandsnap-restoring", "big.bin"}) {
						t.Errorf("failed in-place restore left %v", got)
					}
					if got, err := os.ReadFile(filepath.Join(dst, "big.bin")); err != nil || !bytes.Equal(got, old) {
						t.Errorf("failed in-place restore changed the old file: %q, %v", got, err)
					}
				}
			}
		})
	}
}

// storeTree stores a tree blob of exactly these bytes, in a pack of its own
// and an index delta, and a snapshot of it; it returns the snapshot ID.
func storeTree(t *testing.T, st store.Store, treeData []byte) chunk.ID {
	t.Helper()
	ctx := context.Background()
	enc, err := pack.NewEncoder()
	mustDo(t, err)
	w := pack.NewWriter(enc, pack.Options{})
	treeID := chunk.Hash(treeData)
	mustDo(t, w.Add(treeID, pack.TreeBlob, treeData))
	p, err := w.Finish()
	mustDo(t, err)
	s := p.ID.String()
	mustDo(t, st.Save(ctx, "packs/"+s[:2]+"/"+s, p.Data, store.SaveOptions{}))
	idx, err := pack.EncodeIndex(p.Entries)
	mustDo(t, err)
	mustDo(t, st.Save(ctx, "index/"+chunk.Hash(idx).String(), idx, store.SaveOptions{}))
	snap := &manifest.Snapshot{Version: manifest.Version, Tree: treeID, Dir: "/src", Created: time.Now().UTC()}
	// Declare what the tree holds, as a backup does: a restore refuses
	// trees that hold more than their snapshot declares.
	if tr, err := manifest.DecodeTree(treeData); err == nil {
		for _, n := range tr.Nodes {
			switch n.Type {
			case manifest.TypeFile:
				snap.Summary.Files++
				snap.Summary.Bytes += n.Size
			case manifest.TypeDir:
				snap.Summary.Dirs++
			case manifest.TypeSymlink:
				snap.Summary.Symlinks++
			default:
				snap.Summary.Other++
			}
		}
	}
	sd, err := snap.Encode()
	mustDo(t, err)
	id := chunk.Hash(sd)
	mustDo(t, st.Save(ctx, "snapshots/"+id.String(), sd, store.SaveOptions{}))
	return id
}

// TestRestoreUnsafeNames: a hand-crafted tree whose names would escape the
// target is refused before anything is written.
func TestRestoreUnsafeNames(t *testing.T) {
	t.Parallel()
	good := &manifest.Tree{Nodes: []manifest.Node{
		{Name: "fine", Type: manifest.TypeFile, Mode: 0o644},
		{Name: "qq", Type: manifest.TypeFile, Mode: 0o644},
		{Name: "zqz", Type: manifest.TypeSymlink, Mode: 0o777, Target: "fine"},
	}}
	enc, err := good.Encode()
	mustDo(t, err)
	for _, tt := range []struct{ from, to string }{
		{"qq", ".."},
		{"zqz", "z/z"},
		{"qq", "\x00\x00"},
	} {
		t.Run(tt.to, func(t *testing.T) {
			if bytes.Count(enc, []byte(tt.from)) != 1 {
				t.Fatalf("%q is not unique in the encoded tree", tt.from)
			}
			bad := bytes.Replace(enc, []byte(tt.from), []byte(tt.to), 1)
			st := mem.New()
			newTestRepo(t, st, repo.Options{})
			id := storeTree(t, st, bad)
			r, err := repo.Open(context.Background(), st, repo.Options{})
			mustDo(t, err)
			dst := filepath.Join(t.TempDir(), "dst")
			_, err = r.Restore(context.Background(), id, dst, repo.RestoreOptions{})
			if !errors.Is(err, repo.ErrUnsafePath) {
				t.Errorf("restore of a tree naming %q: %v; want ErrUnsafePath", tt.to, err)
			}
			if _, err := os.Lstat(dst); !os.IsNotExist(err) {
				t.Errorf("refused restore created its target")
			}
		})
	}

	// The unmodified tree restores (so the cases above fail for their
	// names alone).
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	id := storeTree(t, st, enc)
	r, err := repo.Open(context.Background(), st, repo.Options{})
	mustDo(t, err)
	restoreOK(t, r, id, t.TempDir())
}

// TestRestoreRequests: a full restore reads each pack about once.
func TestRestoreRequests(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	for i := range 120 {
		writeFile(t, filepath.Join(src, "small", string(rune('a'+i%20)), strings.Repeat("x", 1+i/20)), randomBytes(uint64(i), 1000+i*37))
	}
	for i := range 3 {
		writeFile(t, filepath.Join(src, "big", string(rune('a'+i))), randomBytes(uint64(1000+i), 900<<10))
	}
	cs := counting.New(mem.New())
	r, err := repo.Init(context.Background(), cs, repo.InitOptions{DataPackSize: 1 << 20}, repo.Options{})
	mustDo(t, err)
	h := backupOf(t, r, src, repo.BackupOptions{})
	var packs int
	mustDo(t, cs.List(context.Background(), "packs/", func(store.Info) error { packs++; return nil }))
	if packs < 3 {
		t.Fatalf("only %d packs; the test needs several", packs)
	}
	before := cs.Stats()
	dst := t.TempDir()
	s := restoreOK(t, r, h.ID, dst)
	sameTree(t, src, dst)
	gets := cs.Stats().Sub(before).Gets
	if gets > int64(packs)+3 {
		t.Errorf("restore made %d GETs for %d packs", gets, packs)
	}
	t.Logf("%d packs, %d GETs, %d of them for data", packs, gets, s.PacksFetched)
}

// BenchmarkRestore restores a generated node_modules tree into a fresh
// directory, and again into one that already holds it (every file is
// read and hashed, none written).
func BenchmarkRestore(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	if _, err := bench.Generate(src, bench.KindNode, bench.Options{Seed: 1, Scale: 0.05}); err != nil {
		b.Fatal(err)
	}
	r := newTestRepo(b, mem.New(), repo.Options{})
	h := backupOf(b, r, src, repo.BackupOptions{})
	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(int64(h.Stats.Bytes))
		dst := filepath.Join(b.TempDir(), "dst")
		for b.Loop() {
			b.StopTimer()
			mustDo(b, os.RemoveAll(dst))
			b.StartTimer()
			restoreOK(b, r, h.ID, dst)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.SetBytes(int64(h.Stats.Bytes))
		dst := b.TempDir()
		restoreOK(b, r, h.ID, dst)
		for b.Loop() {
			if s := restoreOver(b, r, h.ID, dst); s.FilesWritten != 0 {
				b.Fatalf("wrote %d files into an unchanged target", s.FilesWritten)
			}
		}
	})
}
