// Package chunk defines the identity of content in a sandsnap repository and
// the content-defined chunker that cuts files into pieces.
//
// # ID
//
// An ID is the BLAKE3-256 hash of a blob's plain (uncompressed) bytes. Every
// object that is addressed by content (chunks, trees, packs, snapshots) is
// named by an ID, so equal content always has the same name and every read can
// be verified against its name.
//
// # Chunk
//
// A chunk is a piece of a file cut by content-defined chunking (Rabin
// fingerprints, github.com/restic/chunker). Boundaries depend only on the
// content, the polynomial and the size bounds, so an insertion in the middle
// of a file changes only the chunks around it. The polynomial is chosen at
// random when a repository is created and stored in its config (Params); a
// change of Params changes every boundary and so defeats deduplication
// against earlier snapshots. testdata/ pins the boundaries for a fixed input.
//
// Files smaller than Params.MinSize are a single chunk and are never
// concatenated with other files: whole-file identity is what forks share.
package chunk
