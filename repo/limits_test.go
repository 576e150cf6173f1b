package repo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// snapBuilder writes what no backup would write: hand-made trees, blobs
// and snapshots with any declaration. Blobs go into the current pack
// until cut (or a blob of the other type) starts a new one; commit writes
// one index delta for everything and the snapshot object.
type snapBuilder struct {
	t       *testing.T
	st      store.Store
	enc     *zstd.Encoder
	w       *pack.Writer
	typ     pack.BlobType
	entries []pack.Entry
}

func newSnapBuilder(t *testing.T, st store.Store) *snapBuilder {
	t.Helper()
	enc, err := pack.NewEncoder()
	mustDo(t, err)
	return &snapBuilder{t: t, st: st, enc: enc}
}

func (b *snapBuilder) add(typ pack.BlobType, data []byte) chunk.ID {
	b.t.Helper()
	if b.w != nil && b.typ != typ {
		b.cut()
	}
	if b.w == nil {
		b.w, b.typ = pack.NewWriter(b.enc, pack.Options{}), typ
	}
	id := chunk.Hash(data)
	mustDo(b.t, b.w.Add(id, typ, data))
	return id
}

// tree stores a tree of nodes (sorted by name) and returns its ID.
func (b *snapBuilder) tree(nodes ...manifest.Node) chunk.ID {
	b.t.Helper()
	data, err := (&manifest.Tree{Nodes: nodes}).Encode()
	mustDo(b.t, err)
	return b.add(pack.TreeBlob, data)
}

// cut finishes the current pack and stores it.
func (b *snapBuilder) cut() {
	b.t.Helper()
	if b.w == nil {
		return
	}
	p, err := b.w.Finish()
	mustDo(b.t, err)
	b.w = nil
	s := p.ID.String()
	mustDo(b.t, b.st.Save(context.Background(), "packs/"+s[:2]+"/"+s, p.Data, store.SaveOptions{}))
	b.entries = append(b.entries, p.Entries...)
}

// commit stores an index delta of every blob added and a snapshot of
// root that declares sum, and returns the snapshot's ID.
func (b *snapBuilder) commit(root chunk.ID, sum manifest.Summary) chunk.ID {
	b.t.Helper()
	ctx := context.Background()
	b.cut()
	idx, err := pack.EncodeIndex(b.entries)
	mustDo(b.t, err)
	mustDo(b.t, b.st.Save(ctx, "index/"+chunk.Hash(idx).String(), idx, store.SaveOptions{}))
	snap := &manifest.Snapshot{Version: manifest.Version, Tree: root, Dir: "/src", Created: time.Now().UTC(), Summary: sum}
	data, err := snap.Encode()
	mustDo(b.t, err)
	id := chunk.Hash(data)
	mustDo(b.t, b.st.Save(ctx, "snapshots/"+id.String(), data, store.SaveOptions{}))
	return id
}

// dagBomb stores a tree DAG of 31 levels, each tree holding the next one
// twice ("a" and "b"), above a tree of one empty file: 32 trees of a
// kilobyte in all that expand to 2^31 files. Each tree is a pack of its
// own, so the GETs of tree packs count the trees a reader loaded.
func dagBomb(b *snapBuilder) chunk.ID {
	const levels = 31
	id := b.tree(manifest.Node{Name: "f", Type: manifest.TypeFile, Mode: 0o644})
	b.cut()
	for range levels {
		id = b.tree(
			manifest.Node{Name: "a", Type: manifest.TypeDir, Mode: 0o755, Subtree: id},
			manifest.Node{Name: "b", Type: manifest.TypeDir, Mode: 0o755, Subtree: id},
		)
		b.cut()
	}
	return id
}

// bombRepo returns a repository holding the DAG bomb twice: under a
// declaration that lies (one file) and under the honest one (2^31 files,
// 2^32-2 directories), and the store's Load counter.
func bombRepo(t *testing.T) (r *repo.Repository, lying, honest chunk.ID, loads *loadCounter) {
	t.Helper()
	loads = &loadCounter{Store: mem.New(), loads: make(map[string]int)}
	newTestRepo(t, loads, repo.Options{})
	b := newSnapBuilder(t, loads)
	root := dagBomb(b)
	lying = b.commit(root, manifest.Summary{Files: 1, Dirs: 2})
	honest = b.commit(root, manifest.Summary{Files: 1 << 31, Dirs: 1<<32 - 2})
	r, err := repo.Open(context.Background(), loads, repo.Options{})
	mustDo(t, err)
	return r, lying, honest, loads
}

