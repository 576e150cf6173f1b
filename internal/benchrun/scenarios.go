package benchrun

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/cache"
)

// Scenario IDs: stable keys for JSON consumers and targets.
const (
	ScenarioFull        = "full"
	ScenarioRestore     = "restore"
	ScenarioNoChange    = "nochange"
	ScenarioIncremental = "incremental"
	ScenarioInPlace     = "inplace"
	ScenarioForkRestore = "fork-restore"
	ScenarioForkBackup  = "fork-backup"
	ScenarioHostCache   = "fork-hostcache"
	ScenarioGC          = "gc"
)

// naNotYet is the NA of scenarios whose repository feature is missing.
const naNotYet = "n/a (not implemented yet)"

// Result is one scenario's outcome.
type Result struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	What string `json:"what"`
	// NA, when set, says why the scenario has no numbers.
	NA string `json:"na,omitempty"`
	Metrics
	Snapshot string             `json:"snapshot,omitempty"`
	Backup   *repo.Stats        `json:"backup,omitempty"`
	Restore  *repo.RestoreStats `json:"restore,omitempty"`
	Cache    *cache.Stats       `json:"cache,omitempty"` // the host cache's counts, summed
	// Processes, when set, is the number of sandsnap processes the
	// scenario ran (the fork-N scenarios); PeakRSS is then the largest
	// one's.
	Processes int             `json:"processes,omitempty"`
	GC        []repo.GCReport `json:"gc,omitempty"`
}

// scenario is one entry of the scenario list. run measures with e.run and
// returns the result without the repository's size, which the caller adds.
type scenario struct {
	id, name, what string
	na             string
	run            func(ctx context.Context, e *env) (Result, error)
}

// beforeMutation are the scenarios on the workload as generated; to add
// one, append it here or to afterMutation.
func beforeMutation() []scenario {
	return []scenario{
		{id: ScenarioFull, name: "full backup", what: "back up the workload into an empty repository", run: runFull},
		{id: ScenarioRestore, name: "restore (empty dir)", what: "restore the full snapshot into a new directory", run: runRestoreEmpty},
		{id: ScenarioNoChange, name: "no-change backup", what: "back up the restored copy with the full snapshot as parent (a fork that changed nothing)", run: runNoChange},
	}
}

// afterMutation are the scenarios that follow the mutation of the workload.
func afterMutation(cfg Config) []scenario {
	forks := cfg.Forks
	hostCache := scenario{id: ScenarioHostCache, name: fmt.Sprintf("fork-%d via host cache", forks),
		what: fmt.Sprintf("%d concurrent restores, each through its own store/cache over one host folder", forks), run: runForkHostCache}
	if cfg.NoCache {
		hostCache.na = "n/a (--no-cache)"
	}
	return []scenario{
		{id: ScenarioIncremental, name: "incremental backup", what: "back up the mutated workload with the full snapshot as parent", run: runIncremental},
		{id: ScenarioInPlace, name: "restore in place", what: "restore the full snapshot onto the mutated workload", run: runInPlace},
		{id: ScenarioForkRestore, name: fmt.Sprintf("fork-%d restore", forks), what: fmt.Sprintf("%d concurrent restores of the full snapshot into new directories", forks), run: runForkRestore},
		hostCache,
		{id: ScenarioForkBackup, name: fmt.Sprintf("fork-%d backup", forks), what: fmt.Sprintf("%d concurrent backups of the forks, each after its own mutation, with the full snapshot as parent", forks), run: runForkBackup},
		{id: ScenarioGC, name: "gc after expiry", what: "two gc runs once the incremental and fork snapshots (TTL " + forkTTL.String() + ") have expired", run: runGC},
	}
}

// backupMeasured backs dir up and measures it.
func (e *env) backupMeasured(ctx context.Context, dir string, opts repo.BackupOptions) (Result, repo.Handle, error) {
	var h repo.Handle
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		var err error
		h, err = e.r.Backup(ctx, dir, opts)
		return work{int64(h.Stats.Files), int64(h.Stats.Bytes)}, err
	})
	if err != nil {
		return Result{}, h, fmt.Errorf("backup %s: %w", dir, err)
	}
	e.logical += int64(h.Stats.Bytes)
	if opts.TTL > 0 {
		e.expiring.add(int64(h.Stats.Bytes))
	}
	return Result{Metrics: m, Snapshot: h.ID.String(), Backup: &h.Stats}, h, nil
}

