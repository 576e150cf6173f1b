package benchrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandsnap/sandsnap/bench"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/local"
	"github.com/sandsnap/sandsnap/store/location"
)

// Workload describes the data of a run.
type Workload struct {
	Kind string `json:"kind"`
	// Source is "generated", "npm" or "dir".
	Source          string  `json:"source"`
	Path            string  `json:"path"`
	Files           int     `json:"files"`
	Dirs            int     `json:"dirs"`
	Symlinks        int     `json:"symlinks"`
	Bytes           int64   `json:"bytes"`
	GenerateSeconds float64 `json:"generate_seconds"`
}

// env is the state that the scenarios of one run share: the directories,
// the repository, and what earlier scenarios produced.
type env struct {
	cfg  Config
	logf func(format string, args ...any)
	work string // the run's temporary directory
	// hostDir is the host's cache folder (repo.Options.CacheDir: the
	// files caches), "" with cfg.NoCache.
	hostDir string
	src     string // what the full backup reads
	mut     string // what the mutations change: src, or a copy of cfg.Dir
	wl      Workload

	// repoURL is the repository's location for the sandsnap processes;
	// bin is the sandsnap binary ("" runs the fork-N scenarios in this
	// process).
	repoURL string
	bin     string

	raw    store.Store
	st     *counting.Store
	r      *repo.Repository
	run    runner
	remote bool

	full       repo.Handle    // the full backup
	restored   string         // the full snapshot restored into an empty dir
	oneRestore counting.Stats // store traffic of that one restore
	logical    int64          // logical bytes of every live snapshot
	expiring   expiring       // the snapshots made with a TTL
	mutated    bench.MutateStats
	bases      *baselines
}

// newEnv makes the work directory, the workload and the repository. The
// returned cleanup removes what the run created unless cfg.Keep.
func newEnv(ctx context.Context, cfg Config, logf func(string, ...any)) (*env, func(), error) {
	work, err := os.MkdirTemp(cfg.WorkDir, "snapbench-")
	if err != nil {
		return nil, func() {}, fmt.Errorf("work dir: %w", err)
	}
	e := &env{cfg: cfg, logf: logf, work: work, bases: newBaselines()}
	if !cfg.NoCache {
		e.hostDir = filepath.Join(work, "host")
	}
	cleanup := func() {
		if cfg.Keep {
			logf("kept %s", work)
			return
		}
		if e.remote && e.raw != nil {
			e.removeRepo(context.WithoutCancel(ctx))
		}
		_ = os.RemoveAll(work)
	}
	if err := e.makeWorkload(ctx); err != nil {
		return nil, cleanup, err
	}
	if err := e.openRepo(ctx); err != nil {
		return nil, cleanup, err
	}
	return e, cleanup, nil
}

func (e *env) makeWorkload(ctx context.Context) error {
	start := time.Now()
	e.wl = Workload{Kind: e.cfg.Workload, Source: "generated"}
	switch {
	case e.cfg.Dir != "":
		abs, err := filepath.Abs(e.cfg.Dir)
		if err != nil {
			return fmt.Errorf("--dir %s: %w", e.cfg.Dir, err)
		}
		e.src, e.wl.Source, e.wl.Kind = abs, "dir", "dir"
		e.countTree()
		return nil
	case e.cfg.NPM:
		dir := filepath.Join(e.work, "npm")
		err := npmInstall(ctx, dir)
		if err == nil {
			e.src, e.mut, e.wl.Source, e.wl.Kind = dir, dir, "npm", bench.KindNode
			e.countTree()
			e.wl.GenerateSeconds = time.Since(start).Seconds()
			return nil
		}
		e.logf("npm install failed, using the generated node workload instead: %v", err)
		e.cfg.Workload, e.wl.Kind = bench.KindNode, bench.KindNode
	}
	e.src = filepath.Join(e.work, "src")
	e.mut = e.src
	st, err := bench.Generate(e.src, e.cfg.Workload, bench.Options{Seed: e.cfg.Seed, Scale: e.cfg.Scale, Files: e.cfg.Files})
	if err != nil {
		return fmt.Errorf("generate %s: %w", e.cfg.Workload, err)
	}
	e.wl.Path = e.src
	e.wl.Files, e.wl.Dirs, e.wl.Symlinks, e.wl.Bytes = st.Files, st.Dirs, st.Symlinks, st.Bytes
	e.wl.GenerateSeconds = time.Since(start).Seconds()
	return nil
}

// countTree fills the workload's counts by walking src.
func (e *env) countTree() {
	e.wl.Path = e.src
	_ = filepath.WalkDir(e.src, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || p == e.src:
		case d.IsDir():
			e.wl.Dirs++
		case d.Type()&fs.ModeSymlink != 0:
			e.wl.Symlinks++
		case d.Type().IsRegular():
			e.wl.Files++
			if fi, err := d.Info(); err == nil {
				e.wl.Bytes += fi.Size()
			}
		}
		return nil
	})
}

func (e *env) openRepo(ctx context.Context) error {
	var err error
	if e.cfg.Repo == "" {
		e.repoURL = filepath.Join(e.work, "repo")
		e.raw, err = local.Create(e.repoURL)
	} else {
		loc := strings.TrimRight(e.cfg.Repo, "/") + "/snapbench-" + time.Now().UTC().Format("20060102T150405")
		e.repoURL, e.remote = loc, true
		e.raw, err = location.Create(ctx, loc, location.Options{Logf: e.logf})
		e.logf("repository %s", loc)
	}
	if err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	e.st = counting.New(e.raw)
	e.run = runner{st: e.st}
	e.r, err = repo.Init(ctx, e.st, repo.InitOptions{}, repo.Options{CacheDir: e.hostDir, Logf: e.logf})
	if err != nil {
		return fmt.Errorf("repository init: %w", err)
	}
	return nil
}

// repoSize sums the repository's objects, listing the uncounted store so
// that the listing is not charged to any scenario.
func (e *env) repoSize(ctx context.Context) (bytes, objects int64, err error) {
	err = e.raw.List(ctx, "", func(info store.Info) error {
		bytes += info.Size
		objects++
		return nil
	})
	return bytes, objects, err
}

// removeRepo deletes every object of a remote run's repository.
func (e *env) removeRepo(ctx context.Context) {
	var names []string
	_ = e.raw.List(ctx, "", func(info store.Info) error {
		names = append(names, info.Name)
		return nil
	})
	var errs []error
	for _, n := range names {
		errs = append(errs, e.raw.Remove(ctx, n))
	}
	if err := errors.Join(errs...); err != nil {
		e.logf("removing the benchmark repository: %v", err)
	}
}
