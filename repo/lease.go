package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// leasePrefix holds one object per running writer (backup or restore).
const leasePrefix = "leases/"

// DefaultLeaseTTL is how long a lease lives without renewal before gc
// takes its writer for dead. Writers renew every third of it.
const DefaultLeaseTTL = 15 * time.Minute

// ErrLeaseLapsed: a writer could not renew its lease for longer than
// its TTL, so gc may have deleted packs it relies on; it commits nothing.
var ErrLeaseLapsed = errors.New("repo: lease lapsed")

// leaseBody is a lease object's content. Only the object's name and
// ModTime matter to gc (and TTLSeconds when gc's own TTL is shorter);
// the rest tells a human whose lease it is.
type leaseBody struct {
	Writer     string    `json:"writer"`
	Kind       string    `json:"kind"` // "backup", "restore" or "fs" (an open SnapshotFS)
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"` // host clock, informational
	TTLSeconds float64   `json:"ttl_seconds"`
}

// lease is a running writer's lease. It is renewed (saved again) every
// TTL/3 by a goroutine of its own until release.
type lease struct {
	r    *Repository
	name string
	data []byte
	ttl  time.Duration

	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex // guards the fields below
	// last is when the last successful write was sent (host monotonic
	// clock): the store stamped it no earlier. lastStore is the store's
	// stamp of that write.
	last, lastStore time.Time
	lapsed          bool
}

// acquireLease writes a new lease and starts renewing it; it returns the
// store's time of the write. The caller must call release.
func (r *Repository) acquireLease(ctx context.Context, kind string) (*lease, time.Time, error) {
	id := newWriterID()
	data, err := json.Marshal(leaseBody{
		Writer: id, Kind: kind, Host: r.opts.Host, PID: os.Getpid(),
		Started: r.opts.Now().UTC(), TTLSeconds: r.opts.LeaseTTL.Seconds(),
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	l := &lease{r: r, name: leasePrefix + id, data: data, ttl: r.opts.LeaseTTL, done: make(chan struct{})}
	now, err := l.renew(ctx)
	if err != nil {
		close(l.done)
		l.cancel = func() {}
		return nil, time.Time{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	go l.loop(rctx)
	return l, now, nil
}

// loop renews the lease every TTL/3 until ctx ends; a failed renewal is
// logged and tried again at the next tick (renew notes a lapse).
func (l *lease) loop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(max(l.ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := l.renew(ctx); err != nil && ctx.Err() == nil {
				l.r.opts.Logf("renewing lease %s: %v", l.name, err)
			}
		}
	}
}

// renew writes the lease again and returns the store's time of the write.
// It notes a lapse when more than 5/6 of the TTL passed since the last
// successful write, by this host's clock (since it was sent: the margin
// covers request latency) or by the store's (the stamps gc compares).
func (l *lease) renew(ctx context.Context) (time.Time, error) {
	sent := time.Now()
	now, err := l.r.saveStat(ctx, l.name, l.data)
	if err != nil {
		return now, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.ttl - l.ttl/6
	if !l.last.IsZero() && (time.Since(l.last) > limit || now.Sub(l.lastStore) > limit) {
		l.lapsed = true
	}
	l.last = sent
	if now.After(l.lastStore) {
		l.lastStore = now
	}
	return now, nil
}

// check renews the lease once more and fails with ErrLeaseLapsed if it
// lapsed at any time; it returns the store's time. A writer calls it just
// before it commits.
func (l *lease) check(ctx context.Context) (time.Time, error) {
	now, err := l.renew(ctx)
	if err != nil {
		return now, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lapsed {
		return now, fmt.Errorf("%w: %s was not renewed for longer than its TTL (%s); gc may have deleted packs this writer used", ErrLeaseLapsed, l.name, l.ttl)
	}
	return now, nil
}

// release stops the renewals and removes the lease, even when ctx has
// ended (a failed writer ends its lease too; one that crashes leaves it to
// expire).
func (l *lease) release(ctx context.Context) {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := l.r.st.Remove(rctx, l.name); err != nil {
		l.r.opts.Logf("removing lease %s: %v (it expires by itself)", l.name, err)
	}
}

// leaseInfo is a lease as gc sees it.
type leaseInfo struct {
	name    string
	modTime time.Time
	expired bool
}

// listLeases returns the repository's leases, judged against now (store
// time): a lease older than the TTL is expired, unless its own body
// states a longer TTL (a writer configured differently from this gc).
func (r *Repository) listLeases(ctx context.Context, now time.Time) (map[string]leaseInfo, error) {
	out := make(map[string]leaseInfo)
	err := r.st.List(ctx, leasePrefix, func(fi store.Info) error {
		if strings.HasSuffix(fi.Name, "/") {
			return nil
		}
		out[fi.Name] = leaseInfo{name: fi.Name, modTime: fi.ModTime, expired: now.Sub(fi.ModTime) > r.opts.LeaseTTL}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list %s: %w", leasePrefix, err)
	}
	for name, li := range out {
		if !li.expired {
			continue
		}
		data, err := store.LoadAll(ctx, r.st, name, 0, 0)
		if errors.Is(err, store.ErrNotFound) {
			delete(out, name) // ended meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("repo: read lease %s: %w", name, err)
		}
		var b leaseBody
		if json.Unmarshal(data, &b) == nil && b.TTLSeconds > 0 {
			ttl := time.Duration(b.TTLSeconds * float64(time.Second))
			li.expired = now.Sub(li.modTime) > ttl
			out[name] = li
		}
	}
	return out, nil
}
