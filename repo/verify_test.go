package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/mem"
)

// verifyFixture is a repository in a mem store holding one snapshot of a
// small tree.
type verifyFixture struct {
	r        *Repository
	st       *mem.Store
	dataPack string // a pack holding data blobs
	treePack string // a pack holding tree blobs
	index    string // the index delta
}

func newVerifyFixture(t *testing.T) verifyFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string]string{
		"a.txt":         "hello",
		"sub/b.txt":     strings.Repeat("bee ", 5000),
		"sub/deep/c.go": "package c\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := mem.New()
	r, err := Init(ctx, st, InitOptions{}, Options{})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, err := r.Backup(ctx, dir, BackupOptions{Name: "fixture"}); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	f := verifyFixture{r: r, st: st}
	r.idx.mu.RLock()
	for _, e := range r.idx.blobs {
		switch e.Type {
		case pack.DataBlob:
			f.dataPack = packName(e.Pack)
		case pack.TreeBlob:
			f.treePack = packName(e.Pack)
		}
	}
	r.idx.mu.RUnlock()
	err = st.List(ctx, indexPrefix, func(fi store.Info) error {
		f.index = fi.Name
		return nil
	})
	if err != nil || f.dataPack == "" || f.treePack == "" || f.index == "" {
		t.Fatalf("fixture incomplete (err %v): data pack %q, tree pack %q, index %q", err, f.dataPack, f.treePack, f.index)
	}
	return f
}

// rewrite replaces object name with edit(its bytes).
func (f verifyFixture) rewrite(t *testing.T, name string, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	data, err := store.LoadAll(ctx, f.st, name, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Save(ctx, name, edit(bytes.Clone(data)), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	flipFirst := func(b []byte) []byte { b[0] ^= 0xff; return b }
	flipLast := func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }
	tests := []struct {
		name     string
		damage   func(t *testing.T, f verifyFixture)
		object   func(f verifyFixture) string // the object a problem must name; "" = no problems
		readData bool
		path     bool // a problem must also name a path in the snapshot
		noIndex  bool // the damage leaves no readable index
	}{
		{name: "clean", damage: func(*testing.T, verifyFixture) {}},
		{name: "clean/read-data", damage: func(*testing.T, verifyFixture) {}, readData: true},
		{
			name:   "flipped data byte/structure only",
			damage: func(t *testing.T, f verifyFixture) { f.rewrite(t, f.dataPack, flipFirst) },
		},
		{
			name:     "flipped data byte/read-data",
			damage:   func(t *testing.T, f verifyFixture) { f.rewrite(t, f.dataPack, flipFirst) },
			object:   func(f verifyFixture) string { return f.dataPack },
			readData: true,
			path:     true,
		},
		{
			name:   "flipped trailer byte",
			damage: func(t *testing.T, f verifyFixture) { f.rewrite(t, f.dataPack, flipLast) },
			object: func(f verifyFixture) string { return f.dataPack },
			path:   true,
		},
		{
			name: "deleted data pack",
			damage: func(t *testing.T, f verifyFixture) {
				if err := f.st.Remove(context.Background(), f.dataPack); err != nil {
					t.Fatal(err)
				}
			},
			object: func(f verifyFixture) string { return f.dataPack },
			path:   true,
		},
		{
			name: "deleted tree pack",
			damage: func(t *testing.T, f verifyFixture) {
				if err := f.st.Remove(context.Background(), f.treePack); err != nil {
					t.Fatal(err)
				}
			},
			object: func(f verifyFixture) string { return f.treePack },
			path:   true,
		},
		{
			name: "truncated pack",
			damage: func(t *testing.T, f verifyFixture) {
				f.rewrite(t, f.dataPack, func(b []byte) []byte { return b[:len(b)/2] })
			},
			object: func(f verifyFixture) string { return f.dataPack },
		},
		{
			name:    "corrupt index",
			damage:  func(t *testing.T, f verifyFixture) { f.rewrite(t, f.index, flipLast) },
			object:  func(f verifyFixture) string { return f.index },
			path:    true,
			noIndex: true,
		},
		{
			name: "corrupt snapshot",
			damage: func(t *testing.T, f verifyFixture) {
				var name string
				_ = f.st.List(context.Background(), snapshotPrefix, func(fi store.Info) error { name = fi.Name; return nil })
				f.rewrite(t, name, func(b []byte) []byte { return append(b, ' ') })
			},
			object: func(verifyFixture) string { return snapshotPrefix },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newVerifyFixture(t)
			tt.damage(t, f)
			rep, err := f.r.Verify(context.Background(), VerifyOptions{ReadData: tt.readData})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.Snapshots != 1 {
				t.Errorf("report counts %+v; want 1 snapshot", rep)
			}
			if !tt.noIndex && (rep.Packs < 2 || rep.Blobs < 4) {
				t.Errorf("report counts %+v; want >= 2 packs, >= 4 blobs", rep)
			}
			if tt.object == nil {
				if len(rep.Problems) != 0 {
					t.Fatalf("problems = %v; want none", rep.Problems)
				}
				if rep.Trees != 3 {
					t.Errorf("trees = %d; want 3", rep.Trees)
				}
				return
			}
			want := tt.object(f)
			var named, pathed bool
			for _, p := range rep.Problems {
				named = named || strings.HasPrefix(p.Object, want)
				pathed = pathed || p.Path != ""
			}
			if !named {
				t.Errorf("problems = %v; want one naming %s", rep.Problems, want)
			}
			if tt.path && !pathed {
				t.Errorf("problems = %v; want one naming a path in the snapshot", rep.Problems)
			}
		})
	}
}

