package repo

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf8"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
)

// Trees are shared by ID, so a repository of a few kilobytes can describe
// a directory of billions of entries (a tree holding the same subtree
// twice, 31 levels deep, is 2^31 files), or a file of a terabyte made of
// one chunk repeated. Restore, Diff and Verify therefore count a
// snapshot's trees before they build anything per entry: once per unique
// tree, memoized by tree ID, so the cost follows the repository's size,
// not the size the trees expand to. The counts are compared with what the
// snapshot declares (manifest.Summary, which a listing shows) and with
// Limits, and the work stops at the first subtree that exceeds either.

// Defaults of a trusted restore: generous, there to stop a corrupt or
// hostile snapshot from exhausting memory, never a real sandbox. The plan
// keeps about 120 bytes per entry (TestPlanMemoryPerEntry: live heap for
// 200k one-chunk files), so 16M entries is about 2 GB before the data
// phase adds its own, far above any workspace (a large monorepo with its
// node_modules is on the order of a million entries). Bytes are not
// bounded: the disk bounds them, and the plan does not grow with file
// sizes.
const (
	defaultMaxEntries = 1 << 24
	defaultMaxBytes   = math.MaxUint64
	defaultMaxDepth   = manifest.MaxDepth
)

// Defaults of an untrusted restore (RestoreOptions.Untrusted), where the
// snapshot's author may want to exhaust the restoring host: 2M entries
// (twice a large monorepo with dependencies; about 250 MB of plan), 64 GiB
// (more than the disk of most sandboxes), and 256 directories deep (real
// trees nest a few dozen levels at most, node_modules included; PATH_MAX
// allows 2048 levels of one-letter names).
const (
	untrustedMaxEntries = 1 << 21
	untrustedMaxBytes   = 64 << 30
	untrustedMaxDepth   = 256
)

// chunksPerEntry bounds the chunk references of a snapshot's files: on
// average per allowed entry. The plan and the data phase hold one target
// (16 bytes) per reference, and neither the entry count nor the bytes
// bound them: one file can list a chunk millions of times, and chunks can
// be a byte long. At the 1 MiB average chunk, 4 per entry is 64 TiB of
// data for a trusted restore and 8 TiB for an untrusted one.
const chunksPerEntry = 4

// pathBytesPerEntry bounds the text of the directory paths a plan keeps
// (each planned directory holds its path below the target): on average
// per allowed entry, and never below minPathBudget, so that a small
// MaxFiles does not refuse a small tree with long names. A chain of 16384
// directories with 255-byte names holds 34 GB of paths in only 16384
// entries; real trees average well under 100 bytes per path. Trusted:
// 2 GiB; untrusted: 256 MiB.
const (
	pathBytesPerEntry = 128
	minPathBudget     = 64 << 20
)

// DefaultLimits returns the limits of a trusted restore: 16M entries,
// unbounded bytes, manifest.MaxDepth directories deep.
func DefaultLimits() Limits {
	return Limits{MaxFiles: defaultMaxEntries, MaxBytes: defaultMaxBytes, MaxDepth: defaultMaxDepth}
}

// DefaultUntrustedLimits returns the limits of an untrusted restore: 2M
// entries (1<<21), 64 GiB, 256 directories deep.
func DefaultUntrustedLimits() Limits {
	return Limits{MaxFiles: untrustedMaxEntries, MaxBytes: untrustedMaxBytes, MaxDepth: untrustedMaxDepth}
}

// withDefaults returns l with its zero fields taken from the defaults of
// the mode. Depth never exceeds manifest.MaxDepth, which every walk of
// trees enforces.
func (l Limits) withDefaults(untrusted bool) Limits {
	d := DefaultLimits()
	if untrusted {
		d = DefaultUntrustedLimits()
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, manifest.MaxDepth)
	return l
}

// maxChunks is the most chunk references the files of a snapshot may hold
// under l.
func (l Limits) maxChunks() uint64 { return satMul(l.MaxFiles, chunksPerEntry) }

// pathBudget is the most directory-path text a plan under l may hold.
func (l Limits) pathBudget() uint64 {
	return max(minPathBudget, satMul(l.MaxFiles, pathBytesPerEntry))
}

// checkDeclared refuses a snapshot whose declaration alone exceeds l,
// before any tree is loaded.
func checkDeclared(s *manifest.Summary, l Limits) error {
	if n := declaredEntries(s); n > l.MaxFiles {
		return fmt.Errorf("%w: snapshot declares %d entries; the limit is %d", ErrLimit, n, l.MaxFiles)
	}
	if s.Bytes > l.MaxBytes {
		return fmt.Errorf("%w: snapshot declares %d bytes of files; the limit is %d", ErrLimit, s.Bytes, l.MaxBytes)
	}
	return nil
}

func declaredEntries(s *manifest.Summary) uint64 {
	return satAdd(satAdd(s.Files, s.Dirs), satAdd(s.Symlinks, s.Other))
}