// checkOneLine fails unless err is a short single line.
func checkOneLine(t *testing.T, err error, maxLen int) {
	t.Helper()
	if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > maxLen {
		t.Errorf("error is %d bytes (want one line of at most %d): %.2000q", len(msg), maxLen, msg)
	}
}

// TestRestoreRefusesDAGBomb: a 1 KB tree DAG that expands to 2^31 files
// is refused with ErrLimit after loading at most its 32 trees (none when
// its declaration alone exceeds the limit), within 100 MB of allocations,
// and nothing is created. Not parallel: it measures the process's
// allocations.
func TestRestoreRefusesDAGBomb(t *testing.T) {
	r, lying, honest, loads := bombRepo(t)
	tests := []struct {
		name      string
		id        chunk.ID
		opts      repo.RestoreOptions
		maxTrees  int
		wantInErr string
	}{
		{"lying trusted", lying, repo.RestoreOptions{}, 32, "declares 1 files"},
		{"lying untrusted", lying, repo.RestoreOptions{Untrusted: true}, 32, "declares 1 files"},
		{"honest trusted", honest, repo.RestoreOptions{}, 0, "declares 6442450942 entries"},
		{"honest, entries allowed, depth not", honest, repo.RestoreOptions{Limits: repo.Limits{MaxFiles: 1 << 40, MaxDepth: 16}}, 32, "more than 16 directories deep"},
		{"honest untrusted", honest, repo.RestoreOptions{Untrusted: true}, 0, "the limit is 2097152"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loads.mu.Lock()
			loads.loads = make(map[string]int)
			loads.mu.Unlock()
			dst := filepath.Join(t.TempDir(), "dst")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := r.Restore(context.Background(), tt.id, dst, tt.opts)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, repo.ErrLimit) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("restore of the DAG bomb: %v; want ErrLimit saying %q", err, tt.wantInErr)
			}
			checkOneLine(t, err, 300)
			if total, _ := loads.packLoads(); total > tt.maxTrees {
				t.Errorf("loaded %d tree packs, want at most %d", total, tt.maxTrees)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 100<<20 {
				t.Errorf("refusing allocated %d MB, want under 100", n>>20)
			}
			if _, err := os.Lstat(dst); !os.IsNotExist(err) {
				t.Errorf("refused restore created its target (%v)", err)
			}
		})
	}
}

// TestDiffVerifyDAGBomb: diff refuses the bomb against a real snapshot
// and against a directory; verify reports both of its snapshots and
// stays clean about the real one.
func TestDiffVerifyDAGBomb(t *testing.T) {
	r, lying, honest, _ := bombRepo(t)
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "f"), []byte("a real file\n"))
	good := backupOf(t, r, src, repo.BackupOptions{})
	for _, id := range []chunk.ID{lying, honest} {
		calls := 0
		count := func(repo.Change) error { calls++; return nil }
		err := r.Diff(ctx, good.ID, id, count)
		if !errors.Is(err, repo.ErrLimit) || !strings.Contains(err.Error(), id.Str()) {
			t.Errorf("Diff(good, bomb %s) = %v; want ErrLimit naming the snapshot", id.Str(), err)
		}
		if err := r.DiffDir(ctx, id, src, repo.DiffOptions{}, count); !errors.Is(err, repo.ErrLimit) {
			t.Errorf("DiffDir(bomb %s) = %v; want ErrLimit", id.Str(), err)
		}
		if calls != 0 {
			t.Errorf("diff of the bomb %s reported %d changes before refusing", id.Str(), calls)
		}
	}
	rep, err := r.Verify(ctx, repo.VerifyOptions{})
	mustDo(t, err)
	found := map[string]bool{}
	for _, p := range rep.Problems {
		found[p.Object] = true
		if p.Object == "snapshots/"+good.ID.String() {
			t.Errorf("verify reports the real snapshot: %s", p)
		}
	}
	for _, id := range []chunk.ID{lying, honest} {
		if !found["snapshots/"+id.String()] {
			t.Errorf("verify does not report the bomb %s: %v", id.Str(), rep.Problems)
		}
	}
}

