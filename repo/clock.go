package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/sandsnap/sandsnap/store"
)

// clockPrefix holds probe objects, each alive for the length of one
// storeNow call. A lifecycle rule may cover it (see doc.go).
const clockPrefix = "clock/"

// storeNow returns the store's current time: the ModTime the store stamps
// on a small probe object, which is removed again. Expiry and lease ages
// are judged by this one clock, never by a host's: a sandbox's clock may
// be far off, and the ModTimes of leases and snapshots come from the store
// anyway. It costs a PUT, a HEAD and a DELETE.
func (r *Repository) storeNow(ctx context.Context) (time.Time, error) {
	name := clockPrefix + newWriterID()
	now, err := r.saveStat(ctx, name, []byte(r.opts.Host))
	// Removed even when the Stat failed; a probe left behind by a crash
	// is harmless (and a lifecycle rule on clock/ may sweep it).
	if rerr := r.st.Remove(context.WithoutCancel(ctx), name); rerr != nil {
		r.opts.Logf("removing clock probe %s: %v", name, rerr)
	}
	return now, err
}

// saveStat saves data under name and returns the ModTime the store gave
// it. A store that reports no ModTime gets the host clock, with a warning.
func (r *Repository) saveStat(ctx context.Context, name string, data []byte) (time.Time, error) {
	if err := r.st.Save(ctx, name, data, store.SaveOptions{}); err != nil {
		return time.Time{}, fmt.Errorf("repo: write %s: %w", name, err)
	}
	fi, err := r.st.Stat(ctx, name)
	if err != nil {
		return time.Time{}, fmt.Errorf("repo: stat %s: %w", name, err)
	}
	if fi.ModTime.IsZero() {
		r.opts.Logf("store gave %s no modification time; using this host's clock", name)
		return r.opts.Now().UTC(), nil
	}
	return fi.ModTime.UTC(), nil
}

// newWriterID returns a random ID for a lease, a probe or a gc run.
func newWriterID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
