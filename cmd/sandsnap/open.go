package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/location"
)

// openMode says how a command reaches its repository.
type openMode int

const (
	openExisting openMode = iota // the repository must exist
	openOrInit                   // create the location and repository if needed
	initNew                      // create the repository; fail if one exists
)

// session is an open repository whose store requests are counted.
type session struct {
	url   string
	r     *repo.Repository
	count *counting.Store
	cache *cache.Store // nil without a host cache
}

// cacheDir returns the host cache folder to use, or "" for none: --cache,
// else <user cache folder>/sandsnap. Packs and index deltas are named by
// their hash, so one folder serves every repository on the host. A host
// without a user cache folder (no $HOME) just runs without a cache.
func (a *app) cacheDir() string {
	switch {
	case a.noCache:
		return ""
	case a.cachePath != "":
		return a.cachePath
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "sandsnap")
}

// url returns --repo, or $SANDSNAP_REPO when the flag is not given.
func (a *app) url() (string, error) {
	u := a.repoURL
	if u == "" {
		u = os.Getenv("SANDSNAP_REPO")
	}
	if u == "" {
		return "", usageErrorf("no repository: give --repo or set SANDSNAP_REPO")
	}
	return u, nil
}

func (a *app) open(ctx context.Context, mode openMode) (*session, error) {
	u, err := a.url()
	if err != nil {
		return nil, err
	}
	// Flags are checked before the location is touched, so that a typo
	// creates nothing.
	cacheSize, err := parseSize(a.cacheSize)
	if err != nil {
		return nil, usageErrorf("--cache-size: %v", err)
	}
	lopts := location.Options{Endpoint: a.endpoint}
	var st store.Store
	if mode == openExisting {
		st, err = location.Open(ctx, u, lopts)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no sandsnap repository at %s", u)
		}
	} else {
		st, err = location.Create(ctx, u, lopts)
	}
	if err != nil {
		return nil, err
	}
	// The counts are taken below the cache: they show what the real
	// store served.
	cs := counting.New(st)
	var (
		top   store.Store = cs
		cst   *cache.Store
		ropts repo.Options
	)
	if dir := a.cacheDir(); dir != "" && a.useCache {
		c, err := cache.New(cs, dir, cache.Options{MaxBytes: cacheSize, VerifyReader: repo.VerifyObjectReader})
		switch {
		case err == nil:
			cst, top, ropts.CacheDir = c, c, dir
		case a.cachePath != "":
			return nil, fmt.Errorf("host cache: %w", err)
		}
		// The default folder is a convenience: a host where it cannot be
		// made (a read-only home) works without one.
	}
	var r *repo.Repository
	switch mode {
	case openExisting:
		r, err = repo.Open(ctx, top, ropts)
	case openOrInit:
		r, err = repo.OpenOrInit(ctx, top, ropts)
	case initNew:
		r, err = repo.Init(ctx, top, repo.InitOptions{Compression: a.compression}, ropts)
	}
	switch {
	case errors.Is(err, repo.ErrNoRepository):
		return nil, fmt.Errorf("no sandsnap repository at %s", u)
	case mode == initNew && errors.Is(err, store.ErrExists):
		return nil, fmt.Errorf("a sandsnap repository already exists at %s", u)
	case err != nil:
		return nil, err
	}
	return &session{url: u, r: r, count: cs, cache: cst}, nil
}

// cacheStats returns the host cache's counts, or nil without a cache.
func (s *session) cacheStats() *cache.Stats {
	if s.cache == nil {
		return nil
	}
	st := s.cache.Stats()
	return &st
}

// parseSize parses a byte count: a whole number with an optional unit,
// decimal (KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB; K, M, G, T
// alone are binary too), case-insensitive.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	units := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}
	mult, ok := units[strings.TrimSpace(t[i:])]
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 4GiB or 500MB)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// requests returns the store requests made so far, in the shape of
// repo.Stats.Requests.
func (s *session) requests() map[string]int64 {
	c := s.count.Stats()
	return map[string]int64{
		"put":        c.Puts,
		"get":        c.Gets,
		"head":       c.Heads,
		"list":       c.Lists,
		"delete":     c.Deletes,
		"bytes_up":   c.BytesUp,
		"bytes_down": c.BytesDown,
	}
}
