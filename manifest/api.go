package manifest

// API SKELETON written by the lead: the exported names, types and
// signatures below are the contract that repo/ codes against. Fill in the
// bodies (and move them into files of your choosing); keep the signatures.

import (
	"errors"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
)

// Version is the tree and snapshot format version.
const Version = 1

// Sentinel errors.
var (
	ErrCorrupt  = errors.New("manifest: corrupt")
	ErrVersion  = errors.New("manifest: unsupported version")
	ErrBadName  = errors.New("manifest: invalid entry name") // "", ".", "..", "/" or NUL inside
	ErrUnsorted = errors.New("manifest: entries not sorted or not unique")
)

// NodeType is the kind of a directory entry.
type NodeType uint8

const (
	TypeFile    NodeType = 1
	TypeDir     NodeType = 2
	TypeSymlink NodeType = 3
	TypeFIFO    NodeType = 4
)

// Xattr is one extended attribute (user.* namespace).
type Xattr struct {
	Name  string
	Value []byte
}

// Node is one directory entry. Fields that do not apply to Type are zero.
type Node struct {
	Name    string // one path element: any bytes but "/" and NUL; not "." or ".."
	Type    NodeType
	Mode    uint32 // permission bits plus setuid, setgid, sticky (st_mode & 07777)
	UID     uint32
	GID     uint32
	MtimeNs int64      // Unix time in nanoseconds
	Size    uint64     // files: length in bytes
	Content []chunk.ID // files: chunk IDs in order (empty file: none)
	Subtree chunk.ID   // dirs: the tree blob's ID
	Target  string     // symlinks: target, any bytes but NUL, never followed
	LinkID  uint64     // files with nlink > 1: the same nonzero value for every
	//                    name of one inode within a snapshot; 0 otherwise
	Xattrs []Xattr // sorted by Name, unique
}

// Tree is one directory's entries, sorted by Name (bytewise), names unique.
type Tree struct {
	Nodes []Node
}

// ValidName reports whether name can be a Node name (ErrBadName otherwise).
func ValidName(name string) error { panic("unimplemented") }

// Encode returns the deterministic encoding of t (version byte first):
// equal trees encode to equal bytes, so an unchanged directory has the same
// ID in every snapshot. It validates t (names, order, types, fields).
func (t *Tree) Encode() ([]byte, error) { panic("unimplemented") }

// DecodeTree decodes and validates a tree blob. Arbitrary input never
// panics and never allocates more than a small multiple of len(data).
func DecodeTree(data []byte) (*Tree, error) { panic("unimplemented") }

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

// Encode returns the snapshot's canonical JSON (validated: version, name
// length <= 256 and no control characters, tree set).
func (s *Snapshot) Encode() ([]byte, error) { panic("unimplemented") }

// DecodeSnapshot decodes and validates a snapshot object.
func DecodeSnapshot(data []byte) (*Snapshot, error) { panic("unimplemented") }
