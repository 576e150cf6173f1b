package bench

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/sandsnap/sandsnap/internal/fstree"
)

// gen generates a workload into a fresh directory.
func gen(t *testing.T, kind string, opts Options) (string, Stats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), kind)
	st, err := Generate(dir, kind, opts)
	if err != nil {
		t.Fatalf("Generate(%s): %v", kind, err)
	}
	return dir, st
}

var quick = map[string]Options{
	KindNode:      {Files: 250, Scale: 0.01},
	KindRepo:      {Files: 60, Scale: 0.01},
	KindWorkspace: {Files: 300, Scale: 0.01},
	KindDB:        {Bytes: 1 << 20},
	KindBigfile:   {Bytes: 4<<20 + 3}, // two segments, the last one odd
}

func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindNode, KindRepo, KindWorkspace, KindDB, KindBigfile} {
		t.Run(kind, func(t *testing.T) {
			opts := quick[kind]
			opts.Seed = 42
			a, sa := gen(t, kind, opts)
			b, sb := gen(t, kind, opts)
			if sa != sb {
				t.Errorf("stats differ: %+v vs %+v", sa, sb)
			}
			diffs, err := fstree.Compare(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(diffs) > 0 {
				t.Errorf("same seed, %d differences, first: %s", len(diffs), diffs[0])
			}
			opts.Seed = 43
			c, _ := gen(t, kind, opts)
			diffs, err = fstree.Compare(a, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(diffs) == 0 {
				t.Error("different seeds made identical trees")
			}
		})
	}
}

type walked struct {
	files, dirs, links int
	bytes              int64
	sizes              []int64
	paths              []string // regular files, in walk order
}

func walk(t *testing.T, dir string) walked {
	t.Helper()
	var w walked
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			w.dirs++
		case d.Type()&fs.ModeSymlink != 0:
			w.links++
			if _, err := os.Stat(p); err != nil {
				t.Errorf("symlink %s: %v", rel, err)
			}
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			w.files++
			w.bytes += info.Size()
			w.sizes = append(w.sizes, info.Size())
			w.paths = append(w.paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(w.sizes)
	return w
}

func TestGenerateStats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind           string
		opts           Options
		minFiles       int
		maxFiles       int
		minBytes       int64
		maxBytes       int64
		wantMinMedian  int64
		wantMaxMedian  int64
		wantPathSubstr []string
	}{
		{KindNode, Options{Files: 800, Scale: 0.02}, 550, 1100, 2 << 20, 40 << 20, 1000, 4000,
			[]string{"/node_modules/", ".min.js", "LICENSE", ".d.ts", ".js.map", "package.json"}},
		{KindRepo, Options{Scale: 0.03}, 60, 140, 1 << 20, 10 << 20, 1000, 8000,
			[]string{".git/objects/pack/pack-", ".git/HEAD", "src/"}},
		{KindDB, Options{Scale: 0.01}, 1, 1, 256 << 20 / 100 / PageSize * PageSize, 256 << 20 / 100, 0, 1 << 30, []string{DBName}},
		{KindBigfile, Options{Bytes: 12345}, 1, 1, 12345, 12345, 0, 1 << 30, []string{BigfileName}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			dir, st := gen(t, tt.kind, tt.opts)
			w := walk(t, dir)
			if st.Files != w.files || st.Dirs != w.dirs || st.Symlinks != w.links || st.Bytes != w.bytes {
				t.Errorf("Stats = %+v; the tree has %d files, %d dirs, %d links, %d bytes", st, w.files, w.dirs, w.links, w.bytes)
			}
			if w.files < tt.minFiles || w.files > tt.maxFiles {
				t.Errorf("%d files; want %d to %d", w.files, tt.minFiles, tt.maxFiles)
			}
			if w.bytes < tt.minBytes || w.bytes > tt.maxBytes {
				t.Errorf("%d bytes; want %d to %d", w.bytes, tt.minBytes, tt.maxBytes)
			}
			if m := w.sizes[len(w.sizes)/2]; m < tt.wantMinMedian || m > tt.wantMaxMedian {
				t.Errorf("median size %d; want %d to %d", m, tt.wantMinMedian, tt.wantMaxMedian)
			}
			all := strings.Join(w.paths, "\n")
			for _, s := range tt.wantPathSubstr {
				if !strings.Contains(all, s) {
					t.Errorf("no path contains %q", s)
				}
			}
		})
	}
}

