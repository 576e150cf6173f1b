package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The mutation kinds Mutate knows.
const (
	MutateDev     = "dev"
	MutateDB      = "db"
	MutateBigfile = "bigfile"
)

// MutateOptions sizes a mutation. Zero counts mean the defaults; a negative
// count means none.
type MutateOptions struct {
	// Seed chooses what changes and the new bytes; the same seed on the
	// same tree makes the same change.
	Seed uint64
	// "dev": files edited (20), files added in a new package folder (30),
	// files deleted (5), files whose mtime alone changes (100).
	Edits, Adds, Deletes, Touches int
	// "db": pages rewritten (100).
	Pages int
	// "bigfile": bytes inserted in the middle (1 MiB).
	Insert int64
}

// FileChange is one file that Mutate changed.
type FileChange struct {
	Path string // relative to the tree's root, slash-separated
	Size int64  // after the change (before it, for a deleted file)
}

// MutateStats reports exactly what Mutate changed. Besides the files listed,
// the parent directories of added and deleted files get a new mtime.
type MutateStats struct {
	Changed []FileChange // content rewritten (and mtime changed)
	Added   []FileChange
	Deleted []FileChange
	Touched []FileChange // mtime changed, content not
	// Offsets are where bytes were rewritten: the pages of "db", the
	// insertion point of "bigfile".
	Offsets []int64
	// DirtyBytes is the new content a backup has to store at least: the
	// changed and added files for "dev", the pages for "db", the inserted
	// bytes for "bigfile".
	DirtyBytes int64
}

// Mutate changes the tree under dir, made by Generate, as a sandbox's work
// would: "dev" (any tree with files; .git is left alone), "db" (a "db"
// workload) or "bigfile" (a "bigfile" workload).
func Mutate(dir string, kind string, opts MutateOptions) (MutateStats, error) {
	switch kind {
	case MutateDev:
		return mutateDev(dir, opts)
	case MutateDB:
		return mutateDB(dir, opts)
	case MutateBigfile:
		return mutateBigfile(dir, opts)
	}
	return MutateStats{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
}

func count(n, def int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return def
	}
	return n
}

type candidate struct {
	rel  string
	size int64
	used bool
}

// ErrTooSmall is returned when a tree lacks the files a mutation needs.
var ErrTooSmall = errors.New("bench: tree too small for the mutation")

func mutateDev(dir string, opts MutateOptions) (MutateStats, error) {
	var st MutateStats
	files, err := regularFiles(dir)
	if err != nil {
		return st, err
	}
	edits, adds := count(opts.Edits, 20), count(opts.Adds, 30)
	deletes, touches := count(opts.Deletes, 5), count(opts.Touches, 100)
	if len(files) < edits+deletes+touches {
		return st, fmt.Errorf("%w: %s has %d files, %d wanted", ErrTooSmall, dir, len(files), edits+deletes+touches)
	}
	r := newRand(opts.Seed, 0x646576)
	order := r.Perm(len(files))
	pick := func(text bool) *candidate {
		for _, i := range order {
			if c := &files[i]; !c.used && (!text || isText(c.rel)) {
				c.used = true
				return c
			}
		}
		return nil
	}
	g := newTextGen()
	stamp := 0
	next := func() unix.Timespec { stamp++; return entryTime(MutateEpochUnix, stamp) }
	for range edits {
		c := pick(true)
		if c == nil {
			c = pick(false)
		}
		size, err := edit(filepath.Join(dir, filepath.FromSlash(c.rel)), r, g, next())
		if err != nil {
			return st, err
		}
		st.Changed = append(st.Changed, FileChange{c.rel, size})
		st.DirtyBytes += size
	}
	parents := map[string]bool{}
	for range deletes {
		c := pick(false)
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(c.rel))); err != nil {
			return st, fmt.Errorf("bench: %w", err)
		}
		parents[path.Dir(c.rel)] = true
		st.Deleted = append(st.Deleted, FileChange{c.rel, c.size})
	}
	for range touches {
		c := pick(false)
		if err := setTime(filepath.Join(dir, filepath.FromSlash(c.rel)), next()); err != nil {
			return st, err
		}
		st.Touched = append(st.Touched, FileChange{c.rel, c.size})
	}
	if adds > 0 {
		parent, err := addPackage(dir, adds, r, g, next, &st)
		if err != nil {
			return st, err
		}
		parents[parent] = true
	}
	for _, p := range slices.Sorted(maps.Keys(parents)) {
		if err := setTime(filepath.Join(dir, filepath.FromSlash(p)), next()); err != nil {
			return st, err
		}
	}
	for _, l := range [][]FileChange{st.Changed, st.Added, st.Deleted, st.Touched} {
		slices.SortFunc(l, func(a, b FileChange) int { return strings.Compare(a.Path, b.Path) })
	}
	return st, nil
}

// regularFiles lists the regular files under dir outside .git, sorted.
func regularFiles(dir string) ([]candidate, error) {
	var files []candidate
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && rel == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, candidate{rel: rel, size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return files, nil
}

func isText(rel string) bool {
	switch path.Ext(rel) {
	case ".js", ".mjs", ".cjs", ".ts", ".tsx", ".json", ".md", ".map", ".go", ".sh":
		return true
	}
	return false
}

// edit inserts a few generated lines at a line boundary of the file, in
// place, and gives it mtime ts. It returns the new size.
func edit(p string, r *rand.Rand, g *textGen, ts unix.Timespec) (int64, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	at := r.IntN(len(data) + 1)
	if i := slices.Index(data[at:], '\n'); i >= 0 {
		at += i + 1
	} else {
		at = len(data)
	}
	g.seed(r.Uint64(), r.Uint64(), 0)
	g.js(60 + r.IntN(300))
	out := slices.Concat(data[:at], g.out, data[at:])
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	_, err = f.Write(out)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("bench: write %s: %w", p, err)
	}
	return int64(len(out)), setTime(p, ts)
}

