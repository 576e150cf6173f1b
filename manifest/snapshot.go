package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sandsnap/sandsnap/chunk"
)

// ErrBadSnapshotName is returned for a snapshot name that ValidSnapshotName
// refuses.
var ErrBadSnapshotName = errors.New("manifest: invalid snapshot name")

// MaxSnapshotNameLen is the longest snapshot name, in bytes.
const MaxSnapshotNameLen = 256

// MaxSnapshotSize is the largest snapshot object DecodeSnapshot reads. Real
// ones are well under 1 KiB; the cap keeps a hostile object from costing
// memory.
const MaxSnapshotSize = 1 << 20

// Summary is what a snapshot records about its backup.
type Summary struct {
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Other    uint64 `json:"other"`     // FIFOs
	Bytes    uint64 `json:"bytes"`     // sum of file sizes
	BlobsNew uint64 `json:"blobs_new"` // blobs this backup added to the repository
	BytesNew uint64 `json:"bytes_new"` // plain bytes of those blobs
	Skipped  uint64 `json:"skipped"`   // entries skipped (sockets, devices, unreadable with --skip-unreadable)
}

// Snapshot commits one backup. It is stored as JSON (with "version") under
// snapshots/<ID>, where ID is chunk.Hash of the encoded bytes.
type Snapshot struct {
	Version int        `json:"version"`
	Tree    chunk.ID   `json:"tree"`
	Parent  *chunk.ID  `json:"parent,omitempty"`
	Name    string     `json:"name,omitempty"`
	Dir     string     `json:"dir"`
	Host    string     `json:"host,omitempty"`
	Writer  string     `json:"writer,omitempty"` // writer (lease) id
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Summary Summary    `json:"summary"`
}

// ValidSnapshotName reports whether name can name a snapshot
// (ErrBadSnapshotName otherwise): valid UTF-8, at most 256 bytes, no
// control characters (unicode.IsControl), so that it prints safely on one
// line of a listing. The empty name is valid (an unnamed snapshot).
func ValidSnapshotName(name string) error {
	if len(name) > MaxSnapshotNameLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBadSnapshotName, len(name), MaxSnapshotNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrBadSnapshotName, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q contains control character %U", ErrBadSnapshotName, name, r)
		}
	}
	return nil
}

// validate checks s. The version is checked by the callers, which report
// it differently.
func (s *Snapshot) validate() error {
	if s.Tree.IsZero() {
		return fmt.Errorf("%w: snapshot without a root tree", ErrInvalid)
	}
	if s.Parent != nil && s.Parent.IsZero() {
		return fmt.Errorf("%w: snapshot parent is the zero ID", ErrInvalid)
	}
	if err := ValidSnapshotName(s.Name); err != nil {
		return err
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD, so such a
	// string would not survive a round trip: refuse it instead.
	for _, f := range []struct{ name, v string }{{"dir", s.Dir}, {"host", s.Host}, {"writer", s.Writer}} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: snapshot %s %q is not valid UTF-8", ErrInvalid, f.name, f.v)
		}
	}
	if s.Created.IsZero() {
		return fmt.Errorf("%w: snapshot without a creation time", ErrInvalid)
	}
	if err := validTime("created", s.Created); err != nil {
		return err
	}
	if s.Expires != nil {
		if err := validTime("expires", *s.Expires); err != nil {
			return err
		}
	}
	if s.Expires != nil && !s.Expires.After(s.Created) {
		return fmt.Errorf("%w: snapshot expires %v, not after its creation %v", ErrInvalid, *s.Expires, s.Created)
	}
	return nil
}

// validTime refuses times that RFC 3339 cannot write in UTC (years
// outside 0..9999), which encoding/json would fail on.
func validTime(field string, t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%w: snapshot %s time %v outside years 0..9999", ErrInvalid, field, t)
	}
	return nil
}

// canonical returns a copy of s with its times in UTC, without monotonic
// clock readings, so that encoding/json writes the same text for the same
// instant wherever and however it was taken.
func (s *Snapshot) canonical() Snapshot {
	c := *s
	c.Created = s.Created.UTC()
	if s.Expires != nil {
		e := s.Expires.UTC()
		c.Expires = &e
	}
	if s.Parent != nil {
		p := *s.Parent
		c.Parent = &p
	}
	return c
}

// Encode returns the snapshot's canonical JSON (validated: version, name
// length <= 256 and no control characters, tree set): encoding/json of the
// struct, fields in struct order, times in UTC to the nanosecond (RFC 3339,
// trailing zero digits dropped), no trailing newline.
func (s *Snapshot) Encode() ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil snapshot", ErrInvalid)
	}
	if s.Version != Version {
		return nil, fmt.Errorf("%w: snapshot version %d, want %d", ErrVersion, s.Version, Version)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	c := s.canonical()
	b, err := json.Marshal(&c)
	if err != nil {
		// validate leaves nothing that json.Marshal refuses; keep the
		// error anyway rather than trust that.
		return nil, fmt.Errorf("%w: encode snapshot: %v", ErrInvalid, err)
	}
	return b, nil
}

// DecodeSnapshot decodes and validates a snapshot object. Unknown fields
// are ignored, so that a writer of the same version may add optional ones;
// a version other than Version is ErrVersion; everything else that Encode
// would refuse, and input over MaxSnapshotSize, is ErrCorrupt (wrapping
// ErrBadSnapshotName or ErrInvalid where one applies). Times come back in
// UTC.
func DecodeSnapshot(data []byte) (*Snapshot, error) {
	if len(data) > MaxSnapshotSize {
		return nil, fmt.Errorf("%w: snapshot of %d bytes, limit %d", ErrCorrupt, len(data), MaxSnapshotSize)
	}
	// The version first, alone: a later version may change the fields, and
	// must be reported as such rather than as a type error.
	var v struct {
		Version *json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	if v.Version == nil {
		return nil, fmt.Errorf("%w: snapshot without a version", ErrCorrupt)
	}
	var version int
	if err := json.Unmarshal(*v.Version, &version); err != nil {
		return nil, fmt.Errorf("%w: snapshot version %s", ErrVersion, *v.Version)
	}
	if version != Version {
		return nil, fmt.Errorf("%w: snapshot version %d, want %d", ErrVersion, version, Version)
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	c := s.canonical()
	return &c, nil
}
