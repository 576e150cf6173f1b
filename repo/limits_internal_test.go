package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// mapLoader is a treeLoader over trees held in a map, counting its loads.
type mapLoader struct {
	trees map[chunk.ID]*manifest.Tree
	loads int
}

func (m *mapLoader) put(nodes ...manifest.Node) chunk.ID {
	t := &manifest.Tree{Nodes: nodes}
	b, err := t.Encode()
	if err != nil {
		panic(err)
	}
	id := chunk.Hash(b)
	m.trees[id] = t
	return id
}

func (m *mapLoader) load(_ context.Context, id chunk.ID, rel func() string) (*manifest.Tree, error) {
	m.loads++
	t, ok := m.trees[id]
	if !ok {
		return nil, fmt.Errorf("directory %q: %w", rel(), ErrBlobNotFound)
	}
	return t, nil
}

// expand counts tree id the slow way, visiting every path.
func (m *mapLoader) expand(id chunk.ID, prefix string, depth int, c *treeCount) {
	for i := range m.trees[id].Nodes {
		n := &m.trees[id].Nodes[i]
		p := prefix + n.Name
		switch n.Type {
		case manifest.TypeDir:
			c.dirs++
			c.dirPath += uint64(len(p))
			c.height = max(c.height, depth+1)
			m.expand(n.Subtree, p+"/", depth+1, c)
		case manifest.TypeFile:
			c.files++
			c.bytes += n.Size
			c.chunks += uint64(len(n.Content))
			if n.LinkID != 0 {
				c.links++
			}
		case manifest.TypeSymlink:
			c.symlinks++
		default:
			c.other++
		}
	}
}

// TestTreeCounter: the memoized count equals a walk of every path, loads
// each unique tree once, and a second snapshot sharing the trees loads
// nothing.
func TestTreeCounter(t *testing.T) {
	m := &mapLoader{trees: make(map[chunk.ID]*manifest.Tree)}
	leaf := m.put(
		manifest.Node{Name: "f", Type: manifest.TypeFile, Size: 10, LinkID: 3, Content: []chunk.ID{{1}, {2}, {1}}},
		manifest.Node{Name: "l", Type: manifest.TypeSymlink, Target: "f"},
		manifest.Node{Name: "p", Type: manifest.TypeFIFO},
	)
	mid := m.put(
		manifest.Node{Name: "one", Type: manifest.TypeDir, Subtree: leaf},
		manifest.Node{Name: "three", Type: manifest.TypeDir, Subtree: leaf},
		manifest.Node{Name: "x", Type: manifest.TypeFile, Size: 7},
	)
	root := m.put(
		manifest.Node{Name: "a", Type: manifest.TypeDir, Subtree: mid},
		manifest.Node{Name: "bb", Type: manifest.TypeDir, Subtree: mid},
		manifest.Node{Name: "leaf", Type: manifest.TypeDir, Subtree: leaf},
	)
	c := newTreeCounter(m.load, false)
	got, err := c.count(context.Background(), root, countBound{lim: DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	var want treeCount
	m.expand(root, "", 0, &want)
	if got != want {
		t.Errorf("count = %+v, want %+v", got, want)
	}
	if m.loads != 3 || c.loaded != 3 {
		t.Errorf("%d loads (counter says %d), want 3: one per unique tree", m.loads, c.loaded)
	}
	if _, err := c.count(context.Background(), mid, countBound{lim: DefaultLimits()}); err != nil || m.loads != 3 {
		t.Errorf("a count of a shared tree loaded again (%d loads, %v)", m.loads, err)
	}
	// Any bound the snapshot exceeds refuses it; its exact values pass.
	decl := manifest.Summary{Files: want.files, Dirs: want.dirs, Symlinks: want.symlinks, Other: want.other, Bytes: want.bytes}
	for _, tt := range []struct {
		edit func(s *manifest.Summary, l *Limits)
		ok   bool
	}{
		{func(*manifest.Summary, *Limits) {}, true},
		{func(s *manifest.Summary, _ *Limits) { s.Files-- }, false},
		{func(s *manifest.Summary, _ *Limits) { s.Dirs-- }, false},
		{func(s *manifest.Summary, _ *Limits) { s.Symlinks-- }, false},
		{func(s *manifest.Summary, _ *Limits) { s.Other-- }, false},
		{func(s *manifest.Summary, _ *Limits) { s.Bytes-- }, false},
		{func(_ *manifest.Summary, l *Limits) { l.MaxFiles = want.entries() - 1 }, false},
		{func(_ *manifest.Summary, l *Limits) { l.MaxBytes = want.bytes - 1 }, false},
		{func(_ *manifest.Summary, l *Limits) { l.MaxDepth = want.height - 1 }, false},
	} {
		d, l := decl, DefaultLimits()
		tt.edit(&d, &l)
		_, err := newTreeCounter(m.load, false).count(context.Background(), root, countBound{decl: &d, lim: l})
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrLimit)) {
			t.Errorf("declared %+v, limits %+v: %v; want ok=%v or ErrLimit", d, l, err, tt.ok)
		}
	}
}

