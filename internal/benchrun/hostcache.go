package benchrun

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/cache"
)

// openCached opens the repository again over a host cache of packs and
// index deltas in dir, as another sandbox process on this host would: its
// own cache.Store over the shared folder, with the request counter below
// the cache so that only what reaches the real store is counted.
func (e *env) openCached(ctx context.Context, dir string) (*repo.Repository, *cache.Store, error) {
	cs, err := cache.New(e.st, dir, cache.Options{VerifyReader: repo.VerifyObjectReader, Logf: e.logf})
	if err != nil {
		return nil, nil, fmt.Errorf("host cache %s: %w", dir, err)
	}
	r, err := repo.Open(ctx, cs, repo.Options{CacheDir: e.hostDir, Logf: e.logf})
	if err != nil {
		return nil, nil, fmt.Errorf("open over the host cache: %w", err)
	}
	return r, cs, nil
}

// runForkHostCache restores the full snapshot N times at once, each
// restore through its own repository and cache.Store over one empty
// folder: as N sandsnap processes with --cache, or, without the binary, in
// this process with the repositories opened before the measurement.
func runForkHostCache(ctx context.Context, e *env) (Result, error) {
	n := e.cfg.Forks
	objects := filepath.Join(e.work, "hostcache-objects")
	if e.bin != "" {
		args := make([][]string, n)
		for i := range n {
			dir := filepath.Join(e.work, fmt.Sprintf("fork-cached-%d", i))
			args[i] = append(cacheArgs(objects), "restore", e.full.ID.String(), dir, "--json")
		}
		m, outs, err := e.measureProcs(ctx, args)
		if err != nil {
			return Result{}, fmt.Errorf("fork restores over the host cache: %w", err)
		}
		return Result{Metrics: m, Snapshot: e.full.ID.String(), Cache: sumCache(outs), Processes: n}, nil
	}
	repos := make([]*repo.Repository, n)
	caches := make([]*cache.Store, n)
	for i := range n {
		var err error
		if repos[i], caches[i], err = e.openCached(ctx, objects); err != nil {
			return Result{}, err
		}
	}
	stats := make([]repo.RestoreStats, n)
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		g, ctx := errgroup.WithContext(ctx)
		for i := range n {
			g.Go(func() error {
				var err error
				dir := filepath.Join(e.work, fmt.Sprintf("fork-cached-%d", i))
				stats[i], err = repos[i].Restore(ctx, e.full.ID, dir, repo.RestoreOptions{})
				return err
			})
		}
		err := g.Wait()
		return sumRestores(stats), err
	})
	if err != nil {
		return Result{}, fmt.Errorf("fork restores over the host cache: %w", err)
	}
	var cst cache.Stats
	for _, c := range caches {
		s := c.Stats()
		cst.Hits += s.Hits
		cst.Misses += s.Misses
		cst.Fills += s.Fills
		cst.BytesFilled += s.BytesFilled
		cst.Evictions += s.Evictions
	}
	return Result{Metrics: m, Snapshot: e.full.ID.String(), Cache: &cst}, nil
}

func sumRestores(stats []repo.RestoreStats) work {
	var w work
	for _, s := range stats {
		w.files += int64(s.Files)
		w.bytes += int64(s.Bytes)
	}
	return w
}
