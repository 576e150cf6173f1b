package fstree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// What names the aspect in which a Difference disagrees.
const (
	WhatMissing = "missing" // the path exists in a only
	WhatExtra   = "extra"   // the path exists in b only
	WhatType    = "type"    // file type (regular, dir, symlink, fifo, ...)
	WhatMode    = "mode"    // permission bits, mode & 07777
	WhatUID     = "uid"
	WhatGID     = "gid"
	WhatSize    = "size"    // st_size, for everything but directories
	WhatMtime   = "mtime"   // modification time, to the nanosecond
	WhatTarget  = "target"  // symlink target bytes
	WhatContent = "content" // regular file bytes (sizes being equal)
	WhatXattr   = "xattr"   // the set of user.* extended attributes or a value
	WhatRdev    = "rdev"    // device number of a device node
	WhatLink    = "link"    // the other names that are the same inode
)

// Options changes what Diff and CompareWith look at. The zero value compares
// everything.
type Options struct {
	// IgnoreRootMeta skips the mode, owner, mtime and xattrs of the two roots
	// themselves (a restore target is often created by someone else).
	IgnoreRootMeta bool
	// Exclude, if set, is called with each relative, slash-separated path
	// (never "."); an excluded entry is skipped on both sides, a directory
	// with all its contents.
	Exclude func(rel string) bool
}

// Difference is one disagreement between two trees at one path.
type Difference struct {
	Path string // relative to the roots, slash-separated; "." is the root
	What string // one of the What constants
	A, B string // the value on each side, human-readable
}

// String formats d on one line; the path is quoted because names may hold any
// byte, newlines included.
func (d Difference) String() string {
	switch d.What {
	case WhatMissing:
		return fmt.Sprintf("%q: missing from b (a has %s)", d.Path, d.A)
	case WhatExtra:
		return fmt.Sprintf("%q: only in b (%s)", d.Path, d.B)
	}
	return fmt.Sprintf("%q: %s differs: a=%s b=%s", d.Path, d.What, d.A, d.B)
}

// Compare reports how the trees rooted at a and b differ, one human-readable
// line per Difference; an empty list means they are identical. Errors are
// reserved for trees that cannot be read.
func Compare(a, b string) ([]string, error) {
	return CompareWith(a, b, Options{})
}

// CompareWith is Compare with options.
func CompareWith(a, b string, opts Options) ([]string, error) {
	diffs, err := Diff(a, b, opts)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(diffs))
	for i, d := range diffs {
		out[i] = d.String()
	}
	return out, nil
}

// Allocated returns the bytes that path occupies on disk (st_blocks * 512),
// without following a symlink. A sparse file allocates less than its size.
func Allocated(path string) (int64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, fmt.Errorf("fstree: lstat %s: %w", path, err)
	}
	return st.Blocks * 512, nil
}

// entry is what one walk learns about one path.
type entry struct {
	st     unix.Stat_t
	target string            // symlinks only
	xattrs map[string]string // user.* only
}

type tree struct {
	root    string
	entries map[string]*entry
}

func (t *tree) abs(rel string) string {
	return filepath.Join(t.root, filepath.FromSlash(rel))
}

