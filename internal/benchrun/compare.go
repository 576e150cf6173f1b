package benchrun

import "fmt"

// Metric names of a Ratio.
const (
	MetricWall  = "wall"        // wall seconds of both sides
	MetricSize  = "size"        // repository size vs archive size
	MetricAdded = "bytes added" // bytes uploaded vs bytes a baseline wrote
)

// Ratio compares one sandsnap scenario with one baseline: Ratio is
// Sandsnap / Baseline, so below 1 means sandsnap is faster or smaller.
type Ratio struct {
	Scenario string  `json:"scenario"` // a Result ID
	Baseline string  `json:"baseline"` // a Baseline name
	Metric   string  `json:"metric"`
	Sandsnap float64 `json:"sandsnap"`
	Base     float64 `json:"base"`
	Ratio    float64 `json:"ratio"`
}

// Label names the ratio for tables and charts.
func (r Ratio) Label() string {
	return fmt.Sprintf("%s %s / %s", r.Scenario, r.Metric, r.Baseline)
}

// comparison is which scenario metric is divided by which baseline.
type comparison struct{ scenario, baseline, metric string }

func comparisons() []comparison {
	return []comparison{
		{ScenarioFull, BaseTarZstd, MetricWall},
		{ScenarioFull, BaseResticFull, MetricWall},
		{ScenarioFull, BaseTarZstd, MetricSize},
		{ScenarioNoChange, BaseStatWalk, MetricWall},
		{ScenarioNoChange, BaseResticNoChange, MetricWall},
		{ScenarioIncremental, BaseResticIncr, MetricWall},
		{ScenarioIncremental, BaseTarIncremental, MetricAdded},
		{ScenarioIncremental, BaseResticIncr, MetricAdded},
		{ScenarioRestore, BaseCp, MetricWall},
		{ScenarioRestore, BaseTarX, MetricWall},
		{ScenarioRestore, BaseResticRestore, MetricWall},
	}
}

// computeRatios returns every comparison whose two sides exist and whose
// baseline value is positive.
func computeRatios(results []Result, bases []Baseline) []Ratio {
	var out []Ratio
	for _, c := range comparisons() {
		res, ok := findResult(results, c.scenario)
		if !ok {
			continue
		}
		b, ok := findBaseline(bases, c.baseline)
		if !ok {
			continue
		}
		s, base := sides(res, b, c.metric)
		if base <= 0 {
			continue
		}
		out = append(out, Ratio{Scenario: c.scenario, Baseline: c.baseline, Metric: c.metric, Sandsnap: s, Base: base, Ratio: s / base})
	}
	return out
}

func sides(res Result, b Baseline, metric string) (s, base float64) {
	switch metric {
	case MetricSize:
		return float64(res.RepoBytes), float64(b.OutputBytes)
	case MetricAdded:
		return float64(res.Store.BytesUp), float64(b.OutputBytes)
	}
	return res.WallSeconds, b.WallSeconds
}

func findResult(results []Result, id string) (Result, bool) {
	for _, r := range results {
		if r.ID == id && r.NA == "" {
			return r, true
		}
	}
	return Result{}, false
}

func findBaseline(bases []Baseline, name string) (Baseline, bool) {
	for _, b := range bases {
		if b.Name == name && b.Skipped == "" {
			return b, true
		}
	}
	return Baseline{}, false
}

func findRatio(ratios []Ratio, c comparison) (Ratio, bool) {
	for _, r := range ratios {
		if r.Scenario == c.scenario && r.Baseline == c.baseline && r.Metric == c.metric {
			return r, true
		}
	}
	return Ratio{}, false
}

// Target statuses.
const (
	Pass = "PASS"
	Miss = "MISS"
	Skip = "SKIP"
)

