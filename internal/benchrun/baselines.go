package benchrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sandsnap/sandsnap/bench"
)

// Baseline names.
const (
	BaseStatWalk       = "find (stat walk)"
	BaseTarZstd        = "tar | zstd -T0 -3"
	BaseCp             = "cp -a"
	BaseTarX           = "zstd -d | tar -x"
	BaseTarIncremental = "tar --listed-incremental | zstd -3"
	BaseResticFull     = "restic backup (full)"
	BaseResticNoChange = "restic backup (no change)"
	BaseResticIncr     = "restic backup (incremental)"
	BaseResticRestore  = "restic restore"
)

// resticPassword is the password of the throwaway restic repository.
const resticPassword = "RESTIC_PASSWORD=snapbench"

// baselines are the baseline runs in the order they ran.
type baselines struct {
	list   []Baseline
	notes  []string // what a reader of the report must know about them
	restic string   // the restic binary, "" when not run
	skip   string   // why restic is skipped
}

func newBaselines() *baselines { return &baselines{} }

// baseline runs one baseline; a failure is recorded as Skipped, not fatal.
func (e *env) baseline(ctx context.Context, name, script string, env ...string) Baseline {
	e.logf("baseline: %s", name)
	b, err := shellRun(ctx, name, script, env)
	if err != nil {
		e.logf("%v", err)
		b = Baseline{Name: name, Command: script, Skipped: err.Error()}
	}
	e.bases.list = append(e.bases.list, b)
	return b
}

func (e *env) skipBaseline(name, why string) {
	e.bases.list = append(e.bases.list, Baseline{Name: name, Skipped: why})
}

// runBaselinesBefore runs the baselines on the unmutated workload.
func (e *env) runBaselinesBefore(ctx context.Context) {
	src := quote(e.src)
	// Warm the page cache for both sides, metadata and content; not
	// recorded. cat keeps GNU tar from skipping reads into /dev/null.
	_, _ = shellRun(ctx, "warm-up", "find "+src+" -printf '%s %T@\\n' > /dev/null && tar -C "+src+" -cf - . | cat > /dev/null", nil)
	e.baseline(ctx, BaseStatWalk, "find "+src+" -printf '%s %T@\\n' > /dev/null")
	archive := filepath.Join(e.work, "archive.tar.zst")
	b := e.baseline(ctx, BaseTarZstd, "tar -C "+src+" -cf - . | zstd -T0 -3 -q > "+quote(archive))
	e.setOutput(b.Name, fileSize(archive))
	// The outputs stay until the work folder goes at the end: on ext4,
	// creating files soon after deleting many makes the inode allocator
	// scan for recently deleted inodes (recently_deleted), which made
	// whatever ran after a deletion up to 10x slower than what ran
	// before it. Nothing is deleted between measurements.
	cp := filepath.Join(e.work, "cp")
	e.baseline(ctx, BaseCp, "cp -a "+src+" "+quote(cp))
	tarx := filepath.Join(e.work, "tarx")
	e.baseline(ctx, BaseTarX, "mkdir "+quote(tarx)+" && zstd -dc -q "+quote(archive)+" | tar -C "+quote(tarx)+" -xf -")
	_ = os.Remove(archive)
	e.resticBefore(ctx)
}

// setOutput records the output size of the last baseline named name.
func (e *env) setOutput(name string, n int64) {
	for i := len(e.bases.list) - 1; i >= 0; i-- {
		if e.bases.list[i].Name == name && e.bases.list[i].Skipped == "" {
			e.bases.list[i].OutputBytes = n
			return
		}
	}
}

// mutate prepares the mutated directory (a copy of a --dir), takes tar's
// level-0 incremental snapshot of it, and mutates it.
func (e *env) mutate(ctx context.Context) error {
	if e.mut == "" {
		e.mut = filepath.Join(e.work, "mutated")
		if err := copyTree(ctx, e.src, e.mut); err != nil {
			return err
		}
	}
	snar := filepath.Join(e.work, "level0.snar")
	if _, err := shellRun(ctx, "tar level 0", "tar --listed-incremental="+quote(snar)+" -C "+quote(e.mut)+" -cf - . | zstd -3 -q > /dev/null", nil); err != nil {
		e.logf("%v", err)
	}
	ms, err := e.mutateDir(e.mut, e.cfg.Seed+1)
	e.mutated = ms
	return err
}