// TestChunkReferencesBounded: one file that lists a chunk many times is
// refused by the bound on chunk references, which neither the entry
// count nor (for tiny chunks) the bytes would reach.
func TestChunkReferencesBounded(t *testing.T) {
	m := &mapLoader{trees: make(map[chunk.ID]*manifest.Tree)}
	refs := make([]chunk.ID, 1000)
	for i := range refs {
		refs[i] = chunk.ID{1}
	}
	root := m.put(manifest.Node{Name: "f", Type: manifest.TypeFile, Size: 1000, Content: refs})
	lim := Limits{MaxFiles: 10, MaxBytes: 1 << 20, MaxDepth: 10}
	_, err := newTreeCounter(m.load, false).count(context.Background(), root, countBound{lim: lim})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "1000 chunk references; the limit is 40") {
		t.Errorf("count = %v; want ErrLimit about 1000 chunk references over 40", err)
	}
}

// TestDirPathsBounded: a chain of 800 directories with 255-byte names, few
// entries but 82 MB of directory paths for the plan to hold, is refused
// by the path budget.
func TestDirPathsBounded(t *testing.T) {
	m := &mapLoader{trees: make(map[chunk.ID]*manifest.Tree)}
	id := m.put()
	for i := range 800 {
		name := fmt.Sprintf("%03d", i) + strings.Repeat("n", 252)
		id = m.put(manifest.Node{Name: name, Type: manifest.TypeDir, Subtree: id})
	}
	lim := Limits{MaxFiles: 1000, MaxBytes: 1, MaxDepth: 1000}
	_, err := newTreeCounter(m.load, false).count(context.Background(), id, countBound{lim: lim})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "directory paths add up to") {
		t.Fatalf("count = %v; want ErrLimit about directory paths", err)
	}
	if n := len(err.Error()); n > 300 {
		t.Errorf("an error of %d bytes: %q", n, err)
	}
}

func TestElidePath(t *testing.T) {
	short := strings.Repeat("a/", 100)
	if got := elidePath(short); got != short {
		t.Errorf("a %d-byte path was elided: %q", len(short), got)
	}
	for _, unit := range []string{"dd/", "é/", "日本/"} {
		long := strings.Repeat(unit, 5000) + "end"
		got := elidePath(long)
		if len(got) > 2*elideKeep+40 || !utf8.ValidString(got) {
			t.Errorf("elidePath of %d bytes = %q (%d bytes); want at most %d bytes of valid UTF-8", len(long), got, len(got), 2*elideKeep+40)
		}
		if !strings.HasPrefix(got, long[:elideKeep-len(unit)]) || !strings.HasSuffix(got, long[len(long)-elideKeep+len(unit):]) {
			t.Errorf("elidePath lost the path's ends: %q", got)
		}
		if !strings.Contains(got, " bytes ...]") {
			t.Errorf("elidePath does not say what it left out: %q", got)
		}
	}
}