// treeCount is what a tree holds, itself and every tree below it. Sums
// saturate at the largest uint64 instead of wrapping.
type treeCount struct {
	files, dirs, symlinks, other uint64 // entries by type; every hard-link name is a file
	bytes                        uint64 // file sizes, every hard-link name counted
	chunks                       uint64 // chunk references of the files
	links                        uint64 // hard-linked file names
	// dirPath sums the lengths of the paths (relative to the tree) of the
	// directories below it: what a plan keeps in rdir.rel.
	dirPath uint64
	height  int // deepest directory nesting below: 0 without subdirectories
}

func (c *treeCount) entries() uint64 {
	return satAdd(satAdd(c.files, c.dirs), satAdd(c.symlinks, c.other))
}

// add counts node n of the tree, and sub, the count of its subtree when n
// is a directory.
func (c *treeCount) add(n *manifest.Node, sub *treeCount) {
	switch n.Type {
	case manifest.TypeFile:
		c.files = satAdd(c.files, 1)
		c.bytes = satAdd(c.bytes, n.Size)
		c.chunks = satAdd(c.chunks, uint64(len(n.Content)))
		if n.LinkID != 0 {
			c.links = satAdd(c.links, 1)
		}
	case manifest.TypeDir:
		c.files = satAdd(c.files, sub.files)
		c.dirs = satAdd(c.dirs, satAdd(sub.dirs, 1))
		c.symlinks = satAdd(c.symlinks, sub.symlinks)
		c.other = satAdd(c.other, sub.other)
		c.bytes = satAdd(c.bytes, sub.bytes)
		c.chunks = satAdd(c.chunks, sub.chunks)
		c.links = satAdd(c.links, sub.links)
		// The directory's own path, then its name and a slash before
		// each path below it.
		name := uint64(len(n.Name))
		c.dirPath = satAdd(c.dirPath, satAdd(name, satAdd(sub.dirPath, satMul(name+1, sub.dirs))))
		c.height = max(c.height, sub.height+1)
	case manifest.TypeSymlink:
		c.symlinks = satAdd(c.symlinks, 1)
	default:
		c.other = satAdd(c.other, 1)
	}
}

// treeLoader loads tree id of the directory whose path rel returns; rel is
// called only to name the directory in an error.
type treeLoader func(ctx context.Context, id chunk.ID, rel func() string) (*manifest.Tree, error)

// treeCounter counts trees, memoized by ID. One counter may serve several
// snapshots (Diff's two, Verify's all): a count, once complete, is exact
// whatever bound stopped another count. It is used by one goroutine.
type treeCounter struct {
	load treeLoader
	memo map[chunk.ID]*treeCount
	// trees, when not nil, keeps every tree loaded, for a caller that
	// goes on to walk them (the restore plan).
	trees  map[chunk.ID]*manifest.Tree
	loaded int      // trees loaded
	names  []string // the path from the root to the tree being counted
}

func newTreeCounter(load treeLoader, keep bool) *treeCounter {
	c := &treeCounter{load: load, memo: make(map[chunk.ID]*treeCount)}
	if keep {
		c.trees = make(map[chunk.ID]*manifest.Tree)
	}
	return c
}

// countBound is what one snapshot's count accepts: its declaration (when
// decl is set) and the limits.
type countBound struct {
	decl *manifest.Summary
	lim  Limits
	// looseBytes accepts more bytes of files than declared (entries
	// stay exact). Before the declaration counted the bytes actually
	// read, a file that grew while a backup read it was declared at its
	// size in the walk, so trusted snapshots of older versions may hold
	// more than they declare; their bytes are still bounded by lim. An
	// untrusted restore and verify compare exactly.
	looseBytes bool
}

// checkSnapshot refuses snapshot s when its declaration exceeds lim, or
// when its trees hold more than it declares or lim allows (ErrLimit); see
// count.
func (c *treeCounter) checkSnapshot(ctx context.Context, s *manifest.Snapshot, lim Limits, looseBytes bool) error {
	if err := checkDeclared(&s.Summary, lim); err != nil {
		return err
	}
	_, err := c.count(ctx, s.Tree, countBound{decl: &s.Summary, lim: lim, looseBytes: looseBytes})
	return err
}

// loadTreeAt is a treeLoader over the repository's tree cache.
func (r *Repository) loadTreeAt(ctx context.Context, id chunk.ID, rel func() string) (*manifest.Tree, error) {
	t, err := r.loadTree(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", rel(), err)
	}
	return t, nil
}

// count returns the count of the snapshot whose root tree is root. It
// fails with ErrLimit as soon as a subtree holds more than b accepts
// (counts only grow towards the root, so the snapshot would too), and
// with the loader's error for a tree that cannot be loaded. The work is
// one load per unique tree, and it stops at the first refusal.
func (c *treeCounter) count(ctx context.Context, root chunk.ID, b countBound) (treeCount, error) {
	c.names = c.names[:0]
	tc, err := c.tree(ctx, root, 0, b)
	if err != nil {
		return treeCount{}, err
	}
	return *tc, nil
}

