package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// ErrAmbiguous marks a conditional Save that failed with store.ErrExists or
// store.ErrPrecondition on a retry, after an earlier attempt failed in a
// way that may have applied it (see the package comment).
var ErrAmbiguous = errors.New("retry: an earlier attempt may have been applied")

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// MaxAttempts is the number of attempts per call, the first included;
	// 0 means 5, 1 means no retries.
	MaxAttempts int
	// BaseDelay is the backoff cap before the first retry; it doubles per
	// retry up to MaxDelay, and each wait is uniform in [0, cap) (full
	// jitter). 0 means 100ms; MaxDelay 0 means 10s.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Logf, if set, reports each retry.
	Logf func(format string, args ...any)
	// Sleep waits d or until ctx is done, returning ctx's error then. nil
	// means a timer; tests pass a function that records d and returns.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Store is a store.Store that retries the transient failures of an inner
// store. It is safe for concurrent use if the inner store is.
type Store struct {
	inner store.Store
	opts  Options
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Invalidator = (*Store)(nil)
)

// New returns a Store that retries inner's calls according to opts.
func New(inner store.Store, opts Options) *Store {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 10 * time.Second
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &Store{inner: inner, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// permanent are the errors that no retry can change.
var permanent = []error{
	store.ErrNotFound, store.ErrExists, store.ErrPrecondition, store.ErrInvalidRange,
	store.ErrInvalidName, store.ErrPermanent, context.Canceled, context.DeadlineExceeded,
}

// Retryable reports whether err is transient, that is whether another
// attempt of the same call might succeed. nil is not retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	for _, p := range permanent {
		if errors.Is(err, p) {
			return false
		}
	}
	return true
}

// backoff returns the wait before retry number i (0-based).
func (s *Store) backoff(i int) time.Duration {
	limit := s.opts.MaxDelay
	if i < 32 && s.opts.BaseDelay<<i < limit && s.opts.BaseDelay<<i > 0 {
		limit = s.opts.BaseDelay << i
	}
	return rand.N(limit)
}

// do runs attempt until it succeeds, fails for good, or the attempts or
// the context run out. attempt reports whether its error may be retried;
// tried tells it whether an earlier attempt failed.
func (s *Store) do(ctx context.Context, op, name string, attempt func(tried bool) (retry bool, err error)) error {
	for i := 0; ; i++ {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("retry: %s %q: %w", op, name, cerr)
		}
		retry, err := attempt(i > 0)
		if err == nil || !retry || ctx.Err() != nil {
			return err
		}
		if i+1 >= s.opts.MaxAttempts {
			return fmt.Errorf("retry: %s %q: giving up after %d attempts: %w", op, name, i+1, err)
		}
		d := s.backoff(i)
		if s.opts.Logf != nil {
			s.opts.Logf("retry: %s %q: attempt %d failed: %v; retrying in %v", op, name, i+1, err, d)
		}
		if serr := s.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("retry: %s %q: %w (after attempt %d failed: %w)", op, name, serr, i+1, err)
		}
	}
}

// Save stores data, resending it after transient failures.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	return s.do(ctx, "save", name, func(tried bool) (bool, error) {
		err := s.inner.Save(ctx, name, data, opts)
		if tried && ((opts.IfNoneMatch && errors.Is(err, store.ErrExists)) ||
			(opts.IfMatch != "" && errors.Is(err, store.ErrPrecondition))) {
			return false, fmt.Errorf("%w: %w", ErrAmbiguous, err)
		}
		return Retryable(err), err
	})
}

// Load reads a range of name, calling fn again after a failed read.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	return s.do(ctx, "load", name, func(bool) (bool, error) {
		var fnErr error
		var readErr error
		err := s.inner.Load(ctx, name, offset, length, func(r io.Reader) error {
			wr := &watchReader{r: r}
			fnErr = fn(wr)
			readErr = wr.err
			return fnErr
		})
		if fnErr != nil && readErr == nil {
			return false, err // fn's own error
		}
		return Retryable(err), err
	})
}

// watchReader remembers the first error other than io.EOF of its reader.
type watchReader struct {
	r   io.Reader
	err error
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}

// Stat returns name's Info.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	var fi store.Info
	err := s.do(ctx, "stat", name, func(bool) (bool, error) {
		var err error
		fi, err = s.inner.Stat(ctx, name)
		return Retryable(err), err
	})
	return fi, err
}

// List lists prefix, resuming after the last name delivered to fn when it
// has to retry.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	var last string
	delivered := false
	return s.do(ctx, "list", prefix, func(bool) (bool, error) {
		var fnErr error
		err := s.inner.List(ctx, prefix, func(fi store.Info) error {
			if delivered && fi.Name <= last {
				return nil
			}
			if fnErr = fn(fi); fnErr != nil {
				return fnErr
			}
			last, delivered = fi.Name, true
			return nil
		})
		if fnErr != nil {
			return false, err
		}
		return Retryable(err), err
	})
}

// Remove deletes name.
func (s *Store) Remove(ctx context.Context, name string) error {
	return s.do(ctx, "remove", name, func(bool) (bool, error) {
		err := s.inner.Remove(ctx, name)
		return Retryable(err), err
	})
}

// Invalidate forwards to the inner store (store.Invalidate) once: dropping
// a local copy is not a request that fails transiently.
func (s *Store) Invalidate(ctx context.Context, name string) error {
	return store.Invalidate(ctx, s.inner, name)
}
