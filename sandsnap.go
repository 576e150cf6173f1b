package sandsnap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/counting"
	"github.com/sandsnap/sandsnap/store/location"
)

// Options choose how a location is opened. The zero value opens the
// repository with no host cache.
type Options struct {
	// Endpoint overrides the S3 API endpoint that the environment gives
	// (s3://) or that the account implies (r2://); see store/location.
	Endpoint string

	// CacheDir is the host cache folder, shared by every repository and
	// process on the host: packs and index deltas fetched from the store
	// are kept there, each verified against its name before it is kept,
	// and so is the files cache of every directory backed up or restored
	// (which makes a fork's next backup read only what changed). "" means
	// no host cache and no files cache.
	CacheDir string
	// CacheSize bounds the cache's pack copies in bytes (default
	// cache.DefaultMaxBytes).
	CacheSize int64
	// CacheOptional makes a CacheDir that cannot be used (a read-only
	// home) no error: the repository is opened without a cache. The CLI
	// sets it for its default folder, not for one the user named.
	CacheOptional bool

	// Logf receives retries and warnings; nil discards them.
	Logf func(format string, args ...any)
	// Repo tunes the repository (workers, uploads, host name ...). Its
	// CacheDir is set from CacheDir when the cache is in use, and its Logf
	// from Logf when unset.
	Repo repo.Options
	// Init chooses a new repository's parameters for Init. (OpenOrInit
	// creates with the defaults: it goes through repo.OpenOrInit, whose
	// checks before creating must not be bypassed.)
	Init repo.InitOptions
}

// Repository is an open repository with the stack the CLI uses under it:
// the location's store (remote stores retried patiently), a request
// counter, and the host cache. Every method of repo.Repository is
// available on it.
type Repository struct {
	*repo.Repository
	// Location is the location it was opened at, as given.
	Location string
	// Created is set when Init, or OpenOrInit finding no repository,
	// created it. (Two OpenOrInit racing on an empty location may both
	// see it set; one config wins and both use it.)
	Created bool

	counts *counting.Store
	cache  *cache.Store
}

// Requests returns the store requests made so far through this
// Repository, counted below the host cache: what the real store served.
func (r *Repository) Requests() counting.Stats { return r.counts.Stats() }

// CacheStats returns the host cache's counts, and false without a cache.
func (r *Repository) CacheStats() (cache.Stats, bool) {
	if r.cache == nil {
		return cache.Stats{}, false
	}
	return r.cache.Stats(), true
}

// mode says whether Open may create what it does not find.
type mode int

const (
	openExisting mode = iota
	openOrInit
	initNew
)

// Open opens the repository at location: a local folder, file:///path,
// s3://BUCKET/PREFIX or r2://ACCOUNT_ID/BUCKET/PREFIX (see store/location).
// It creates nothing. Without a repository there (a missing folder
// included) the error wraps repo.ErrNoRepository; a malformed location
// wraps location.ErrInvalid. ctx bounds the opening only.
func Open(ctx context.Context, loc string, opts Options) (*Repository, error) {
	return open(ctx, loc, opts, openExisting)
}

// OpenOrInit opens the repository at location, first creating a missing
// local folder and the repository when there is none (Created is then
// set). A location holding repository objects but no config is refused
// by repo.OpenOrInit rather than re-created.
func OpenOrInit(ctx context.Context, loc string, opts Options) (*Repository, error) {
	return open(ctx, loc, opts, openOrInit)
}

// Init creates a repository at location with opts.Init's parameters
// (making a missing local folder) and opens it. If one exists the error
// wraps store.ErrExists.
func Init(ctx context.Context, loc string, opts Options) (*Repository, error) {
	return open(ctx, loc, opts, initNew)
}

func open(ctx context.Context, loc string, opts Options, m mode) (*Repository, error) {
	st, err := openStore(ctx, loc, opts, m)
	if err != nil {
		return nil, err
	}
	out := &Repository{Location: loc, counts: counting.New(st)}
	top, ropts := store.Store(out.counts), opts.Repo
	if ropts.Logf == nil {
		ropts.Logf = opts.Logf
	}
	if opts.CacheDir != "" {
		c, err := cache.New(out.counts, opts.CacheDir, cache.Options{
			MaxBytes: opts.CacheSize, VerifyReader: repo.VerifyObjectReader, Logf: opts.Logf})
		switch {
		case err == nil:
			out.cache, top, ropts.CacheDir = c, c, opts.CacheDir
		case !opts.CacheOptional:
			return nil, fmt.Errorf("host cache %s: %w", opts.CacheDir, err)
		}
	}
	out.Repository, out.Created, err = openRepo(ctx, top, loc, opts.Init, ropts, m)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// openStore turns loc into a store; only modes that may create a
// repository make a missing local folder.
func openStore(ctx context.Context, loc string, opts Options, m mode) (store.Store, error) {
	lopts := location.Options{Endpoint: opts.Endpoint, Logf: opts.Logf}
	if m != openExisting {
		return location.Create(ctx, loc, lopts)
	}
	st, err := location.Open(ctx, loc, lopts)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &locError{msg: "no sandsnap repository at " + loc + " (no such folder)", err: repo.ErrNoRepository}
	}
	return st, err
}

// openRepo opens or creates the repository in st and reports whether it
// created it.
func openRepo(ctx context.Context, st store.Store, loc string, init repo.InitOptions, ropts repo.Options, m mode) (*repo.Repository, bool, error) {
	switch m {
	case initNew:
		r, err := repo.Init(ctx, st, init, ropts)
		if errors.Is(err, store.ErrExists) {
			return nil, false, &locError{msg: "a sandsnap repository already exists at " + loc, err: err}
		}
		return r, err == nil, err
	case openOrInit:
		r, err := repo.Open(ctx, st, ropts)
		if !errors.Is(err, repo.ErrNoRepository) {
			return r, false, err
		}
		// repo.OpenOrInit, not Init: it refuses a store that holds
		// repository objects without a config, and lets a concurrent
		// creator win cleanly.
		r, err = repo.OpenOrInit(ctx, st, ropts)
		return r, err == nil, err
	}
	r, err := repo.Open(ctx, st, ropts)
	if errors.Is(err, repo.ErrNoRepository) {
		// The cause's own text ("repo: no sandsnap repository here (no
		// config object)") does not say where; the rest of it may say why.
		detail := strings.TrimPrefix(err.Error(), repo.ErrNoRepository.Error())
		return nil, false, &locError{msg: "no sandsnap repository at " + loc + detail, err: err}
	}
	return r, false, err
}

// locError is an error about the repository at a location, with a message
// of its own that names the location, and the cause kept for errors.Is.
type locError struct {
	msg string
	err error
}

func (e *locError) Error() string { return e.msg }
func (e *locError) Unwrap() error { return e.err }
