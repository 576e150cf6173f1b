package faulty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// ErrInjected is the error of every injected failure.
var ErrInjected = errors.New("faulty: injected fault")

// Method names one method of store.Store.
type Method int

// The methods of store.Store.
const (
	Save Method = iota + 1
	Load
	Stat
	List
	Remove
)

var methodNames = [...]string{Save: "Save", Load: "Load", Stat: "Stat", List: "List", Remove: "Remove"}

func (m Method) String() string {
	if m > 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Kind is a kind of fault; see the package comment.
type Kind int

// The kinds of fault.
const (
	None Kind = iota
	FailBefore
	FailAfter
	Delay
	TruncateRead
)

var kindNames = [...]string{None: "none", FailBefore: "fail-before", FailAfter: "fail-after", Delay: "delay", TruncateRead: "truncate-read"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Options configures a Store. The zero value injects nothing.
type Options struct {
	// Rate is the probability, per call, of a random fault.
	Rate float64
	// Seed seeds the generator of random faults.
	Seed uint64
	// Methods are the methods that get random faults; nil means all.
	Methods []Method
	// Kinds are the kinds of random faults; nil means all.
	Kinds []Kind
	// MaxDelay bounds Delay faults; 0 means 5ms.
	MaxDelay time.Duration
	// Logf, if set, reports each injected fault.
	Logf func(format string, args ...any)
	// Inject, if set, is asked first on every call (name is List's prefix
	// for List); a Kind other than None is injected on that call.
	Inject func(m Method, name string) Kind
}

// Counts are the numbers of faults injected, by kind.
type Counts struct {
	FailBefore   int64 `json:"fail_before"`
	FailAfter    int64 `json:"fail_after"`
	Delay        int64 `json:"delay"`
	TruncateRead int64 `json:"truncate_read"`
}

// Store is a store.Store that injects faults into an inner store. It is
// safe for concurrent use if the inner store is.
type Store struct {
	inner store.Store
	opts  Options

	mu  sync.Mutex // guards rng
	rng *rand.Rand

	counts [len(kindNames)]atomic.Int64 // by Kind
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Invalidator = (*Store)(nil)
)

// New returns a Store that injects faults into inner's calls per opts.
func New(inner store.Store, opts Options) *Store {
	if opts.Kinds == nil {
		opts.Kinds = []Kind{FailBefore, FailAfter, Delay, TruncateRead}
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 5 * time.Millisecond
	}
	return &Store{
		inner: inner,
		opts:  opts,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
}

// Injected returns the numbers of faults injected so far.
func (s *Store) Injected() Counts {
	return Counts{
		FailBefore:   s.counts[FailBefore].Load(),
		FailAfter:    s.counts[FailAfter].Load(),
		Delay:        s.counts[Delay].Load(),
		TruncateRead: s.counts[TruncateRead].Load(),
	}
}

// fault is one decision: its kind and the random amounts it needs.
type fault struct {
	kind    Kind
	delay   time.Duration
	truncAt int64
}

// decide picks the fault for one call.
func (s *Store) decide(ctx context.Context, m Method, name string) fault {
	if ctx.Err() != nil {
		return fault{}
	}
	var f fault
	if s.opts.Inject != nil {
		f.kind = s.opts.Inject(m, name)
	}
	s.mu.Lock()
	if f.kind == None && s.opts.Rate > 0 && len(s.opts.Kinds) > 0 &&
		(s.opts.Methods == nil || slices.Contains(s.opts.Methods, m)) &&
		s.rng.Float64() < s.opts.Rate {
		f.kind = s.opts.Kinds[s.rng.IntN(len(s.opts.Kinds))]
	}
	if f.kind == Delay {
		f.delay = time.Duration(s.rng.Int64N(int64(s.opts.MaxDelay))) + 1
	}
	if f.kind == TruncateRead {
		f.truncAt = s.rng.Int64N(64 << 10)
	}
	s.mu.Unlock()
	if f.kind == TruncateRead && m != Load {
		f.kind = FailBefore
	}
	if f.kind <= None || int(f.kind) >= len(kindNames) {
		return fault{}
	}
	s.counts[f.kind].Add(1)
	if s.opts.Logf != nil {
		s.opts.Logf("faulty: %s %q: injecting %s", m, name, f.kind)
	}
	return f
}

func injected(m Method, name string, k Kind) error {
	return fmt.Errorf("faulty: %s %q: %s: %w", m, name, k, ErrInjected)
}

// call runs apply under fault f: FailBefore skips it, Delay waits first,
// FailAfter replaces its success with an error.
func (s *Store) call(ctx context.Context, m Method, name string, f fault, apply func() error) error {
	switch f.kind {
	case FailBefore:
		return injected(m, name, f.kind)
	case Delay:
		t := time.NewTimer(f.delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	err := apply()
	if err == nil && f.kind == FailAfter {
		return injected(m, name, f.kind)
	}
	return err
}

// Save saves through the inner store, maybe with a fault.
func (s *Store) Save(ctx context.Context, name string, data []byte, opts store.SaveOptions) error {
	f := s.decide(ctx, Save, name)
	return s.call(ctx, Save, name, f, func() error {
		return s.inner.Save(ctx, name, data, opts)
	})
}

// Load loads through the inner store, maybe with a fault.
func (s *Store) Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error {
	f := s.decide(ctx, Load, name)
	return s.call(ctx, Load, name, f, func() error {
		if f.kind != TruncateRead {
			return s.inner.Load(ctx, name, offset, length, fn)
		}
		return s.inner.Load(ctx, name, offset, length, func(r io.Reader) error {
			return fn(&truncReader{r: r, left: f.truncAt})
		})
	})
}

// truncReader yields at most left bytes of r and then, or at r's end,
// io.ErrUnexpectedEOF: it never ends cleanly.
type truncReader struct {
	r    io.Reader
	left int64
}

func (t *truncReader) Read(p []byte) (int, error) {
	if t.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.r.Read(p)
	t.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Stat stats through the inner store, maybe with a fault.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	f := s.decide(ctx, Stat, name)
	var fi store.Info
	err := s.call(ctx, Stat, name, f, func() error {
		var err error
		fi, err = s.inner.Stat(ctx, name)
		return err
	})
	if err != nil {
		return store.Info{}, err
	}
	return fi, nil
}

// List lists through the inner store, maybe with a fault.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	f := s.decide(ctx, List, prefix)
	return s.call(ctx, List, prefix, f, func() error {
		return s.inner.List(ctx, prefix, fn)
	})
}

// Remove removes through the inner store, maybe with a fault.
func (s *Store) Remove(ctx context.Context, name string) error {
	f := s.decide(ctx, Remove, name)
	return s.call(ctx, Remove, name, f, func() error {
		return s.inner.Remove(ctx, name)
	})
}

// Invalidate forwards to the inner store (store.Invalidate) without a
// fault: it drops a local copy, which is not a request that can get lost.
func (s *Store) Invalidate(ctx context.Context, name string) error {
	return store.Invalidate(ctx, s.inner, name)
}