// restoreMeasured restores the full snapshot into dir and measures it.
func (e *env) restoreMeasured(ctx context.Context, dir string) (Result, error) {
	var rs repo.RestoreStats
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		var err error
		rs, err = e.r.Restore(ctx, e.full.ID, dir, repo.RestoreOptions{})
		return work{int64(rs.Files), int64(rs.Bytes)}, err
	})
	if err != nil {
		return Result{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	return Result{Metrics: m, Snapshot: e.full.ID.String(), Restore: &rs}, nil
}

func runFull(ctx context.Context, e *env) (Result, error) {
	res, h, err := e.backupMeasured(ctx, e.src, repo.BackupOptions{Name: "snapbench-full"})
	e.full = h
	return res, err
}

func runRestoreEmpty(ctx context.Context, e *env) (Result, error) {
	e.restored = filepath.Join(e.work, "restored")
	res, err := e.restoreMeasured(ctx, e.restored)
	e.oneRestore = res.Store
	return res, err
}

func runNoChange(ctx context.Context, e *env) (Result, error) {
	res, _, err := e.backupMeasured(ctx, e.restored, repo.BackupOptions{Name: "snapbench-nochange", Parent: e.full.ID})
	return res, err
}

func runIncremental(ctx context.Context, e *env) (Result, error) {
	opts := repo.BackupOptions{Name: "snapbench-incremental", Parent: e.full.ID, TTL: forkTTL}
	res, _, err := e.backupMeasured(ctx, e.mut, opts)
	return res, err
}

func runInPlace(ctx context.Context, e *env) (Result, error) {
	return e.restoreMeasured(ctx, e.mut)
}

func (e *env) forkDir(i int) string { return filepath.Join(e.work, fmt.Sprintf("fork-%d", i)) }

func runForkRestore(ctx context.Context, e *env) (Result, error) {
	n := e.cfg.Forks
	if e.bin != "" {
		args := make([][]string, n)
		for i := range n {
			// No host cache: every process fetches from the store as on
			// a fresh host, as the in-process restores do.
			args[i] = append(cacheArgs(""), "restore", e.full.ID.String(), e.forkDir(i), "--json")
		}
		m, _, err := e.measureProcs(ctx, args)
		if err != nil {
			return Result{}, fmt.Errorf("fork restores: %w", err)
		}
		return Result{Metrics: m, Snapshot: e.full.ID.String(), Processes: n}, nil
	}
	stats := make([]repo.RestoreStats, n)
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		g, ctx := errgroup.WithContext(ctx)
		for i := range n {
			g.Go(func() error {
				var err error
				stats[i], err = e.r.Restore(ctx, e.full.ID, e.forkDir(i), repo.RestoreOptions{})
				return err
			})
		}
		err := g.Wait()
		return sumRestores(stats), err
	})
	if err != nil {
		return Result{}, fmt.Errorf("fork restores: %w", err)
	}
	return Result{Metrics: m, Snapshot: e.full.ID.String()}, nil
}

func runForkBackup(ctx context.Context, e *env) (Result, error) {
	n := e.cfg.Forks
	for i := range n {
		if _, err := e.mutateDir(e.forkDir(i), e.cfg.Seed+100+uint64(i)); err != nil {
			return Result{}, err
		}
	}
	if e.bin != "" {
		return e.forkBackupProcs(ctx)
	}
	hs := make([]repo.Handle, n)
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		g, ctx := errgroup.WithContext(ctx)
		for i := range n {
			g.Go(func() error {
				var err error
				opts := repo.BackupOptions{Name: fmt.Sprintf("snapbench-fork-%d", i), Parent: e.full.ID, TTL: forkTTL}
				hs[i], err = e.r.Backup(ctx, e.forkDir(i), opts)
				return err
			})
		}
		err := g.Wait()
		var w work
		for _, h := range hs {
			w.files += int64(h.Stats.Files)
			w.bytes += int64(h.Stats.Bytes)
		}
		return w, err
	})
	if err != nil {
		return Result{}, fmt.Errorf("fork backups: %w", err)
	}
	e.logical += m.Bytes
	e.expiring.add(m.Bytes)
	return Result{Metrics: m}, nil
}

// forkBackupProcs is runForkBackup as N sandsnap processes. They use the
// host's cache folder (files caches and, as the CLI has no way to keep one
// without the other, an object cache), or none with --no-cache.
func (e *env) forkBackupProcs(ctx context.Context) (Result, error) {
	n := e.cfg.Forks
	args := make([][]string, n)
	for i := range n {
		args[i] = append(cacheArgs(e.hostDir), "backup", e.forkDir(i), "--parent", e.full.ID.String(),
			"--name", fmt.Sprintf("snapbench-fork-%d", i), "--ttl", forkTTL.String(), "--json")
	}
	m, outs, err := e.measureProcs(ctx, args)
	if err != nil {
		return Result{}, fmt.Errorf("fork backups: %w", err)
	}
	e.logical += m.Bytes
	e.expiring.add(m.Bytes)
	return Result{Metrics: m, Cache: sumCache(outs), Processes: n}, nil
}

// runScenario runs s and completes its result with the repository's size.
func (e *env) runScenario(ctx context.Context, s scenario) (Result, error) {
	if s.na != "" {
		return Result{ID: s.id, Name: s.name, What: s.what, NA: s.na}, nil
	}
	e.logf("scenario: %s", s.name)
	res, err := s.run(ctx, e)
	if err != nil {
		return Result{}, fmt.Errorf("scenario %s: %w", s.name, err)
	}
	res.ID, res.Name, res.What = s.id, s.name, s.what
	res.RepoBytes, res.RepoObjects, err = e.repoSize(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("scenario %s: repository size: %w", s.name, err)
	}
	if res.RepoBytes > 0 {
		res.Dedup = float64(e.logical) / float64(res.RepoBytes)
	}
	return res, nil
}
