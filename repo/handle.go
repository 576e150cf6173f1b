package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/store"
)

// Handle is the small value that names a snapshot outside the repository
// (kept in KV by a sandbox orchestrator, printed by `backup --json`). Only
// ID is needed to restore; the rest describes the backup.
type Handle struct {
	ID      chunk.ID   `json:"id"`
	Name    string     `json:"name"`
	Dir     string     `json:"dir"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires"`
	Parent  *chunk.ID  `json:"parent"`
	// Expired is set by Snapshots and Handle when Expires has passed by
	// the store's clock (a listing with AllExpired shows such snapshots).
	Expired bool  `json:"expired,omitempty"`
	Stats   Stats `json:"stats"`
}

// Stats describe one backup. The entry counts come from the snapshot; the
// rest is known only to the process that made the backup.
type Stats struct {
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Other    uint64 `json:"other"`
	Bytes    uint64 `json:"bytes"`
	BlobsNew uint64 `json:"blobs_new"`
	BytesNew uint64 `json:"bytes_new"`

	FilesRead     uint64    `json:"files_read"`
	BytesRead     uint64    `json:"bytes_read"`
	FilesReused   uint64    `json:"files_reused"`
	PacksUploaded uint64    `json:"packs_uploaded"`
	BytesUploaded uint64    `json:"bytes_uploaded"`
	Skipped       []Skipped `json:"skipped,omitempty"`
	Changed       []string  `json:"changed,omitempty"`
	Seconds       float64   `json:"seconds,omitempty"`
	// Requests holds store request counts when the caller measures them
	// (the CLI wraps its store in store/counting); repo leaves it nil.
	Requests map[string]int64 `json:"requests,omitempty"`
}

// Skipped is one entry a backup or restore left out, and why: a socket or
// device, a file unreadable under SkipUnreadable, an xattr or owner a
// restore could not or would not set.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (s Skipped) String() string { return s.Path + ": " + s.Reason }

// Progress is updated with atomic adds while a backup or restore runs, so
// a caller can poll it from another goroutine to draw a progress bar.
type Progress struct {
	Files      atomic.Int64
	Bytes      atomic.Int64
	TotalFiles atomic.Int64
	TotalBytes atomic.Int64
}

func handleOf(id chunk.ID, s *manifest.Snapshot) Handle {
	return Handle{
		ID: id, Name: s.Name, Dir: s.Dir, Created: s.Created, Expires: s.Expires, Parent: s.Parent,
		Stats: Stats{
			Files: s.Summary.Files, Dirs: s.Summary.Dirs, Symlinks: s.Summary.Symlinks, Other: s.Summary.Other,
			Bytes: s.Summary.Bytes, BlobsNew: s.Summary.BlobsNew, BytesNew: s.Summary.BytesNew,
		},
	}
}

// Snapshot loads and verifies the snapshot object id.
func (r *Repository) Snapshot(ctx context.Context, id chunk.ID) (*manifest.Snapshot, error) {
	name := snapshotPrefix + id.String()
	data, err := store.LoadAll(ctx, r.st, name, 0, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrSnapshotNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("repo: read %s: %w", name, err)
	}
	if chunk.Hash(data) != id {
		return nil, fmt.Errorf("repo: snapshot %s: %w: content does not match its name", name, manifest.ErrCorrupt)
	}
	s, err := manifest.DecodeSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("repo: snapshot %s: %w", name, err)
	}
	return s, nil
}

// Handle returns the handle of snapshot id.
func (r *Repository) Handle(ctx context.Context, id chunk.ID) (Handle, error) {
	s, err := r.Snapshot(ctx, id)
	if err != nil {
		return Handle{}, err
	}
	h := handleOf(id, s)
	if s.Expires != nil {
		h.Expired = !r.storeNowOrHost(ctx).Before(*s.Expires)
	}
	return h, nil
}

// storeNowOrHost is the store's time, or the host's when the store refuses
// the probe (a read-only token), with a note in the log.
func (r *Repository) storeNowOrHost(ctx context.Context) time.Time {
	t, err := r.storeNow(ctx)
	if err != nil {
		r.opts.Logf("judging expiry by this host's clock: %v", err)
		return r.opts.Now()
	}
	return t
}

// ListOptions filter Snapshots.
type ListOptions struct {
	Name       string // only snapshots with this name
	AllExpired bool   // include expired snapshots
	// OnSkip, if set, is called on the calling goroutine for each snapshot
	// object that the listing leaves out because it cannot be read or
	// decoded (unreadable, corrupt, written by a newer sandsnap); err
	// names the object. Nil logs each with Options.Logf. Either way the
	// listing goes on: one bad object does not hide the others.
	OnSkip func(object string, err error)
}