// Diff walks the trees rooted at a and b (never following symlinks) and
// returns their differences sorted by path, then by aspect.
func Diff(a, b string, opts Options) ([]Difference, error) {
	ta, err := walk(a, opts)
	if err != nil {
		return nil, err
	}
	tb, err := walk(b, opts)
	if err != nil {
		return nil, err
	}
	var diffs []Difference
	var same []string // regular files of equal size whose bytes must be read
	for _, rel := range unionKeys(ta.entries, tb.entries) {
		ea, eb := ta.entries[rel], tb.entries[rel]
		switch {
		case eb == nil:
			diffs = append(diffs, Difference{Path: rel, What: WhatMissing, A: typeName(ea.st.Mode)})
			continue
		case ea == nil:
			diffs = append(diffs, Difference{Path: rel, What: WhatExtra, B: typeName(eb.st.Mode)})
			continue
		}
		d := compareEntry(rel, ea, eb, opts.IgnoreRootMeta && rel == ".")
		diffs = append(diffs, d...)
		if len(d) == 0 || !slices.ContainsFunc(d, func(x Difference) bool { return x.What == WhatType || x.What == WhatSize }) {
			if ea.st.Mode&unix.S_IFMT == unix.S_IFREG {
				same = append(same, rel)
			}
		}
	}
	diffs = append(diffs, compareLinks(ta, tb)...)
	cd, err := compareContents(ta, tb, same)
	if err != nil {
		return nil, err
	}
	diffs = append(diffs, cd...)
	slices.SortStableFunc(diffs, func(x, y Difference) int {
		return strings.Compare(x.Path, y.Path)
	})
	return diffs, nil
}

func unionKeys(a, b map[string]*entry) []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func compareEntry(rel string, ea, eb *entry, skipMeta bool) []Difference {
	var diffs []Difference
	add := func(what, va, vb string) {
		if va != vb {
			diffs = append(diffs, Difference{Path: rel, What: what, A: va, B: vb})
		}
	}
	sa, sb := &ea.st, &eb.st
	add(WhatType, typeName(sa.Mode), typeName(sb.Mode))
	if len(diffs) > 0 {
		return diffs
	}
	kind := sa.Mode & unix.S_IFMT
	if !skipMeta {
		add(WhatMode, fmt.Sprintf("%#o", sa.Mode&07777), fmt.Sprintf("%#o", sb.Mode&07777))
		add(WhatUID, strconv.FormatUint(uint64(sa.Uid), 10), strconv.FormatUint(uint64(sb.Uid), 10))
		add(WhatGID, strconv.FormatUint(uint64(sa.Gid), 10), strconv.FormatUint(uint64(sb.Gid), 10))
		add(WhatMtime, formatTime(sa.Mtim), formatTime(sb.Mtim))
		add(WhatXattr, formatXattrs(ea.xattrs), formatXattrs(eb.xattrs))
	}
	if kind != unix.S_IFDIR {
		add(WhatSize, strconv.FormatInt(sa.Size, 10), strconv.FormatInt(sb.Size, 10))
	}
	if kind == unix.S_IFLNK {
		add(WhatTarget, strconv.Quote(ea.target), strconv.Quote(eb.target))
	}
	if kind == unix.S_IFCHR || kind == unix.S_IFBLK {
		add(WhatRdev, formatRdev(sa.Rdev), formatRdev(sb.Rdev))
	}
	return diffs
}

// compareLinks reports every non-directory name whose set of fellow links
// differs between the trees.
func compareLinks(ta, tb *tree) []Difference {
	ga, gb := linkGroups(ta), linkGroups(tb)
	var diffs []Difference
	for _, rel := range unionKeys(ta.entries, tb.entries) {
		ea, eb := ta.entries[rel], tb.entries[rel]
		if ea == nil || eb == nil || ea.st.Mode&unix.S_IFMT == unix.S_IFDIR || eb.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		la, lb := fellows(ga, ea, rel), fellows(gb, eb, rel)
		if la != lb {
			diffs = append(diffs, Difference{Path: rel, What: WhatLink, A: la, B: lb})
		}
	}
	return diffs
}

type inode struct{ dev, ino uint64 }

func linkGroups(t *tree) map[inode][]string {
	groups := make(map[inode][]string)
	for rel, e := range t.entries {
		if e.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		k := inode{uint64(e.st.Dev), uint64(e.st.Ino)}
		groups[k] = append(groups[k], rel)
	}
	return groups
}

