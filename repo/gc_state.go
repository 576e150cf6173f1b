package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/store"
)

// gcStateName is the collector's state object; gcStateVersion its format.
const (
	gcStateName    = "gc/state"
	gcStateVersion = 1
)

// ErrConcurrentGC: another gc changed gc/state while this one ran; this
// one stopped (what it did before is safe: see doc.go).
var ErrConcurrentGC = errors.New("repo: another gc is running")

// gcState is the content of gc/state. Every change is written with
// If-Match on the version read, so two collectors never both win.
type gcState struct {
	Version int `json:"version"`
	// Generation counts the changes writers must notice: it grows when
	// packs are condemned and when condemned packs are deleted.
	Generation uint64 `json:"generation"`
	// Run is the random ID of the gc run that wrote this version, and
	// Written its store time; together they make every version's bytes
	// unique, which is how a run recognizes its own write.
	Run       string         `json:"run"`
	Written   time.Time      `json:"written"`
	Condemned []condemnedSet `json:"condemned"`
	Seq       uint64         `json:"seq"` // counts writes
}

// condemnedSet is the packs one gc run condemned. Its life: condemned
// (Sealed false: its leases are being listed), sealed (Leases recorded),
// deleting (the run that deletes it has decided; some packs may be gone),
// deleted (packs and their index entries are gone; kept one more run so
// that long-running writers learn of it), then dropped.
type condemnedSet struct {
	Generation uint64     `json:"generation"` // the generation that condemned it
	At         time.Time  `json:"at"`         // store time
	Packs      []chunk.ID `json:"packs"`
	Sealed     bool       `json:"sealed"`
	Leases     []leaseRef `json:"leases"` // the leases that existed when it was condemned
	Deleting   bool       `json:"deleting,omitempty"`
	Deleted    bool       `json:"deleted,omitempty"`

	candidate bool // this run deletes it (not stored)
}

// leaseRef names a lease and the ModTime it had when gc recorded it.
type leaseRef struct {
	Name    string    `json:"name"`
	ModTime time.Time `json:"mod_time"`
}

// condemnedPacks returns every pack in every set, whatever its phase:
// writers treat all of them as absent.
func (s *gcState) condemnedPacks() map[chunk.ID]bool {
	out := make(map[chunk.ID]bool)
	for _, c := range s.Condemned {
		for _, p := range c.Packs {
			out[p] = true
		}
	}
	return out
}

// stateRef is a gc/state version as read: its ETag ("" when there is no
// gc/state yet, so the first write must create it).
type stateRef struct {
	etag string
}

// readGCState returns gc/state, or the zero state (generation 0) if gc
// never ran. It stats before it loads, so the ETag is never newer than the
// content: a write based on it fails rather than clobbers.
func (r *Repository) readGCState(ctx context.Context) (gcState, stateRef, error) {
	fi, err := r.st.Stat(ctx, gcStateName)
	if errors.Is(err, store.ErrNotFound) {
		return gcState{Version: gcStateVersion}, stateRef{}, nil
	}
	if err != nil {
		return gcState{}, stateRef{}, fmt.Errorf("repo: stat %s: %w", gcStateName, err)
	}
	data, err := store.LoadAll(ctx, r.st, gcStateName, 0, 0)
	if err != nil {
		return gcState{}, stateRef{}, fmt.Errorf("repo: read %s: %w", gcStateName, err)
	}
	s, err := decodeGCState(data)
	if err != nil {
		return gcState{}, stateRef{}, err
	}
	return s, stateRef{etag: fi.ETag}, nil
}

func decodeGCState(data []byte) (gcState, error) {
	var s gcState
	if err := json.Unmarshal(data, &s); err != nil {
		return gcState{}, fmt.Errorf("repo: %s is not valid: %v", gcStateName, err)
	}
	if s.Version < 1 || s.Version > gcStateVersion {
		return gcState{}, fmt.Errorf("%w: %s has version %d, this sandsnap reads %d", ErrVersion, gcStateName, s.Version, gcStateVersion)
	}
	return s, nil
}

// writeGCState replaces the version ref with s and returns the new
// version's ref. It fails with ErrConcurrentGC if gc/state changed since
// ref was read. A retried Save whose first attempt took effect fails its
// precondition although the write is ours: the content tells.
func (r *Repository) writeGCState(ctx context.Context, ref stateRef, s *gcState) (stateRef, error) {
	s.Version = gcStateVersion
	s.Seq++
	if s.Condemned == nil {
		s.Condemned = []condemnedSet{} // "condemned": [], not null
	}
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return stateRef{}, err
	}
	opts := store.SaveOptions{IfMatch: ref.etag, IfNoneMatch: ref.etag == ""}
	err = r.st.Save(ctx, gcStateName, data, opts)
	if err != nil && !errors.Is(err, store.ErrPrecondition) && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrNotFound) {
		return stateRef{}, fmt.Errorf("repo: write %s: %w", gcStateName, err)
	}
	// Stat, then load: if the content loaded is ours, the ETag statted
	// before it is ours too (nobody else writes these bytes).
	fi, serr := r.st.Stat(ctx, gcStateName)
	if serr != nil && !errors.Is(serr, store.ErrNotFound) {
		return stateRef{}, fmt.Errorf("repo: stat %s: %w", gcStateName, serr)
	}
	cur, lerr := store.LoadAll(ctx, r.st, gcStateName, 0, 0)
	if lerr != nil && !errors.Is(lerr, store.ErrNotFound) {
		return stateRef{}, fmt.Errorf("repo: read %s: %w", gcStateName, lerr)
	}
	if serr != nil || lerr != nil || !bytes.Equal(cur, data) {
		if err == nil {
			err = errors.New("overwritten")
		}
		return stateRef{}, fmt.Errorf("%w: %s changed under this gc (%v)", ErrConcurrentGC, gcStateName, err)
	}
	return stateRef{etag: fi.ETag}, nil
}