// skip reports a snapshot object left out of a listing.
func (o ListOptions) skip(r *Repository, object string, err error) {
	if o.OnSkip != nil {
		o.OnSkip(object, err)
		return
	}
	r.opts.Logf("listing without %s: %v", object, err)
}

// Snapshots returns the handles of the repository's snapshots, newest
// first. A snapshot object that cannot be read or decoded is left out and
// reported to opts.OnSkip; only a failed listing of the objects (or the
// end of ctx) fails the call.
func (r *Repository) Snapshots(ctx context.Context, opts ListOptions) ([]Handle, error) {
	var ids []chunk.ID
	err := r.st.List(ctx, snapshotPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, snapshotPrefix))
		if err != nil {
			r.opts.Logf("ignoring stray object %s", fi.Name)
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repo: list %s: %w", snapshotPrefix, err)
	}
	// Expiry is judged by the store's clock, read once per listing and
	// only when there is something to hide; a store that refuses the
	// probe (a read-only token) gets the host's clock.
	var now time.Time
	clock := func() time.Time {
		if now.IsZero() {
			now = r.storeNowOrHost(ctx)
		}
		return now
	}
	out := make([]Handle, 0, len(ids))
	for _, id := range ids {
		s, err := r.Snapshot(ctx, id)
		switch {
		case errors.Is(err, ErrSnapshotNotFound):
			continue // removed while we listed
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil:
			opts.skip(r, snapshotPrefix+id.String(), err)
			continue
		}
		if opts.Name != "" && s.Name != opts.Name {
			continue
		}
		h := handleOf(id, s)
		if s.Expires != nil && !clock().Before(*s.Expires) {
			if !opts.AllExpired {
				continue
			}
			h.Expired = true
		}
		out = append(out, h)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Resolve turns what a user typed into a snapshot ID: a full ID, a unique
// ID prefix of at least 8 hex digits, "-" (a handle's JSON on stdin), a
// path to a file holding a handle's JSON, or a snapshot name (the newest
// live snapshot with that name, among those that can be read: snapshot
// objects that cannot are logged with Options.Logf and passed over).
func (r *Repository) Resolve(ctx context.Context, arg string, stdin io.Reader) (chunk.ID, error) {
	if id, err := chunk.ParseID(arg); err == nil {
		return id, nil
	}
	if arg == "-" {
		return parseHandleJSON(stdin, "stdin")
	}
	if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		f, err := os.Open(arg)
		if err != nil {
			return chunk.ID{}, fmt.Errorf("repo: handle file %s: %w", arg, err)
		}
		defer f.Close()
		return parseHandleJSON(f, arg)
	}
	if len(arg) >= 8 && isHex(arg) {
		return r.resolvePrefix(ctx, arg)
	}
	hs, err := r.Snapshots(ctx, ListOptions{Name: arg})
	if err != nil {
		return chunk.ID{}, err
	}
	if len(hs) == 0 {
		return chunk.ID{}, fmt.Errorf("%w: no snapshot, handle file or live name %q", ErrSnapshotNotFound, arg)
	}
	return hs[0].ID, nil
}

func (r *Repository) resolvePrefix(ctx context.Context, prefix string) (chunk.ID, error) {
	var found []chunk.ID
	err := r.st.List(ctx, snapshotPrefix+strings.ToLower(prefix), func(fi store.Info) error {
		if id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, snapshotPrefix)); err == nil {
			found = append(found, id)
		}
		return nil
	})
	switch {
	case err != nil:
		return chunk.ID{}, fmt.Errorf("repo: list %s: %w", snapshotPrefix, err)
	case len(found) == 0:
		return chunk.ID{}, fmt.Errorf("%w: no snapshot ID starts with %q", ErrSnapshotNotFound, prefix)
	case len(found) > 1:
		return chunk.ID{}, fmt.Errorf("%w: %q matches %d snapshots", ErrAmbiguous, prefix, len(found))
	}
	return found[0], nil
}

func parseHandleJSON(rd io.Reader, what string) (chunk.ID, error) {
	data, err := io.ReadAll(io.LimitReader(rd, 1<<20))
	if err != nil {
		return chunk.ID{}, fmt.Errorf("repo: read handle from %s: %w", what, err)
	}
	var h struct {
		ID *chunk.ID `json:"id"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return chunk.ID{}, fmt.Errorf("repo: handle in %s is not valid JSON: %w", what, err)
	}
	if h.ID == nil {
		return chunk.ID{}, fmt.Errorf("repo: handle in %s has no \"id\"", what)
	}
	return *h.ID, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