// TestPlanMemoryPerEntry measures what a restore plan keeps per entry
// (live heap after a GC), the basis of the default limits in limits.go:
// 200k one-chunk files in 100 directories. Not parallel: it reads the
// process's heap.
func TestPlanMemoryPerEntry(t *testing.T) {
	const dirs, files = 100, 2000
	ctx := context.Background()
	st := mem.New()
	if _, err := Init(ctx, st, InitOptions{}, Options{}); err != nil {
		t.Fatal(err)
	}
	snap := planFixture(t, st, dirs, files)
	r, err := Open(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newRestorer(r, RestoreOptions{})
	if err := x.plan(ctx, snap); err != nil {
		t.Fatal(err)
	}
	r.tc = newTreeCache(r) // the encoded trees are a bounded cache, not the plan
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(x)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / (dirs*files + dirs)
	t.Logf("plan: %d bytes per entry", per)
	if per > 200 {
		t.Errorf("the plan keeps %d bytes per entry; limits.go assumes about 120", per)
	}
}

// planFixture stores a snapshot of dirs directories of files one-chunk
// files each and returns it.
func planFixture(t *testing.T, st store.Store, dirs, files int) *manifest.Snapshot {
	t.Helper()
	ctx := context.Background()
	enc, err := pack.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	w := pack.NewWriter(enc, pack.Options{})
	data := []byte("hello")
	cid := chunk.Hash(data)
	add := func(id chunk.ID, typ pack.BlobType, b []byte) {
		if err := w.Add(id, typ, b); err != nil {
			t.Fatal(err)
		}
	}
	var entries []pack.Entry
	cut := func() {
		p, err := w.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Save(ctx, packName(p.ID), p.Data, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, p.Entries...)
		w = pack.NewWriter(enc, pack.Options{})
	}
	add(cid, pack.DataBlob, data)
	cut()
	var top []manifest.Node
	for d := range dirs {
		nodes := make([]manifest.Node, files)
		for f := range nodes {
			nodes[f] = manifest.Node{Name: fmt.Sprintf("file-%06d.js", f), Type: manifest.TypeFile, Mode: 0o644,
				Size: uint64(len(data)), Content: []chunk.ID{cid}}
		}
		b, err := (&manifest.Tree{Nodes: nodes}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		add(chunk.Hash(b), pack.TreeBlob, b)
		top = append(top, manifest.Node{Name: fmt.Sprintf("dir-%04d", d), Type: manifest.TypeDir, Mode: 0o755, Subtree: chunk.Hash(b)})
	}
	b, err := (&manifest.Tree{Nodes: top}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	add(chunk.Hash(b), pack.TreeBlob, b)
	cut()
	idx, err := pack.EncodeIndex(entries)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, indexPrefix+chunk.Hash(idx).String(), idx, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return &manifest.Snapshot{Version: manifest.Version, Tree: chunk.Hash(b), Created: time.Now(),
		Summary: manifest.Summary{Files: uint64(dirs * files), Dirs: uint64(dirs), Bytes: uint64(dirs * files * len(data))}}
}

// TestGrowingFileDeclared: a file that grew while a backup read it is
// stored as read, and the snapshot declares those bytes, so that the
// restore's check of trees against the declaration accepts it.
func TestGrowingFileDeclared(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"log.txt": []byte(strings.Repeat("line\n", 1000))})
	target := filepath.Join(src, "log.txt")
	const appended = "appended while the backup read the file\n"
	r.readHook = func(path string, rd io.Reader) io.Reader {
		if path == target {
			f, err := os.OpenFile(target, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.WriteString(appended)
				f.Close()
			}
		}
		return rd
	}
	h, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(5000 + len(appended)); h.Stats.Bytes != want {
		t.Errorf("snapshot declares %d bytes, want %d (what was read)", h.Stats.Bytes, want)
	}
	if _, err := r.Restore(ctx, h.ID, t.TempDir(), RestoreOptions{}); err != nil {
		t.Errorf("restore of a file that grew while read: %v", err)
	}
}