// TestRestoreHoleFile: a snapshot of one 1 TiB file made of one all-zero
// 8 MiB chunk repeated (a few KB of repository) restores, trusted, as a
// sparse file without writing or reading a terabyte (the chunk is fetched
// once and found zero once), and is refused untrusted, and, untrusted,
// when its declaration hides the size. A trusted restore accepts more
// bytes than declared (snapshots of older versions declared a file that
// grew while read at its walked size), bounded by Limits.MaxBytes.
func TestRestoreHoleFile(t *testing.T) {
	t.Parallel()
	const chunkSize, size = 8 << 20, 1 << 40
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	b := newSnapBuilder(t, st)
	zero := b.add(pack.DataBlob, make([]byte, chunkSize))
	content := make([]chunk.ID, size/chunkSize)
	for i := range content {
		content[i] = zero
	}
	root := b.tree(manifest.Node{Name: "disk.img", Type: manifest.TypeFile, Mode: 0o644, Size: size, Content: content})
	honest := b.commit(root, manifest.Summary{Files: 1, Bytes: size})
	hidden := b.commit(root, manifest.Summary{Files: 1})
	r, err := repo.Open(context.Background(), st, repo.Options{})
	mustDo(t, err)

	for _, tt := range []struct {
		name string
		id   chunk.ID
		opts repo.RestoreOptions
		want string
	}{
		{"untrusted", honest, repo.RestoreOptions{Untrusted: true}, "declares 1099511627776 bytes"},
		{"declaration hides the size", hidden, repo.RestoreOptions{Untrusted: true, Limits: repo.Limits{MaxBytes: 2 << 40}}, "declares 0 bytes of files but its trees hold 1099511627776"},
		{"over MaxBytes", hidden, repo.RestoreOptions{Limits: repo.Limits{MaxBytes: 1 << 30}}, "the limit is 1073741824"},
	} {
		dst := filepath.Join(t.TempDir(), "dst")
		_, err := r.Restore(context.Background(), tt.id, dst, tt.opts)
		if !errors.Is(err, repo.ErrLimit) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: restore = %v; want ErrLimit saying %q", tt.name, err, tt.want)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("%s: refused restore created its target", tt.name)
		}
	}

	if _, err := r.Restore(context.Background(), hidden, filepath.Join(t.TempDir(), "dst"), repo.RestoreOptions{}); err != nil && !errors.Is(err, unix.EFBIG) {
		t.Errorf("trusted restore of a snapshot declaring fewer bytes than it holds: %v", err)
	}
	dst := t.TempDir()
	stats, err := r.Restore(context.Background(), honest, dst, repo.RestoreOptions{})
	if errors.Is(err, unix.EFBIG) {
		t.Skipf("the filesystem of %s cannot hold a 1 TiB sparse file: %v", dst, err)
	}
	mustDo(t, err)
	var st2 unix.Stat_t
	mustDo(t, unix.Stat(filepath.Join(dst, "disk.img"), &st2))
	if st2.Size != size || st2.Blocks*512 > 1<<20 {
		t.Errorf("restored file: %d bytes, %d allocated; want %d bytes, almost none allocated", st2.Size, st2.Blocks*512, int64(size))
	}
	if stats.BytesFetched > 1<<20 || stats.BytesWritten != size {
		t.Errorf("fetched %d bytes, counted %d written; want under 1 MiB fetched and %d counted", stats.BytesFetched, stats.BytesWritten, int64(size))
	}
	f, err := os.Open(filepath.Join(dst, "disk.img"))
	mustDo(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for _, off := range []int64{0, chunkSize - 1000, size / 2, size - 4096} {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, make([]byte, len(buf))) {
			t.Errorf("bytes at %d are not zero", off)
		}
	}
}

