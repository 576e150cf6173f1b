// Command sandsnap backs up a directory into a deduplicating snapshot
// repository (a local folder, S3 or Cloudflare R2) and restores it by
// handle:
//
//	sandsnap [--repo URL] [--endpoint URL] init [--compression fastest|default|better] [--json]
//	sandsnap [--repo URL] backup DIR [--name N] [--ttl 72h] [--parent ID|auto] [--reread] [--exclude GLOB]... [--skip-unreadable] [--json]
//	sandsnap [--repo URL] restore HANDLE DIR [--delete] [--dry-run] [--json]
//	sandsnap [--repo URL] status DIR [--json]
//	sandsnap [--repo URL] ls [--name N] [--all] [--json]   (alias: snapshots)
//	sandsnap [--repo URL] ls HANDLE [PATH] [--json]
//	sandsnap [--repo URL] cat HANDLE PATH
//	sandsnap [--repo URL] show HANDLE [--json]
//	sandsnap [--repo URL] diff A B [--content] [--json]
//	sandsnap [--repo URL] verify [--read-data] [--json]
//	sandsnap [--repo URL] rm HANDLE... [--json]
//	sandsnap --version
//	sandsnap [--repo URL] gc [--repack-threshold 0.5] [--dry-run] [--json]
//
// --repo defaults to $SANDSNAP_REPO. --cache DIR (default: the user cache
// folder's sandsnap/), --cache-size SIZE and --no-cache choose the host
// cache that backup, restore, diff, cat and ls HANDLE share: packs and
// index deltas fetched once per host, and each directory's files cache. --parent auto takes the
// snapshot the directory was last restored from or backed up as; --reread
// reads every file. diff compares two snapshots, or a snapshot and a
// directory (B names an existing directory). ls HANDLE [PATH] lists a
// directory of a snapshot as ls -l does and cat HANDLE PATH writes a file's
// bytes to stdout, both reading only what they show (repo.SnapshotFS) and
// never following a symlink. A HANDLE is a snapshot ID, a unique
// ID prefix, "-" (a handle's JSON on stdin), a file holding a handle's
// JSON, or a snapshot name (the newest live snapshot with that name).
//
// restore refuses / and system directories, and a non-empty DIR that
// sandsnap has no record of restoring or backing up on this host unless
// --delete is given; --dry-run lists what it would do. status reports a
// directory's record and an unfinished restore's marker.
//
// Output goes to stdout (JSON with --json); every error is one line
// "sandsnap: <message>" on stderr, or with --json one JSON object
// {"code", "message", "path", "object", "exit"}. Exit statuses and codes
// (errors.go, the README's table): 2 usage, 3 partial, 10 no repository,
// 13 snapshot not found, 14 expired, 15 corrupt, 16 refused, 130
// interrupted, 1 anything else. Messages lose the package prefixes that
// wrapping piles up ("repo: ...: repo: ..."); only the CLI strips them.
// ls leaves out a snapshot object it cannot read (corrupt, written by
// a newer sandsnap) with one "sandsnap: warning: " line on stderr each,
// and still exits 0. Progress bars are drawn on stderr only when it is a terminal and
// the work lasts more than a second. This package holds flags, output and
// progress only; the work is done by package repo.
package main
