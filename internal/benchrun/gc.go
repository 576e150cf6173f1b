package benchrun

import (
	"context"
	"fmt"
	"time"

	"github.com/sandsnap/sandsnap/repo"
)

// forkTTL is the TTL of the incremental and fork-N backups, short-lived as
// a sandbox's forks are, so that the gc scenario has garbage to collect.
const forkTTL = 2 * time.Second

// expiryMargin is waited beyond the last TTL, as the store's clock, not
// this host's, decides expiry.
const expiryMargin = 2 * time.Second

// expiring tracks the snapshots made with forkTTL.
type expiring struct {
	bytes int64     // their logical bytes
	last  time.Time // when the last one was committed
}

func (x *expiring) add(bytes int64) {
	x.bytes += bytes
	x.last = time.Now()
}

// runGC waits (unmeasured) until the short-lived snapshots have expired,
// then measures two gc runs: the first removes the expired snapshots and
// condemns what only they reached, the second deletes it (no writer runs
// in between, so no lease holds it).
func runGC(ctx context.Context, e *env) (Result, error) {
	if e.expiring.last.IsZero() {
		return Result{}, fmt.Errorf("no snapshot with a TTL to expire")
	}
	if err := sleep(ctx, time.Until(e.expiring.last.Add(forkTTL+expiryMargin))); err != nil {
		return Result{}, err
	}
	before, _, err := e.repoSize(ctx)
	if err != nil {
		return Result{}, err
	}
	reps := make([]repo.GCReport, 2)
	m, err := e.run.measure(ctx, func(ctx context.Context) (work, error) {
		for i := range reps {
			var err error
			if reps[i], err = e.r.GC(ctx, repo.GCOptions{}); err != nil {
				return work{}, fmt.Errorf("gc run %d: %w", i+1, err)
			}
		}
		return work{bytes: before}, nil
	})
	if err != nil {
		return Result{}, err
	}
	e.logical -= e.expiring.bytes
	e.expiring = expiring{}
	return Result{Metrics: m, GC: reps}, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
