package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandsnap/sandsnap"
	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store/cache"
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
	url string
	r   *repo.Repository
	// stack is r with what sandsnap.Open put under it: request counts,
	// the host cache, whether the repository was created.
	stack *sandsnap.Repository
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

// open opens the repository of --repo through sandsnap.Open, the one
// place where the store stack is assembled. Commands that move data
// (backup, restore, diff) set useCache first; the others do without the
// host cache: verify must read what the real store holds.
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
	opts := sandsnap.Options{
		Endpoint:  a.endpoint,
		CacheSize: cacheSize,
		// The default folder is a convenience: a host where it cannot be
		// made (a read-only home) works without one.
		CacheOptional: a.cachePath == "",
		Init:          repo.InitOptions{Compression: a.compression},
	}
	if a.useCache {
		opts.CacheDir = a.cacheDir()
	}
	var sr *sandsnap.Repository
	switch mode {
	case openExisting:
		sr, err = sandsnap.Open(ctx, u, opts)
	case openOrInit:
		sr, err = sandsnap.OpenOrInit(ctx, u, opts)
	case initNew:
		sr, err = sandsnap.Init(ctx, u, opts)
	}
	if err != nil {
		return nil, err
	}
	return &session{url: u, r: sr.Repository, stack: sr}, nil
}

// minPrefixLen is the fewest hex digits of an ID that a HANDLE may give.
const minPrefixLen = 8

// resolve is Repository.Resolve with the answers it does not give:
//   - an empty HANDLE is a usage error (Resolve would take it for the
//     name "", which every snapshot matches);
//   - a name that looks like an ID prefix ("20240101") is still found as
//     a name when no ID starts with it;
//   - a name whose snapshots have all expired is "expired", not "not
//     found";
//   - a hex HANDLE too short to be taken for a prefix that is no name
//     either is "too short", not "not found".
//
// They live here, on the failure path only, until repo.Resolve gives them.
func (s *session) resolve(ctx context.Context, arg string, stdin io.Reader) (chunk.ID, error) {
	if arg == "" {
		return chunk.ID{}, usageErrorf("empty HANDLE")
	}
	id, err := s.r.Resolve(ctx, arg, stdin)
	if !errors.Is(err, repo.ErrSnapshotNotFound) {
		return id, err
	}
	hs, lerr := s.r.Snapshots(ctx, repo.ListOptions{Name: arg, AllExpired: true})
	if lerr != nil {
		return id, err
	}
	for _, h := range hs { // newest first
		if !h.Expired {
			return h.ID, nil
		}
	}
	if len(hs) > 0 {
		return chunk.ID{}, fmt.Errorf("%w: all snapshots named %q (the newest, %s, at %s)",
			repo.ErrExpired, arg, hs[0].ID, formatTime(*hs[0].Expires))
	}
	if len(arg) < minPrefixLen && strings.Trim(strings.ToLower(arg), "0123456789abcdef") == "" {
		return chunk.ID{}, usageErrorf("snapshot ID prefix %q is too short: give at least %d hex digits (and no snapshot is named so)", arg, minPrefixLen)
	}
	return id, err
}

// cacheStats returns the host cache's counts, or nil without a cache.
func (s *session) cacheStats() *cache.Stats {
	if st, ok := s.stack.CacheStats(); ok {
		return &st
	}
	return nil
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
	c := s.stack.Requests()
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
