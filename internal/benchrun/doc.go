// Package benchrun is the engine of cmd/snapbench: it builds a workload,
// runs sandsnap's scenarios and the baseline tools on the same data, and
// reports what each cost.
//
// # Scenario
//
// A scenario is one measured sandsnap operation on the workload, in this
// order: "full backup"; "restore (empty dir)" of the full snapshot;
// "no-change backup" of that restored copy with the full snapshot as its
// parent (a fork that changed nothing: stat matching only); "incremental
// backup" after bench.Mutate "dev", with the full snapshot as parent;
// "restore in place" of the full snapshot onto the mutated directory;
// "fork-N restore" (N concurrent restores of one handle) and "fork-N
// backup" (N concurrent backups, each after its own mutation). Scenarios
// that need repository features that do not exist yet (gc, a host cache)
// are listed with NA set instead of numbers.
//
// # Baseline
//
// A baseline is a standard tool run as a subprocess on the same data in the
// same run: tar|zstd, find (the stat walk), cp -a, tar -x, tar
// --listed-incremental and, when present, restic. Page caches are not
// dropped (the machine is shared): a warm-up find runs first so that both
// sides start warm.
//
// # Metrics
//
// The runner measures each scenario in-process: wall time; user+sys CPU
// (getrusage RUSAGE_SELF deltas); peak RSS (the high-water mark is reset
// through /proc/self/clear_refs before, and VmHWM read after); bytes read
// from storage (read_bytes of /proc/self/io) and bytes read by syscalls
// (rchar, which counts page-cache hits too); store requests and bytes by
// kind (store/counting); the repository's size (the sum of its objects, by
// List) and the dedup ratio (logical bytes of all snapshots so far over the
// repository's size). Baselines get wall time, CPU from RUSAGE_CHILDREN
// deltas and the peak RSS of their largest process (the rusage Maxrss of
// the waited child, which includes its reaped descendants).
//
// # Target
//
// A target is one goal of the issue that asked for this harness, a ratio
// of a sandsnap metric to a baseline metric with a limit; each is printed
// as PASS, MISS, or SKIP when its baseline did not run.
package benchrun