// TestLinkGroupDisagrees: two names of one hard-link group that differ in
// content, size, mode, owner, mtime or xattrs cannot be restored as the
// snapshot says: the restore refuses before writing, naming both paths,
// and verify reports the group. The same group with equal names restores
// as one inode.
func TestLinkGroupDisagrees(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	b := newSnapBuilder(t, st)
	a100 := b.add(pack.DataBlob, bytes.Repeat([]byte("a"), 100))
	b100 := b.add(pack.DataBlob, bytes.Repeat([]byte("b"), 100))
	c150 := b.add(pack.DataBlob, bytes.Repeat([]byte("c"), 150))
	base := manifest.Node{Name: "x", Type: manifest.TypeFile, Mode: 0o644, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		MtimeNs: 1_700_000_000e9, Size: 100, Content: []chunk.ID{a100}, LinkID: 7,
		Xattrs: []manifest.Xattr{{Name: "user.k", Value: []byte("1")}}}
	tests := []struct {
		what string
		edit func(n *manifest.Node)
	}{
		{"", func(*manifest.Node) {}},
		{"content", func(n *manifest.Node) { n.Content = []chunk.ID{b100} }},
		{"size", func(n *manifest.Node) { n.Content, n.Size = []chunk.ID{c150}, 150 }},
		{"mode", func(n *manifest.Node) { n.Mode = 0o4755 }},
		{"owner", func(n *manifest.Node) { n.UID = 65534 }},
		{"mtime", func(n *manifest.Node) { n.MtimeNs++ }},
		{"xattrs", func(n *manifest.Node) { n.Xattrs = []manifest.Xattr{{Name: "user.k", Value: []byte("2")}} }},
	}
	ids := make([]chunk.ID, len(tests))
	for i, tt := range tests {
		y := base
		y.Name = "y"
		tt.edit(&y)
		// x at the top, y one directory down: the check spans trees.
		sub := b.tree(y)
		root := b.tree(base, manifest.Node{Name: "z", Type: manifest.TypeDir, Mode: 0o755, Subtree: sub})
		ids[i] = b.commit(root, manifest.Summary{Files: 2, Dirs: 1, Bytes: base.Size + y.Size})
	}
	r, err := repo.Open(ctx, st, repo.Options{})
	mustDo(t, err)
	rep, err := r.Verify(ctx, repo.VerifyOptions{})
	mustDo(t, err)
	for i, tt := range tests {
		dst := filepath.Join(t.TempDir(), "dst")
		_, err := r.Restore(ctx, ids[i], dst, repo.RestoreOptions{})
		var reported []string
		for _, p := range rep.Problems {
			if p.Object == "snapshots/"+ids[i].String() {
				reported = append(reported, p.String())
			}
		}
		if tt.what == "" {
			mustDo(t, err)
			var sx, sy unix.Stat_t
			mustDo(t, unix.Stat(filepath.Join(dst, "x"), &sx))
			mustDo(t, unix.Stat(filepath.Join(dst, "z", "y"), &sy))
			if sx.Ino != sy.Ino {
				t.Errorf("an agreeing link group restored as two inodes")
			}
			if len(reported) > 0 {
				t.Errorf("verify reports an agreeing link group: %q", reported)
			}
			continue
		}
		if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), `"x"`) ||
			!strings.Contains(err.Error(), `"z/y"`) || !strings.Contains(err.Error(), tt.what) {
			t.Errorf("%s differs: restore = %v; want manifest.ErrInvalid naming x, z/y and %q", tt.what, err, tt.what)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("%s differs: refused restore created its target", tt.what)
		}
		if len(reported) != 1 || !strings.Contains(reported[0], `"z/y"`) || !strings.Contains(reported[0], tt.what) {
			t.Errorf("%s differs: verify reports %q; want one problem naming z/y and %q", tt.what, reported, tt.what)
		}
	}
}

// TestDeepPathErrorsElided (#9): errors about an entry at the bottom of a
// chain of 2500 directories (a 7.5 KB path) stay one short line: the
// path's middle is elided, and it is not repeated per level.
func TestDeepPathErrorsElided(t *testing.T) {
	t.Parallel()
	const depth = 2500
	st := mem.New()
	newTestRepo(t, st, repo.Options{})
	b := newSnapBuilder(t, st)
	missing := chunk.Hash([]byte("a chunk no index holds"))
	id := b.tree(manifest.Node{Name: "bottom.txt", Type: manifest.TypeFile, Mode: 0o644, Size: 1, Content: []chunk.ID{missing}})
	for range depth {
		id = b.tree(manifest.Node{Name: "dd", Type: manifest.TypeDir, Mode: 0o755, Subtree: id})
	}
	snap := b.commit(id, manifest.Summary{Files: 1, Dirs: depth, Bytes: 1})
	r, err := repo.Open(context.Background(), st, repo.Options{})
	mustDo(t, err)
	for _, tt := range []struct {
		opts repo.RestoreOptions
		want error
	}{
		{repo.RestoreOptions{}, repo.ErrBlobNotFound},
		{repo.RestoreOptions{Untrusted: true}, repo.ErrLimit},
	} {
		_, err := r.Restore(context.Background(), snap, filepath.Join(t.TempDir(), "dst"), tt.opts)
		if !errors.Is(err, tt.want) {
			t.Fatalf("restore (untrusted %v) = %.300v; want %v", tt.opts.Untrusted, err, tt.want)
		}
		checkOneLine(t, err, 600)
		if !strings.Contains(err.Error(), "dd/dd/dd") || !strings.Contains(err.Error(), " bytes ...]") {
			t.Errorf("error %q does not show an elided path", err)
		}
	}
}
