package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// The workload kinds Generate knows.
const (
	KindNode      = "node"
	KindRepo      = "repo"
	KindWorkspace = "workspace"
	KindDB        = "db"
	KindBigfile   = "bigfile"
)

// Names of the single files of the "db" and "bigfile" workloads.
const (
	DBName      = "app.db"
	BigfileName = "big.bin"
)

// Default sizes at Scale 1.
const (
	DefaultNodeFiles   = 27000     // files of "node" (about 240 MB)
	DefaultRepoFiles   = 2500      // source files of "repo" (plus .git)
	DefaultRepoPack    = 40 << 20  // bytes of the .git pack of "repo"
	DefaultDBSize      = 256 << 20 // bytes of "db"
	DefaultBigfileSize = 1 << 30   // bytes of "bigfile"
)

// ErrUnknownKind is returned for a workload or mutation kind that does not
// exist.
var ErrUnknownKind = errors.New("bench: unknown kind")

// Options sizes a workload. The zero value is the full default size with
// seed 0.
type Options struct {
	// Seed makes the workload; the same seed makes the same tree.
	Seed uint64
	// Scale multiplies every default size: 1 (or 0) is the full size, 0.05
	// a quick run.
	Scale float64
	// Files, if positive, replaces the file count that Scale would give
	// for "node" (DefaultNodeFiles) and "repo" (DefaultRepoFiles); for
	// "workspace" it is the total.
	Files int
	// Bytes, if positive, is the size of the "db" and "bigfile" files
	// ("db" rounds it down to whole pages).
	Bytes int64
}

// Stats counts what Generate wrote.
type Stats struct {
	Files    int   // regular files
	Dirs     int   // directories, the root excluded
	Symlinks int   // symbolic links
	Bytes    int64 // apparent size of the regular files
}

// Generate writes a workload of the given kind under dir (created if
// needed). Files that exist already are overwritten; generate into an empty
// directory to get an exact workload.
func Generate(dir string, kind string, opts Options) (Stats, error) {
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	p := newPlan()
	switch kind {
	case KindNode:
		planNode(p, "node_modules", opts.Seed, nodeScale(opts, DefaultNodeFiles), opts.Scale)
	case KindRepo:
		planRepo(p, opts.Seed, repoScale(opts, DefaultRepoFiles), opts.Scale)
	case KindWorkspace:
		files := opts.Files
		opts.Files = files * DefaultRepoFiles / (DefaultRepoFiles + DefaultNodeFiles)
		planRepo(p, opts.Seed, repoScale(opts, DefaultRepoFiles), opts.Scale)
		opts.Files = files - opts.Files
		planNode(p, "node_modules", opts.Seed+1, nodeScale(opts, DefaultNodeFiles), opts.Scale)
	case KindDB:
		size := sized(opts, DefaultDBSize) / PageSize * PageSize
		p.add(fileSpec{rel: DBName, size: max(size, PageSize), kind: kindDB, seed: opts.Seed})
	case KindBigfile:
		p.add(fileSpec{rel: BigfileName, size: max(sized(opts, DefaultBigfileSize), 1), kind: kindRandom, seed: opts.Seed})
	default:
		return Stats{}, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	return p.write(dir)
}

func nodeScale(opts Options, def int) float64 {
	if opts.Files > 0 {
		return float64(opts.Files) / float64(def)
	}
	return opts.Scale
}

func repoScale(opts Options, def int) float64 { return nodeScale(opts, def) }

func sized(opts Options, def int64) int64 {
	if opts.Bytes > 0 {
		return opts.Bytes
	}
	return int64(float64(def) * opts.Scale)
}

// newRand makes the planning randomness of one workload part.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}
