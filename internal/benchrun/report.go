package benchrun

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Report is everything a run measured; it is what --json prints.
type Report struct {
	Date      time.Time  `json:"date"`
	Command   string     `json:"command,omitempty"`
	Machine   Machine    `json:"machine"`
	Config    Config     `json:"config"`
	Store     string     `json:"store"`
	Workload  Workload   `json:"workload"`
	Mutation  Mutation   `json:"mutation"`
	Scenarios []Result   `json:"scenarios"`
	Baselines []Baseline `json:"baselines"`
	Ratios    []Ratio    `json:"ratios"`
	Targets   []Target   `json:"targets"`
	Notes     []string   `json:"notes"`
}

// Mutation summarizes the bench.Mutate of the workload.
type Mutation struct {
	Kind       string `json:"kind"`
	Changed    int    `json:"changed"`
	Added      int    `json:"added"`
	Deleted    int    `json:"deleted"`
	Touched    int    `json:"touched"`
	DirtyBytes int64  `json:"dirty_bytes"`
}

// Machine describes where the run ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	// MemoryLimit is the Go soft memory limit in force (GOMEMLIMIT or
	// debug.SetMemoryLimit), math.MaxInt64 for none.
	MemoryLimit int64 `json:"memory_limit"`
}

func thisMachine() Machine {
	return Machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		MemoryLimit: debug.SetMemoryLimit(-1)}
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// methodNotes state how the numbers were taken.
func methodNotes() []string {
	return []string{
		"Page caches were not dropped (shared machine): a warm-up (find, then tar piped to cat) read the metadata and content first, so sandsnap and the baselines all read warm data.",
		"Before each measurement sync(2) flushes what earlier steps wrote, so that their writeback is not charged to the next step.",
		"CPU is user+sys: getrusage(RUSAGE_SELF) deltas for sandsnap (in process), RUSAGE_CHILDREN deltas for the baselines.",
		"Peak RSS: VmHWM after writing 5 to /proc/self/clear_refs before each scenario (after a GC); the rusage Maxrss of the child for baselines (its largest process).",
		"disk rd is read_bytes of /proc/self/io (reads that reached the disk); rchar counts every byte returned by read syscalls, page-cache hits included.",
		"dedup is the logical bytes of every snapshot so far over the repository's size; bytes added is what the scenario uploaded (PUT bytes).",
		"Ratios are sandsnap / baseline: below 1 means sandsnap is faster or smaller.",
		"The incremental and fork-N backups have a TTL of 2s; gc after expiry waits (unmeasured) until they have expired, then measures two gc runs; its MB/s is the repository size before gc over the wall time.",
		"The repository is opened with a host cache folder (repo.Options.CacheDir: files caches, as the CLI does) but no object cache, so every restore fetches from the store as on a fresh host; only fork-N via host cache puts store/cache (one cache.Store per restore, one shared folder, requests counted below the cache) in front of the store. --no-cache drops both.",
	}
}

// scenarioTable is the main table of a report.
func (r *Report) scenarioTable() *table {
	t := &table{header: []string{"scenario", "wall", "cpu", "peak RSS", "files/s", "MB/s", "disk rd", "rchar", "PUT", "GET", "LIST", "HEAD", "up", "down", "repo", "dedup"}}
	for _, s := range r.Scenarios {
		if s.NA != "" {
			t.add(s.Name, s.NA)
			continue
		}
		st := s.Store
		filesPerSec := "-" // gc handles no files
		if s.Files > 0 {
			filesPerSec = fmtRate(s.FilesPerSec)
		}
		rchar := fmtBytes(s.ReadChars)
		if s.Processes > 0 {
			rchar = "-" // not measured for child processes
		}
		t.add(s.Name, fmtSeconds(s.WallSeconds), fmtSeconds(s.CPUSeconds()), fmtBytes(s.PeakRSS),
			filesPerSec, fmtRate(s.MBPerSec), fmtBytes(s.DiskReadBytes), rchar,
			fmtCount(st.Puts), fmtCount(st.Gets), fmtCount(st.Lists), fmtCount(st.Heads),
			fmtBytes(st.BytesUp), fmtBytes(st.BytesDown), fmtBytes(s.RepoBytes), fmtFactor(s.Dedup))
	}
	return t
}