// tree counts tree id, depth directories below the root.
func (c *treeCounter) tree(ctx context.Context, id chunk.ID, depth int, b countBound) (*treeCount, error) {
	if depth > b.lim.MaxDepth {
		return nil, fmt.Errorf("%w: directory %q is more than %d directories deep", ErrLimit, c.rel(), b.lim.MaxDepth)
	}
	tc, ok := c.memo[id]
	if !ok {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if tc, err = c.compute(ctx, id, depth, b); err != nil {
			return nil, err
		}
		c.memo[id] = tc
	}
	return tc, c.check(tc, depth, b)
}

// compute loads tree id and counts it from the counts of its subtrees.
func (c *treeCounter) compute(ctx context.Context, id chunk.ID, depth int, b countBound) (*treeCount, error) {
	tc := &treeCount{}
	if id.IsZero() {
		return tc, nil // the empty tree
	}
	t, err := c.load(ctx, id, c.rel)
	if err != nil {
		return nil, err
	}
	c.loaded++
	if c.trees != nil {
		c.trees[id] = t
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		var sub *treeCount
		if n.Type == manifest.TypeDir {
			c.names = append(c.names, n.Name)
			sub, err = c.tree(ctx, n.Subtree, depth+1, b)
			c.names = c.names[:len(c.names)-1]
			if err != nil {
				return nil, err
			}
		}
		tc.add(n, sub)
	}
	return tc, nil
}

// check refuses a count, of a tree depth directories below the root, that
// exceeds b. Below the root the snapshot holds at least as much.
func (c *treeCounter) check(tc *treeCount, depth int, b countBound) error {
	atLeast := ""
	if depth > 0 {
		atLeast = "at least "
	}
	if d := b.decl; d != nil {
		for _, q := range []struct {
			what          string
			declared, got uint64
		}{
			{"files", d.Files, tc.files}, {"directories", d.Dirs, tc.dirs}, {"symlinks", d.Symlinks, tc.symlinks},
			{"other entries", d.Other, tc.other}, {"bytes of files", d.Bytes, tc.bytes},
		} {
			if q.got > q.declared && !(b.looseBytes && q.what == "bytes of files") {
				return fmt.Errorf("%w: snapshot declares %d %s but its trees hold %s%d", ErrLimit, q.declared, q.what, atLeast, q.got)
			}
		}
	}
	switch l := b.lim; {
	case tc.entries() > l.MaxFiles:
		return fmt.Errorf("%w: snapshot holds %s%d entries; the limit is %d", ErrLimit, atLeast, tc.entries(), l.MaxFiles)
	case tc.bytes > l.MaxBytes:
		return fmt.Errorf("%w: snapshot holds %s%d bytes of files; the limit is %d", ErrLimit, atLeast, tc.bytes, l.MaxBytes)
	case tc.chunks > l.maxChunks():
		return fmt.Errorf("%w: snapshot's files hold %s%d chunk references; the limit is %d", ErrLimit, atLeast, tc.chunks, l.maxChunks())
	case depth+tc.height > l.MaxDepth:
		return fmt.Errorf("%w: snapshot holds directories %s%d deep; the limit is %d", ErrLimit, atLeast, depth+tc.height, l.MaxDepth)
	case tc.dirPath > l.pathBudget():
		return fmt.Errorf("%w: snapshot's directory paths add up to %s%d bytes; the limit is %d", ErrLimit, atLeast, tc.dirPath, l.pathBudget())
	}
	return nil
}

// rel returns the path of the tree being counted, elided if long, for
// messages. It is built only when asked: building every level's path
// would cost the square of a deep chain's depth.
func (c *treeCounter) rel() string {
	var b []byte
	for i, s := range c.names {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, s...)
	}
	return displayRel(elidePath(string(b)))
}

// elideKeep is how many bytes of a long path's start and end messages
// keep.
const elideKeep = 100

// elidePath returns p, or for a path longer than about 264 bytes its first
// and last elideKeep bytes around a note of how much was left out, so
// that an error about a deep entry stays one readable line.
func elidePath(p string) string {
	if len(p) <= 2*elideKeep+64 {
		return p
	}
	head, tail := elideKeep, len(p)-elideKeep
	for head > 0 && !utf8.RuneStart(p[head]) {
		head--
	}
	for tail < len(p) && !utf8.RuneStart(p[tail]) {
		tail++
	}
	return fmt.Sprintf("%s[... %d bytes ...]%s", p[:head], tail-head, p[tail:])
}

// satAdd returns a+b, or the largest uint64 if the sum overflows.
func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// satMul returns a*b, or the largest uint64 if the product overflows.
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