func TestNodeShape(t *testing.T) {
	t.Parallel()
	dir, st := gen(t, KindNode, Options{Seed: 3, Files: 800, Scale: 0.02})
	w := walk(t, dir)
	if st.Symlinks == 0 {
		t.Error("no .bin symlinks")
	}
	// The same package version vendored twice: whole identical folders.
	byContent := map[string][]string{}
	var licenses, bundles int
	for _, rel := range w.paths {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		byContent[string(data)] = append(byContent[string(data)], rel)
		if path.Base(rel) == "LICENSE" {
			licenses++
		}
		if strings.HasSuffix(rel, ".min.js") && len(data) > 100<<10 {
			bundles++
		}
	}
	dupLicenses, dupOther := 0, 0
	for _, rels := range byContent {
		if len(rels) < 2 {
			continue
		}
		if path.Base(rels[0]) == "LICENSE" {
			dupLicenses += len(rels)
		} else {
			dupOther += len(rels)
		}
	}
	if dupLicenses < licenses/2 {
		t.Errorf("%d of %d LICENSE files have a twin; want most", dupLicenses, licenses)
	}
	if dupOther < w.files/50 {
		t.Errorf("%d of %d other files have a twin; want vendored copies", dupOther, w.files)
	}
	if bundles == 0 {
		t.Error("no bundle")
	}
	if !strings.Contains(strings.Join(w.paths, "\n"), "/node_modules/") {
		t.Error("no nested node_modules")
	}
}

// ratio compresses the files in frames of about 128 KiB of input, as the
// pack writer does with small blobs.
func ratio(t *testing.T, dir string, paths []string, limit int64) float64 {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var in, out int64
	var frame []byte
	flush := func() {
		in += int64(len(frame))
		out += int64(len(enc.EncodeAll(frame, nil)))
		frame = frame[:0]
	}
	for _, rel := range paths {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 {
			n := min(len(data), 128<<10-len(frame))
			frame = append(frame, data[:n]...)
			data = data[n:]
			if len(frame) >= 128<<10 {
				flush()
			}
		}
		if in >= limit {
			break
		}
	}
	flush()
	return float64(in) / float64(out)
}

func TestCompressibility(t *testing.T) {
	t.Parallel()
	node, _ := gen(t, KindNode, Options{Seed: 5, Files: 400, Scale: 0.01})
	repo, _ := gen(t, KindRepo, Options{Seed: 5, Files: 50, Scale: 0.02})
	big, _ := gen(t, KindBigfile, Options{Seed: 5, Bytes: 1 << 20})
	db, _ := gen(t, KindDB, Options{Seed: 5, Bytes: 2 << 20})
	w := walk(t, node)
	var text, bundles []string
	for _, rel := range w.paths {
		if strings.HasSuffix(rel, ".min.js") {
			bundles = append(bundles, rel)
		} else {
			text = append(text, rel)
		}
	}
	var pack []string
	for _, rel := range walk(t, repo).paths {
		if strings.HasSuffix(rel, ".pack") {
			pack = append(pack, rel)
		}
	}
	tests := []struct {
		name     string
		dir      string
		paths    []string
		min, max float64
	}{
		{"node text", node, text, 2.5, 8},
		{"node bundles", node, bundles, 2, 6},
		{"git pack", repo, pack, 0.9, 1.05},
		{"bigfile", big, []string{BigfileName}, 0.9, 1.05},
		{"db", db, []string{DBName}, 1.5, 8},
	}
	for _, tt := range tests {
		got := ratio(t, tt.dir, tt.paths, 8<<20)
		t.Logf("%s: %.2fx", tt.name, got)
		if got < tt.min || got > tt.max {
			t.Errorf("%s compresses %.2fx; want %.1f to %.1f", tt.name, got, tt.min, tt.max)
		}
	}
}