// Target is one goal of the issue, checked against the run.
type Target struct {
	Goal  string  `json:"goal"`
	Got   float64 `json:"got"`
	Limit float64 `json:"limit"`
	// Unit is "x" for ratios and "bytes" for sizes.
	Unit   string `json:"unit"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// String is the PASS/MISS line.
func (t Target) String() string {
	val := fmtFactor
	if t.Unit == "bytes" {
		val = func(f float64) string { return fmtBytes(int64(f)) }
	}
	s := fmt.Sprintf("%-4s  %s: %s (limit %s)", t.Status, t.Goal, val(t.Got), val(t.Limit))
	if t.Status == Skip {
		s = fmt.Sprintf("%-4s  %s", t.Status, t.Goal)
	}
	if t.Note != "" {
		s += "; " + t.Note
	}
	return s
}

func check(goal string, got, limit float64, note string) Target {
	st := Miss
	if got <= limit {
		st = Pass
	}
	return Target{Goal: goal, Got: got, Limit: limit, Unit: "x", Status: st, Note: note}
}

// ratioTargets are the goals that are ratios to a baseline.
func ratioTargets() []struct {
	goal  string
	c     comparison
	limit float64
} {
	return []struct {
		goal  string
		c     comparison
		limit float64
	}{
		{"full backup wall <= 1.0x tar|zstd -T0 -3", comparison{ScenarioFull, BaseTarZstd, MetricWall}, 1.0},
		{"full backup wall <= 0.5x restic backup", comparison{ScenarioFull, BaseResticFull, MetricWall}, 0.5},
		{"no-change backup of a restored fork <= 2x the stat walk", comparison{ScenarioNoChange, BaseStatWalk, MetricWall}, 2},
		{"no-change backup of a restored fork <= 0.15x restic no-change", comparison{ScenarioNoChange, BaseResticNoChange, MetricWall}, 0.15},
		{"restore into an empty dir <= 1.5x cp -a", comparison{ScenarioRestore, BaseCp, MetricWall}, 1.5},
		{"restore into an empty dir <= 0.5x restic restore", comparison{ScenarioRestore, BaseResticRestore, MetricWall}, 0.5},
		{"repository size after full backup <= 1.05x tar|zstd -3 archive", comparison{ScenarioFull, BaseTarZstd, MetricSize}, 1.05},
		{"bytes added by the incremental <= 1.3x tar --listed-incremental | zstd -3", comparison{ScenarioIncremental, BaseTarIncremental, MetricAdded}, 1.3},
	}
}

// peakRSSLimit is the memory goal for every scenario, in the
// decimal megabytes that the tables print.
const peakRSSLimit = 300e6

// computeTargets checks every goal of the issue.
func computeTargets(results []Result, ratios []Ratio, forks int) []Target {
	var out []Target
	for _, rt := range ratioTargets() {
		r, ok := findRatio(ratios, rt.c)
		if !ok {
			out = append(out, Target{Goal: rt.goal, Limit: rt.limit, Status: Skip, Note: "baseline or scenario missing"})
			continue
		}
		out = append(out, check(rt.goal, r.Ratio, rt.limit, ""))
	}
	out = append(out, forkTarget(results, forks), rssTarget(results))
	return out
}

// forkTarget compares the bytes downloaded by N concurrent restores with one
// restore's: those through the host cache when that scenario ran, else
// the uncached ones (which cannot pass).
func forkTarget(results []Result, forks int) Target {
	goal := fmt.Sprintf("fork-%d store traffic of %d restores <= 1.1x one restore", forks, forks)
	fork, cached := findResult(results, ScenarioHostCache)
	note := "with the host cache"
	if !cached {
		fork, cached = findResult(results, ScenarioForkRestore)
		note = "without a host cache"
	}
	one, ok := findResult(results, ScenarioRestore)
	if !cached || !ok || one.Store.BytesDown <= 0 {
		return Target{Goal: goal, Limit: 1.1, Status: Skip, Note: "restore scenarios missing"}
	}
	got := float64(fork.Store.BytesDown) / float64(one.Store.BytesDown)
	return check(goal, got, 1.1, note)
}

func rssTarget(results []Result) Target {
	var worst Result
	for _, r := range results {
		if r.NA == "" && r.PeakRSS >= worst.PeakRSS {
			worst = r
		}
	}
	t := check("peak RSS <= 300 MB in every scenario", float64(worst.PeakRSS), peakRSSLimit, "")
	t.Unit, t.Note = "bytes", "in "+worst.Name
	switch {
	case worst.Processes > 0:
		t.Note += " (the largest of its processes)"
	case worst.ID == ScenarioForkRestore || worst.ID == ScenarioForkBackup || worst.ID == ScenarioHostCache:
		t.Note += " (N operations in one process)"
	}
	if worst.PeakRSS == 0 {
		t.Status, t.Note = Skip, "VmHWM could not be reset or read"
	}
	return t
}