// addPackage writes a new package folder of n small files, in node_modules if
// the tree has one, and returns the folder's parent.
func addPackage(dir string, n int, r *rand.Rand, g *textGen, next func() unix.Timespec, st *MutateStats) (string, error) {
	parent := "."
	if fi, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil && fi.IsDir() {
		parent = "node_modules"
	}
	name := fmt.Sprintf("added-%08x", r.Uint32())
	for i := 2; ; i++ {
		_, err := os.Lstat(filepath.Join(dir, parent, name))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("added-%08x-%d", r.Uint32(), i)
	}
	root := path.Join(parent, name)
	vocab := r.Uint64()
	var dirs []string
	taken := map[string]bool{}
	for i := range n {
		f := fileSpec{kind: kindJS, vocab: vocab, seed: r.Uint64(), size: lognormal(r, 2048, 1.0, 40, 64<<10), mode: 0o644}
		switch i {
		case 0:
			f.rel, f.kind, f.size = "package.json", kindJSON, 900
		case 1:
			f.rel = "index.js"
		case 2:
			f.rel, f.kind = "README.md", kindMD
		default:
			f.rel = uniqueName(taken, "lib/"+codeWords[r.IntN(len(codeWords))], ".js")
		}
		rel := path.Join(root, f.rel)
		abs := filepath.Join(dir, filepath.FromSlash(rel))
		for _, d := range []string{root, path.Dir(rel)} {
			if !slices.Contains(dirs, d) {
				if err := mkdir(filepath.Join(dir, filepath.FromSlash(d))); err != nil {
					return "", err
				}
				dirs = append(dirs, d)
			}
		}
		if err := writeFile(abs, g.content(&f, 0, int(f.size)), f.mode); err != nil {
			return "", err
		}
		if err := setTime(abs, next()); err != nil {
			return "", err
		}
		st.Added = append(st.Added, FileChange{rel, f.size})
		st.DirtyBytes += f.size
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setTime(filepath.Join(dir, filepath.FromSlash(dirs[i])), next()); err != nil {
			return "", err
		}
	}
	return parent, nil
}

func mutateDB(dir string, opts MutateOptions) (MutateStats, error) {
	var st MutateStats
	p := filepath.Join(dir, DBName)
	fi, err := os.Stat(p)
	if err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	pages := fi.Size() / PageSize
	n := int64(count(opts.Pages, 100))
	if n > pages {
		return st, fmt.Errorf("%w: %s has %d pages, %d wanted", ErrTooSmall, p, pages, n)
	}
	r := newRand(opts.Seed, 0x6462)
	chosen := map[int64]bool{}
	for int64(len(chosen)) < n {
		chosen[r.Int64N(pages)] = true
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	g := newTextGen()
	version := 1 + r.Uint64()>>1
	for _, page := range slices.Sorted(maps.Keys(chosen)) {
		g.out = g.out[:0]
		if _, err = f.WriteAt(dbPage(g, opts.Seed, page, version), page*PageSize); err != nil {
			break
		}
		st.Offsets = append(st.Offsets, page*PageSize)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("bench: write %s: %w", p, err)
	}
	st.Changed = []FileChange{{DBName, fi.Size()}}
	st.DirtyBytes = n * PageSize
	return st, setTime(p, entryTime(MutateEpochUnix, 1))
}

// mutateBigfile inserts bytes in the middle of the file by writing a new
// file and renaming it over the old one.
func mutateBigfile(dir string, opts MutateOptions) (MutateStats, error) {
	var st MutateStats
	p := filepath.Join(dir, BigfileName)
	src, err := os.Open(p)
	if err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	insert := opts.Insert
	if insert == 0 {
		insert = 1 << 20
	}
	// Not page-aligned: content-defined chunking must find the old data.
	mid := fi.Size() / 2
	if mid > 12345 {
		mid += 12345
	}
	tmp := p + ".mutate-tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return st, fmt.Errorf("bench: %w", err)
	}
	err = copyInsert(dst, src, mid, insert, opts.Seed)
	if err == nil {
		err = dst.Chmod(fi.Mode().Perm())
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return st, fmt.Errorf("bench: rewrite %s: %w", p, err)
	}
	st.Changed = []FileChange{{BigfileName, fi.Size() + max(insert, 0)}}
	st.Offsets = []int64{mid}
	st.DirtyBytes = max(insert, 0)
	if err := setTime(p, entryTime(MutateEpochUnix, 1)); err != nil {
		return st, err
	}
	// The rename changed the directory.
	return st, setTime(dir, entryTime(MutateEpochUnix, 2))
}

func copyInsert(dst io.Writer, src io.Reader, mid, insert int64, seed uint64) error {
	if _, err := io.CopyN(dst, src, mid); err != nil {
		return err
	}
	pcg := rand.NewPCG(seed, 0xb16)
	buf := make([]byte, 1<<20)
	for left := insert; left > 0; {
		n := min(left, int64(len(buf)))
		for i := 0; i < int(n); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], pcg.Uint64())
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	_, err := io.Copy(dst, src)
	return err
}
