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
// "fork-N restore" (N concurrent restores of one handle); "fork-N via host
// cache" (the same through store/cache, one cache.Store per restore over
// one shared folder, as N sandbox processes on one host); and "fork-N
// backup" (N concurrent backups, each after its own mutation); and "gc
// after expiry": the incremental and fork backups are made with a TTL of
// two seconds, and once they have expired two gc runs are measured (the
// first condemns what only they reached, the second deletes it). A
// scenario that needs a repository feature that does not exist yet is
// listed with NA set instead of numbers.
//
// The fork-N scenarios run N real sandsnap processes at once, as N
// sandboxes on one host would: the runner builds cmd/sandsnap into the work
// directory at the start (go build) and runs `sandsnap --repo URL
// [--no-cache | --cache DIR] restore ID DIR --json` or `backup DIR --parent
// ID --name NAME --ttl 2s --json`. fork-N restore uses --no-cache (every
// process fetches as on a fresh host), fork-N via host cache --cache with
// one shared empty folder, fork-N backup --cache with the host cache folder
// (--no-cache with Config.NoCache). A remote repository is passed by its
// URL; its endpoint and credentials reach the children through the
// environment. If the build fails (no Go toolchain, or not run inside the
// module), the fork-N scenarios run as N goroutines in the runner's process
// instead, and the report says so. The other scenarios always run in the
// runner's process.
//
// The repository is opened with a host cache folder for its files caches
// (repo.Options.CacheDir, as the CLI does) but without an object cache, so
// every restore but the host-cache one fetches from the store as a fresh
// host would.
//
// # Baseline
//
// A baseline is a standard tool run as a subprocess on the same data in the
// same run: tar|zstd, find (the stat walk), cp -a, tar -x, tar
// --listed-incremental and, when present, restic. Page caches are not
// dropped (the machine is shared): a warm-up find and tar read the tree
// first so that both sides start warm.
//
// # Metrics
//
// The runner measures each in-process scenario: wall time; user+sys CPU
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
// A scenario run as N sandsnap processes (Result.Processes = N) gets the
// wall time from the first start to the last exit; CPU summed over the
// children's rusage; peak RSS the largest child's rusage Maxrss, a
// per-process peak, as each sandbox is its own process; disk reads the
// children's inblock summed; no rchar; and the store traffic and work
// summed from each child's --json output (its "requests" and the files and
// bytes of its "stats"). That traffic includes what each process needs to
// open the repository (config, index), which an in-process scenario, with
// its repository already open, does not count.
//
// # Target
//
// A target is one goal of the issue that asked for this harness, a ratio
// of a sandsnap metric to a baseline metric with a limit; each is printed
// as PASS, MISS, or SKIP when its baseline did not run.
package benchrun
