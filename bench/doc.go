// Package bench generates the deterministic workloads that the tests, the
// benchmarks and snapbench back up and restore, and mutates them the way a
// sandbox does between two backups.
//
// # Workload
//
// A workload is a directory tree of a given kind, made by Generate from a
// seed and a scale. The same kind, seed and options give byte- and
// stat-identical trees (inode numbers aside): every mtime is EpochUnix plus a
// function of the entry's place in the tree. The kinds are
//
//   - "node": a node_modules tree: tens of thousands of small .js, .json,
//     .d.ts, .map and .md files (median about 2 KiB, a tail to 1 MiB),
//     nested packages, the same package version vendored in several places,
//     identical LICENSE files, a few multi-megabyte minified bundles and
//     .bin symlinks. Its text is made from a vocabulary of identifiers,
//     keywords and idioms, so it compresses like real JavaScript (about 3-5x
//     with zstd -3), neither like random bytes nor like a repeated string.
//   - "repo": a source checkout: source files plus a .git holding
//     incompressible pack files and loose objects.
//   - "workspace": "repo" with "node" in its node_modules: a git clone
//     followed by npm install.
//   - "db": one SQLite-like file (DBName) of PageSize pages.
//   - "bigfile": one file (BigfileName) of incompressible bytes.
//
// # Segment
//
// Files larger than 4 MiB are written in segments, each made from its own
// seed, so that the generator can write one large file on several cores.
//
// # Mutation
//
// Mutate changes a generated tree as work in a sandbox does: "dev" edits,
// adds, deletes and touches files; "db" rewrites pages in place; "bigfile"
// inserts bytes in the middle. It reports exactly what it changed, so a test
// can check that a backup stores no more than that.
package bench