func (r *Report) baselineTable() *table {
	t := &table{header: []string{"baseline", "wall", "cpu", "peak RSS", "output"}}
	for _, b := range r.Baselines {
		if b.Skipped != "" {
			t.add(b.Name, "skipped: "+b.Skipped)
			continue
		}
		out := "-"
		if b.OutputBytes != 0 {
			out = fmtBytes(b.OutputBytes)
		}
		t.add(b.Name, fmtSeconds(b.WallSeconds), fmtSeconds(b.CPUSeconds), fmtBytes(b.PeakRSS), out)
	}
	return t
}

func (r *Report) ratioTable() *table {
	t := &table{header: []string{"scenario", "baseline", "metric", "sandsnap", "baseline value", "ratio"}}
	for _, x := range r.Ratios {
		val := fmtSeconds
		if x.Metric != MetricWall {
			val = func(f float64) string { return fmtBytes(int64(f)) }
		}
		name := x.Scenario
		if res, ok := findResult(r.Scenarios, x.Scenario); ok {
			name = res.Name
		}
		t.add(name, x.Baseline, x.Metric, val(x.Sandsnap), val(x.Base), fmtFactor(x.Ratio))
	}
	return t
}

// gcLine sums what the gc scenario's runs did, or is "" without them.
func (r *Report) gcLine() string {
	res, ok := findResult(r.Scenarios, ScenarioGC)
	if !ok || len(res.GC) == 0 {
		return ""
	}
	var expired, condemned, deleted int
	var freed int64
	for _, g := range res.GC {
		expired += g.ExpiredRemoved
		condemned += g.PacksCondemned
		deleted += g.PacksDeleted
		freed += g.BytesFreed
	}
	return fmt.Sprintf("gc: %d runs removed %d expired snapshots, condemned %d packs, deleted %d packs (%s freed)",
		len(res.GC), expired, condemned, deleted, fmtBytes(freed))
}

// summary is the one-line description of the run.
func (r *Report) summary() string {
	w := r.Workload
	origin := fmt.Sprintf("generated, seed %d, scale %g", r.Config.Seed, r.Config.Scale)
	if w.Source != "generated" {
		origin = w.Source + " " + w.Path
	}
	limit := "none"
	if l := r.Machine.MemoryLimit; l > 0 && l < math.MaxInt64 {
		limit = fmt.Sprintf("%d MiB", l>>20)
	}
	return fmt.Sprintf("workload %s (%s): %s files, %s dirs, %s symlinks, %s; store %s; fork-N N=%d; %d CPUs (%s); Go memory limit %s",
		w.Kind, origin, fmtCount(int64(w.Files)), fmtCount(int64(w.Dirs)),
		fmtCount(int64(w.Symlinks)), fmtBytes(w.Bytes), r.Store, r.Config.Forks, r.Machine.CPUs, r.Machine.CPUModel, limit)
}

// Text is the terminal rendering of the report.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sandsnap benchmark, %s\n%s\n", r.Date.Format(time.RFC3339), r.summary())
	m := r.Mutation
	fmt.Fprintf(&b, "mutation %s: %d edited, %d added, %d deleted, %d touched, %s of new content\n\n",
		m.Kind, m.Changed, m.Added, m.Deleted, m.Touched, fmtBytes(m.DirtyBytes))
	b.WriteString(r.scenarioTable().text())
	if line := r.procLine(); line != "" {
		b.WriteString(line + "\n")
	}
	if line := r.gcLine(); line != "" {
		b.WriteString(line + "\n")
	}
	b.WriteString("\n")
	b.WriteString(r.baselineTable().text())
	b.WriteString("\n")
	b.WriteString(r.ratioTable().text())
	b.WriteString("\n")
	for _, t := range r.Targets {
		b.WriteString(t.String() + "\n")
	}
	return b.String()
}

// procLine says how the scenarios run as separate sandsnap processes were
// measured, or is "" if there were none.
func (r *Report) procLine() string {
	var names []string
	for _, s := range r.Scenarios {
		if s.Processes > 0 {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return strings.Join(names, ", ") + ": one sandsnap process per operation; peak RSS is per process " +
		"(the largest child's Maxrss), cpu the children's sum, store traffic the sum of their --json requests (each opens the repository)."
}