// fellows lists the other names of rel's inode, quoted and sorted, or
// "none".
func fellows(groups map[inode][]string, e *entry, rel string) string {
	var names []string
	for _, n := range groups[inode{uint64(e.st.Dev), uint64(e.st.Ino)}] {
		if n != rel {
			names = append(names, strconv.Quote(n))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return "[" + strings.Join(names, " ") + "]"
}

// compareContents reads the listed regular files of both trees, a few at a
// time, and reports those whose bytes differ.
func compareContents(ta, tb *tree, rels []string) ([]Difference, error) {
	const workers = 4
	differ := make([]bool, len(rels))
	errs := make([]error, len(rels))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
			for i := range next {
				same, err := sameContent(ta.abs(rels[i]), tb.abs(rels[i]), ba, bb)
				differ[i], errs[i] = !same, err
			}
		})
	}
	for i := range rels {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var diffs []Difference
	for i, d := range differ {
		if d {
			diffs = append(diffs, Difference{Path: rels[i], What: WhatContent, A: "bytes", B: "other bytes"})
		}
	}
	return diffs, nil
}

func sameContent(pa, pb string, ba, bb []byte) (bool, error) {
	fa, err := os.Open(pa)
	if err != nil {
		return false, fmt.Errorf("fstree: %w", err)
	}
	defer fa.Close()
	fb, err := os.Open(pb)
	if err != nil {
		return false, fmt.Errorf("fstree: %w", err)
	}
	defer fb.Close()
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if erra != nil && erra != io.EOF && erra != io.ErrUnexpectedEOF {
			return false, fmt.Errorf("fstree: read %s: %w", pa, erra)
		}
		if errb != nil && errb != io.EOF && errb != io.ErrUnexpectedEOF {
			return false, fmt.Errorf("fstree: read %s: %w", pb, errb)
		}
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra != nil || errb != nil {
			return erra != nil && errb != nil, nil
		}
	}
}

// walk lstats every entry under root, in no particular order.
func walk(root string, opts Options) (*tree, error) {
	t := &tree{root: root, entries: make(map[string]*entry)}
	if err := t.visit("."); err != nil {
		return nil, err
	}
	if t.entries["."].st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("fstree: %s: not a directory", root)
	}
	var rec func(rel string) error
	rec = func(rel string) error {
		des, err := os.ReadDir(t.abs(rel))
		if err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		for _, de := range des {
			child := path.Join(rel, de.Name())
			if opts.Exclude != nil && opts.Exclude(child) {
				continue
			}
			if err := t.visit(child); err != nil {
				return err
			}
			if t.entries[child].st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if err := rec(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return t, rec(".")
}

func (t *tree) visit(rel string) error {
	p := t.abs(rel)
	e := &entry{}
	if err := unix.Lstat(p, &e.st); err != nil {
		return fmt.Errorf("fstree: lstat %s: %w", p, err)
	}
	if e.st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("fstree: %w", err)
		}
		e.target = target
	}
	x, err := userXattrs(p)
	if err != nil {
		return err
	}
	e.xattrs = x
	t.entries[rel] = e
	return nil
}

// userXattrs returns the user.* extended attributes of p, not following a
// symlink. A filesystem without xattr support has none.
func userXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	var n int
	for {
		var err error
		n, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fstree: listxattr %s: %w", p, err)
		}
		break
	}
	var out map[string]string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v, err := lgetxattr(p, name)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = string(v)
	}
	return out, nil
}

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fstree: getxattr %s %s: %w", p, name, err)
		}
		return buf[:n], nil
	}
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFBLK:
		return "blockdev"
	}
	return fmt.Sprintf("type%#o", mode&unix.S_IFMT)
}

func formatTime(ts unix.Timespec) string {
	return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
}

func formatRdev(rdev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
}

func formatXattrs(x map[string]string) string {
	if len(x) == 0 {
		return "none"
	}
	names := make([]string, 0, len(x))
	for n := range x {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Quote(x[n])
	}
	return "{" + strings.Join(parts, " ") + "}"
}
