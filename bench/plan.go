package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// contentKind says how a file's bytes are made.
type contentKind uint8

const (
	kindJS contentKind = iota
	kindMinJS
	kindDTS
	kindMap
	kindMD
	kindJSON
	kindLicense
	kindRandom
	kindDB
	kindLiteral // fileSpec.data
)

// fileSpec is one entry of a plan: everything needed to write it, so that
// files can be written in any order, by any worker, with the same result.
type fileSpec struct {
	rel   string // slash-separated, relative to the root
	size  int64
	mode  uint32
	kind  contentKind
	vocab uint64 // the package whose identifiers the text uses
	seed  uint64
	link  string // if set, the entry is a symlink to link
	data  string // the content of a kindLiteral file
}

// plan is a tree before it is written.
type plan struct {
	dirs  []string // parents before children
	seen  map[string]bool
	files []fileSpec
}

func newPlan() *plan { return &plan{seen: map[string]bool{".": true, "": true}} }

func (p *plan) dir(rel string) {
	if p.seen[rel] {
		return
	}
	p.dir(path.Dir(rel))
	p.seen[rel] = true
	p.dirs = append(p.dirs, rel)
}

func (p *plan) add(f fileSpec) {
	p.dir(path.Dir(f.rel))
	if f.mode == 0 {
		f.mode = 0o644
	}
	p.files = append(p.files, f)
}

// segSize is the unit of parallel writing: a file larger than this is cut
// into segments that are made from their own seeds.
const segSize = 4 << 20

// EpochUnix is the mtime base of generated trees, in seconds since 1970
// (2024-01-02T03:04:05Z): the i-th entry of a tree gets this plus a fixed
// function of i, so that trees are stat-identical.
const EpochUnix = 1704164645

// MutateEpochUnix is the mtime base of what Mutate changes, thirty days
// later: later than every mtime Generate gives.
const MutateEpochUnix = EpochUnix + 30*24*3600

func entryTime(base int64, i int) unix.Timespec {
	ns := int64(i) * 1_000_003
	return unix.Timespec{Sec: base + ns/1e9, Nsec: ns % 1e9}
}

func setTime(p string, ts unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("bench: utimes %s: %w", p, err)
	}
	return nil
}

type task struct {
	file int
	seg  int // -1: the whole file, created by the task
}

// write creates the plan under root, files in parallel, then sets every
// mtime, directories last and bottom-up.
func (p *plan) write(root string) (Stats, error) {
	var st Stats
	if err := mkdir(root); err != nil {
		return st, err
	}
	for _, d := range p.dirs {
		if err := mkdir(filepath.Join(root, filepath.FromSlash(d))); err != nil {
			return st, err
		}
		st.Dirs++
	}
	var big, small []task
	for i := range p.files {
		f := &p.files[i]
		abs := filepath.Join(root, filepath.FromSlash(f.rel))
		switch {
		case f.link != "":
			if err := os.Symlink(f.link, abs); err != nil {
				return st, fmt.Errorf("bench: %w", err)
			}
			st.Symlinks++
			continue
		case f.size <= segSize:
			small = append(small, task{file: i, seg: -1})
		default:
			if err := createSized(abs, f.size, f.mode); err != nil {
				return st, err
			}
			for s := range int((f.size + segSize - 1) / segSize) {
				big = append(big, task{file: i, seg: s})
			}
		}
		st.Files++
		st.Bytes += f.size
	}
	// Big segments first, so that the small files balance the end.
	if err := p.run(root, append(big, small...)); err != nil {
		return st, err
	}
	for i, f := range p.files {
		if err := setTime(filepath.Join(root, filepath.FromSlash(f.rel)), entryTime(EpochUnix, i)); err != nil {
			return st, err
		}
	}
	for i := len(p.dirs) - 1; i >= 0; i-- {
		if err := setTime(filepath.Join(root, filepath.FromSlash(p.dirs[i])), entryTime(EpochUnix, len(p.files)+i)); err != nil {
			return st, err
		}
	}
	return st, setTime(root, entryTime(EpochUnix, len(p.files)+len(p.dirs)))
}

// run writes the tasks on a few goroutines and returns the first error.
func (p *plan) run(root string, tasks []task) error {
	workers := min(runtime.GOMAXPROCS(0), 4)
	next := make(chan task)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error // guarded by mu
	)
	for range workers {
		wg.Go(func() {
			g := newTextGen()
			for t := range next {
				if err := p.writeTask(root, g, t); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, t := range tasks {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		next <- t
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

func (p *plan) writeTask(root string, g *textGen, t task) error {
	f := &p.files[t.file]
	abs := filepath.Join(root, filepath.FromSlash(f.rel))
	if t.seg < 0 {
		data := g.content(f, 0, int(f.size))
		return writeFile(abs, data, f.mode)
	}
	off := int64(t.seg) * segSize
	data := g.content(f, t.seg, int(min(segSize, f.size-off)))
	fd, err := os.OpenFile(abs, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = fd.WriteAt(data, off)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: write %s: %w", abs, err)
	}
	return nil
}

// content makes n bytes of segment seg of f; the result is valid until the
// next call.
func (g *textGen) content(f *fileSpec, seg, n int) []byte {
	if f.kind == kindLiteral {
		return append(g.out[:0], f.data...)
	}
	if f.kind == kindLicense {
		return license(f.seed)[:n]
	}
	if f.kind == kindDB {
		g.out = g.out[:0]
		first := int64(seg) * segSize / PageSize
		for i := range int64(n / PageSize) {
			g.out = dbPage(g, f.seed, first+i, 0)
		}
		return g.out
	}
	g.seed(f.vocab, f.seed, uint64(seg))
	switch f.kind {
	case kindJS:
		g.js(n)
	case kindMinJS:
		g.minjs(n)
	case kindDTS:
		g.dts(n)
	case kindMap:
		g.sourceMap(n)
	case kindMD:
		g.markdown(n)
	case kindJSON:
		g.json(n)
	default:
		g.random(n)
	}
	return g.out[:n]
}

func mkdir(p string) error {
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("bench: %w", err)
	}
	// Chmod: the mode must not depend on the umask.
	if err := os.Chmod(p, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func writeFile(p string, data []byte, mode uint32) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(os.FileMode(mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: write %s: %w", p, err)
	}
	return nil
}

func createSized(p string, size int64, mode uint32) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Chmod(os.FileMode(mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench: create %s: %w", p, err)
	}
	return nil
}

// lognormal draws a size around median, clamped to [lo, hi].
func lognormal(r *rand.Rand, median, sigma float64, lo, hi int64) int64 {
	v := int64(median * math.Exp(sigma*r.NormFloat64()))
	return min(max(v, lo), hi)
}

// uniqueName makes base unique among taken by adding a counter.
func uniqueName(taken map[string]bool, base, ext string) string {
	name := base + ext
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d%s", base, i, ext)
	}
	taken[name] = true
	return name
}

func joinWords(r *rand.Rand, n int, sep string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = codeWords[r.IntN(len(codeWords))]
	}
	return strings.Join(parts, sep)
}