func TestMutateDev(t *testing.T) {
	t.Parallel()
	opts := Options{Seed: 9, Files: 300, Scale: 0.01}
	a, _ := gen(t, KindWorkspace, opts)
	b, _ := gen(t, KindWorkspace, opts)
	c, _ := gen(t, KindWorkspace, opts)
	mopts := MutateOptions{Seed: 1}
	st, err := Mutate(b, MutateDev, mopts)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Changed) != 20 || len(st.Added) != 30 || len(st.Deleted) != 5 || len(st.Touched) != 100 {
		t.Fatalf("changed %d, added %d, deleted %d, touched %d; want 20, 30, 5, 100",
			len(st.Changed), len(st.Added), len(st.Deleted), len(st.Touched))
	}
	var dirty int64
	kind := map[string]string{}
	parents := map[string]bool{}
	for _, f := range st.Changed {
		kind[f.Path] = "changed"
		dirty += f.Size
	}
	for _, f := range st.Added {
		kind[f.Path] = "added"
		dirty += f.Size
		parents[path.Dir(path.Dir(f.Path))] = true // the package folder's parent
	}
	for _, f := range st.Deleted {
		kind[f.Path] = "deleted"
		parents[path.Dir(f.Path)] = true
	}
	for _, f := range st.Touched {
		kind[f.Path] = "touched"
	}
	if dirty != st.DirtyBytes {
		t.Errorf("DirtyBytes = %d; the changed and added files hold %d", st.DirtyBytes, dirty)
	}
	diffs, err := fstree.Diff(a, b, fstree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range diffs {
		seen[d.Path] = true
		ok := false
		switch k := kind[d.Path]; {
		case k == "changed":
			ok = d.What == fstree.WhatSize || d.What == fstree.WhatMtime || d.What == fstree.WhatContent
		case k == "touched":
			ok = d.What == fstree.WhatMtime
		case k == "deleted":
			ok = d.What == fstree.WhatMissing
		case k == "added" || d.What == fstree.WhatExtra:
			ok = d.What == fstree.WhatExtra && strings.Contains(d.Path, "added-")
		default: // a directory that gained or lost an entry
			ok = d.What == fstree.WhatMtime && (parents[d.Path] || parents[path.Dir(d.Path)])
		}
		if !ok {
			t.Errorf("unreported difference: %s (reported as %q)", d, kind[d.Path])
		}
	}
	for p := range kind {
		if !seen[p] {
			t.Errorf("reported %s as %s, but it does not differ", p, kind[p])
		}
	}
	// The same mutation of the same tree gives the same tree.
	if _, err := Mutate(c, MutateDev, mopts); err != nil {
		t.Fatal(err)
	}
	if diffs, err := fstree.Compare(b, c); err != nil || len(diffs) > 0 {
		t.Errorf("same mutation, %d differences (%v): %v", len(diffs), err, diffs)
	}
}

func TestMutateDB(t *testing.T) {
	t.Parallel()
	opts := Options{Seed: 2, Bytes: 1 << 20}
	a, _ := gen(t, KindDB, opts)
	b, _ := gen(t, KindDB, opts)
	st, err := Mutate(b, MutateDB, MutateOptions{Seed: 4, Pages: 10})
	if err != nil {
		t.Fatal(err)
	}
	da, err := os.ReadFile(filepath.Join(a, DBName))
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(b, DBName))
	if err != nil {
		t.Fatal(err)
	}
	if len(da) != len(db) {
		t.Fatalf("size changed: %d -> %d", len(da), len(db))
	}
	var changed []int64
	for off := 0; off < len(da); off += PageSize {
		if !bytes.Equal(da[off:off+PageSize], db[off:off+PageSize]) {
			changed = append(changed, int64(off))
		}
	}
	if !slices.Equal(changed, st.Offsets) || len(changed) != 10 || st.DirtyBytes != 10*PageSize {
		t.Errorf("pages changed at %v; reported %v, %d bytes", changed, st.Offsets, st.DirtyBytes)
	}
}

func TestMutateBigfile(t *testing.T) {
	t.Parallel()
	opts := Options{Seed: 2, Bytes: 5<<20 + 7}
	a, _ := gen(t, KindBigfile, opts)
	b, _ := gen(t, KindBigfile, opts)
	st, err := Mutate(b, MutateBigfile, MutateOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(a, BigfileName))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(filepath.Join(b, BigfileName))
	if err != nil {
		t.Fatal(err)
	}
	mid, ins := st.Offsets[0], st.DirtyBytes
	if ins != 1<<20 || int64(len(cur)) != int64(len(old))+ins || st.Changed[0].Size != int64(len(cur)) {
		t.Fatalf("size %d -> %d, inserted %d, reported %+v", len(old), len(cur), ins, st.Changed)
	}
	if !bytes.Equal(cur[:mid], old[:mid]) || !bytes.Equal(cur[mid+ins:], old[mid:]) || bytes.Equal(cur[mid:mid+ins], old[mid:mid+ins]) {
		t.Error("the file is not the old one with bytes inserted at the reported offset")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Generate(dir, "nope", Options{}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Generate(nope): %v; want ErrUnknownKind", err)
	}
	for _, tt := range []struct {
		kind string
		want error
	}{
		{"nope", ErrUnknownKind},
		{MutateDB, fs.ErrNotExist},
		{MutateBigfile, fs.ErrNotExist},
		{MutateDev, ErrTooSmall},
	} {
		if _, err := Mutate(dir, tt.kind, MutateOptions{}); !errors.Is(err, tt.want) {
			t.Errorf("Mutate(%s) on an empty dir: %v; want %v", tt.kind, err, tt.want)
		}
	}
}

func BenchmarkTextJS(b *testing.B) {
	g := newTextGen()
	b.SetBytes(1 << 20)
	var i uint64
	for b.Loop() {
		i++
		g.seed(1, i, 0)
		g.js(1 << 20)
	}
}

func BenchmarkGenerateNode(b *testing.B) {
	dir := b.TempDir()
	var st Stats
	var err error
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
		st, err = Generate(dir, KindNode, Options{Scale: 0.1})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(st.Bytes)
}