// TestVerifyBytesRead checks that a structure-only verify reads only the
// tails of packs while ReadData reads them whole.
func TestVerifyBytesRead(t *testing.T) {
	f := newVerifyFixture(t)
	ctx := context.Background()
	var packBytes int64
	err := f.st.List(ctx, packPrefix, func(fi store.Info) error { packBytes += fi.Size; return nil })
	if err != nil {
		t.Fatal(err)
	}
	full, err := f.r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.BytesRead < packBytes {
		t.Errorf("read-data BytesRead = %d; want at least the %d bytes of packs", full.BytesRead, packBytes)
	}
	if len(full.Problems) != 0 {
		t.Errorf("problems = %v", full.Problems)
	}
	if got := fmt.Sprint(Problem{Object: "o", Path: "p", Err: "e"}); got != "o: p: e" {
		t.Errorf("Problem.String() = %q", got)
	}
}

func TestTailReader(t *testing.T) {
	data := make([]byte, verifyTailSize*2+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var loads int
	tr := &tailReader{size: int64(len(data)), load: func(off, n int64) ([]byte, error) {
		loads++
		return bytes.Clone(data[off : off+n]), nil
	}}
	tests := []struct {
		off, n int64
		loads  int // total loads after this read
		fail   bool
	}{
		{off: int64(len(data)) - 12, n: 12, loads: 1},
		{off: int64(len(data)) - 500, n: 400, loads: 1},
		{off: 10, n: 50, loads: 2},
		{off: int64(len(data)) - 5, n: 10, loads: 2, fail: true},
		{off: -1, n: 1, loads: 2, fail: true},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		n, err := tr.ReadAt(p, tt.off)
		if tt.fail {
			if err == nil {
				t.Errorf("ReadAt(%d, %d) succeeded; want an error", tt.off, tt.n)
			}
			continue
		}
		if err != nil || n != int(tt.n) || !bytes.Equal(p, data[tt.off:tt.off+tt.n]) {
			t.Errorf("ReadAt(%d, %d) = %d, %v; wrong bytes or error", tt.off, tt.n, n, err)
		}
		if loads != tt.loads {
			t.Errorf("after ReadAt(%d, %d): %d loads; want %d", tt.off, tt.n, loads, tt.loads)
		}
	}
}
