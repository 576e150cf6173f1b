package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them with the object's name, so
// callers test with errors.Is and print the error as it is.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("store: object not found")
	// ErrExists: a create-only Save (SaveOptions.IfNoneMatch) found the
	// object already present.
	ErrExists = errors.New("store: object already exists")
	// ErrPrecondition: a Save with SaveOptions.IfMatch found another version.
	ErrPrecondition = errors.New("store: precondition failed")
	// ErrInvalidRange: a Load asked for bytes past the object's end.
	ErrInvalidRange = errors.New("store: invalid range")
	// ErrInvalidName: the name is empty, absolute, or holds "." or ".."
	// elements or a NUL byte.
	ErrInvalidName = errors.New("store: invalid object name")
	// ErrPermanent marks errors that no retry can fix (bad credentials, a
	// missing bucket); retry wrappers give up at once.
	ErrPermanent = errors.New("store: permanent error")
)

// Info describes one stored object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time // set by the store, not by the writer's clock
	ETag    string    // opaque version tag for SaveOptions.IfMatch
}

// SaveOptions makes a Save conditional. The zero value overwrites
// unconditionally.
type SaveOptions struct {
	// IfNoneMatch creates the object only if it does not exist yet;
	// otherwise Save fails with ErrExists and changes nothing.
	IfNoneMatch bool
	// IfMatch replaces the object only if its current ETag equals this
	// value; otherwise Save fails with ErrPrecondition (or ErrNotFound).
	IfMatch string
}

// Store is the narrow interface between a repository and where its bytes
// live. Every method checks ctx before it starts work and is safe for
// concurrent use. A cancelled context never leaves a partial object
// visible: an object is either saved whole or not at all.
type Store interface {
	// Save stores data under name. data is not retained or modified, so a
	// retry can resend it.
	Save(ctx context.Context, name string, data []byte, opts SaveOptions) error

	// Load calls fn once with a reader over length bytes of name starting
	// at offset; length 0 means "to the end". The reader is closed when fn
	// returns. A retrying wrapper may call fn again after a failed read, so
	// fn must start over each time. A range past the end of the object is
	// ErrInvalidRange; a short object read is an error, never silent.
	Load(ctx context.Context, name string, offset, length int64, fn func(io.Reader) error) error

	// Stat returns the object's Info, or ErrNotFound.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for each object whose name starts with prefix, in
	// lexical order of names, once per object; it stops and returns fn's
	// error if fn fails.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Remove deletes name. Removing an object that does not exist is not
	// an error (S3 cannot tell the two apart).
	Remove(ctx context.Context, name string) error
}

// LoadAll reads length bytes of name from offset (0: to the end) into
// memory.
func LoadAll(ctx context.Context, s Store, name string, offset, length int64) ([]byte, error) {
	var buf []byte
	err := s.Load(ctx, name, offset, length, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		buf = b
		return err
	})
	return buf, err
}

// Invalidator is an optional capability of a Store that keeps copies of
// objects apart from where they live (a host cache). Invalidate drops
// every copy of name that the store keeps, so that the next Load reads
// the object from the store behind the copy again; it changes nothing in
// that store, and dropping a copy that does not exist is not an error.
//
// A caller calls it when an object's bytes fail a check that the
// object's own name or index vouches for (a hash mismatch): the copy, not
// the object, may be what is damaged. Wrappers implement it by forwarding
// to the store they wrap (through the Invalidate helper), so that the
// capability is not lost under them, in the way io/fs wrappers keep an
// fs.ReadDirFS a ReadDirFS.
type Invalidator interface {
	Invalidate(ctx context.Context, name string) error
}

// Invalidate drops the copies of name that s keeps, if s is an
// Invalidator; for any other store it does nothing and returns nil.
func Invalidate(ctx context.Context, s Store, name string) error {
	if inv, ok := s.(Invalidator); ok {
		return inv.Invalidate(ctx, name)
	}
	return nil
}