// mutateDir applies the run's mutation to dir. A tree too small for the
// default "dev" counts (a small --dir) gets counts scaled to its size.
func (e *env) mutateDir(dir string, seed uint64) (bench.MutateStats, error) {
	kind := e.cfg.mutation()
	ms, err := bench.Mutate(dir, kind, bench.MutateOptions{Seed: seed})
	if errors.Is(err, bench.ErrTooSmall) && kind == bench.MutateDev {
		ms, err = bench.Mutate(dir, kind, smallDev(e.wl.Files, seed))
	}
	if err != nil {
		return ms, fmt.Errorf("mutate %s: %w", dir, err)
	}
	return ms, nil
}

// smallDev scales the "dev" mutation (20 edits, 5 deletes, 100 touches of
// existing files) to touch at most half of a tree's files.
func smallDev(files int, seed uint64) bench.MutateOptions {
	f := float64(files) / 250
	scaled := func(n int) int { return max(1, int(float64(n)*f)) }
	return bench.MutateOptions{Seed: seed, Edits: scaled(20), Deletes: scaled(5), Touches: scaled(100)}
}

// runBaselinesAfter runs the incremental baselines on the mutated workload.
func (e *env) runBaselinesAfter(ctx context.Context) {
	snar0 := filepath.Join(e.work, "level0.snar")
	snar1 := filepath.Join(e.work, "level1.snar")
	level1 := filepath.Join(e.work, "level1.tar.zst")
	if _, err := os.Stat(snar0); err != nil {
		e.skipBaseline(BaseTarIncremental, "no level-0 snapshot file")
	} else {
		b := e.baseline(ctx, BaseTarIncremental, "cp "+quote(snar0)+" "+quote(snar1)+" && tar --listed-incremental="+quote(snar1)+" -C "+quote(e.mut)+" -cf - . | zstd -3 -q > "+quote(level1))
		e.setOutput(b.Name, fileSize(level1))
	}
	e.resticAfter(ctx)
}

// resticCmd is the start of every restic command line of the run.
func (e *env) resticCmd() string {
	return quote(e.bases.restic) + " -q -r " + quote(filepath.Join(e.work, "restic-repo")) +
		" --cache-dir " + quote(filepath.Join(e.work, "restic-cache"))
}

func (e *env) findRestic() {
	switch e.cfg.Restic {
	case "off":
		e.bases.skip = "restic disabled (--restic off)"
	case "":
		p, err := exec.LookPath("restic")
		if err != nil {
			e.bases.skip = "restic not on PATH"
			return
		}
		e.bases.restic = p
	default:
		e.bases.restic = e.cfg.Restic
	}
	if e.bases.restic == "" {
		return
	}
	out, err := exec.Command(e.bases.restic, "version").Output()
	if err == nil {
		e.bases.notes = append(e.bases.notes, "restic: "+strings.TrimSpace(string(out))+
			" (repository format of that version; a temporary repository, RESTIC_PASSWORD set, its cache in the work dir).")
	}
	if e.cfg.Dir != "" {
		e.bases.notes = append(e.bases.notes, "--dir: the incremental backups run on a cp -a copy of the directory; "+
			"restic sees a new path there and reads every file again (no parent), while sandsnap gets the full snapshot as parent.")
	}
}

func (e *env) resticBefore(ctx context.Context) {
	e.findRestic()
	if e.bases.restic != "" {
		if _, err := shellRun(ctx, "restic init", e.resticCmd()+" init", []string{resticPassword}); err != nil {
			e.bases.skip = err.Error()
			e.bases.restic = ""
		}
	}
	if e.bases.restic == "" {
		for _, n := range []string{BaseResticFull, BaseResticNoChange, BaseResticRestore} {
			e.skipBaseline(n, e.bases.skip)
		}
		return
	}
	e.resticBackup(ctx, BaseResticFull, e.src)
	e.resticBackup(ctx, BaseResticNoChange, e.src)
	target := filepath.Join(e.work, "restic-restore")
	e.baseline(ctx, BaseResticRestore, e.resticCmd()+" restore latest --target "+quote(target), resticPassword)
}

func (e *env) resticAfter(ctx context.Context) {
	if e.bases.restic == "" {
		e.skipBaseline(BaseResticIncr, e.bases.skip)
		return
	}
	e.resticBackup(ctx, BaseResticIncr, e.mut)
}

// resticBackup backs dir up with restic; its output is what the backup
// added to restic's repository.
func (e *env) resticBackup(ctx context.Context, name, dir string) {
	repoDir := filepath.Join(e.work, "restic-repo")
	before := treeSize(repoDir)
	b := e.baseline(ctx, name, e.resticCmd()+" backup "+quote(dir), resticPassword)
	e.setOutput(b.Name, treeSize(repoDir)-before)
}
