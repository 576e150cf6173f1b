// Package store defines where a repository's objects live: named, immutable
// or conditionally replaced byte strings in a flat namespace of
// slash-separated names ("config", "packs/ab/<id>", "snapshots/<id>").
//
// A Store knows nothing of packs, trees or snapshots. Implementations live in
// subpackages (local, mem, s3); wrappers that add behaviour to any Store
// (retries, request counting, fault injection) live beside them, and
// storetest holds the one conformance suite that every implementation runs.
//
// Errors are classified with the sentinels below and errors.Is; no
// implementation's own error types (SDK errors, *fs.PathError) are part of
// the contract.
package store
