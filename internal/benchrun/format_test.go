package benchrun

import (
	"math"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/counting"
)

func TestTableText(t *testing.T) {
	tests := []struct {
		name string
		tab  table
		want string
	}{
		{
			name: "aligned",
			tab:  table{header: []string{"name", "wall", "size"}, rows: [][]string{{"full backup", "1.20s", "3 MB"}, {"gc", "80ms", "12.5 MB"}}},
			want: "name          wall     size\n" +
				"full backup  1.20s     3 MB\n" +
				"gc            80ms  12.5 MB\n",
		},
		{
			name: "span row does not widen columns",
			tab:  table{header: []string{"name", "wall", "size"}, rows: [][]string{{"full", "1s", "2 B"}, {"gc", "n/a (not implemented yet)"}}},
			want: "name  wall  size\n" +
				"full    1s   2 B\n" +
				"gc    n/a (not implemented yet)\n",
		},
		{
			name: "short row",
			tab:  table{header: []string{"a", "b", "c"}, rows: [][]string{{"x"}}},
			want: "a  b  c\nx\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tab.text(); got != tt.want {
				t.Errorf("text() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestTableMarkdown(t *testing.T) {
	tab := table{header: []string{"name", "wall"}, rows: [][]string{{"a|b", "1s"}}}
	want := "| name | wall |\n|---|---:|\n| a\\|b | 1s |\n"
	if got := tab.markdown(); got != want {
		t.Errorf("markdown() =\n%s\nwant\n%s", got, want)
	}
}

func TestFormatters(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtBytes(0), "0 B"},
		{fmtBytes(999), "999 B"},
		{fmtBytes(1500), "1.5 kB"},
		{fmtBytes(12_400_000), "12.4 MB"},
		{fmtBytes(3_210_000_000), "3.21 GB"},
		{fmtSeconds(0.0725), "72ms"},
		{fmtSeconds(2.314), "2.31s"},
		{fmtSeconds(15.52), "15.5s"},
		{fmtSeconds(123.4), "123s"},
		{fmtFactor(0.1412), "0.14x"},
		{fmtFactor(19.12), "19.1x"},
		{fmtFactor(250), "250x"},
		{fmtFactor(math.Inf(1)), "-"},
		{fmtRate(1669.2), "1669"},
		{fmtRate(15.62), "15.6"},
		{fmtRate(9.321), "9.32"},
		{fmtCount(0), "0"},
		{fmtCount(999), "999"},
		{fmtCount(1000), "1,000"},
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(-45678), "-45,678"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

// sample is a run with one of each comparison's sides.
func sample() ([]Result, []Baseline) {
	res := []Result{
		{ID: ScenarioFull, Name: "full backup", Metrics: Metrics{WallSeconds: 1, RepoBytes: 100, PeakRSS: 90e6}},
		{ID: ScenarioRestore, Name: "restore", Metrics: Metrics{WallSeconds: 3, Store: counting.Stats{BytesDown: 100}, PeakRSS: 310e6}},
		{ID: ScenarioNoChange, Name: "no-change", Metrics: Metrics{WallSeconds: 0.5}},
		{ID: ScenarioIncremental, Name: "incremental", Metrics: Metrics{WallSeconds: 0.2, Store: counting.Stats{BytesUp: 30}}},
		{ID: ScenarioForkRestore, Name: "fork-4 restore", Metrics: Metrics{Store: counting.Stats{BytesDown: 400}}},
		{ID: ScenarioGC, Name: "gc", NA: naNotYet},
	}
	bases := []Baseline{
		{Name: BaseTarZstd, WallSeconds: 2, OutputBytes: 99},
		{Name: BaseStatWalk, WallSeconds: 0.1},
		{Name: BaseCp, WallSeconds: 2},
		{Name: BaseTarIncremental, WallSeconds: 0.1, OutputBytes: 60},
		{Name: BaseResticFull, Skipped: "restic not on PATH"},
	}
	return res, bases
}

func TestComputeRatios(t *testing.T) {
	res, bases := sample()
	ratios := computeRatios(res, bases)
	tests := []struct {
		c    comparison
		want float64 // 0: must be absent
	}{
		{comparison{ScenarioFull, BaseTarZstd, MetricWall}, 0.5},
		{comparison{ScenarioFull, BaseTarZstd, MetricSize}, 100.0 / 99},
		{comparison{ScenarioNoChange, BaseStatWalk, MetricWall}, 5},
		{comparison{ScenarioRestore, BaseCp, MetricWall}, 1.5},
		{comparison{ScenarioIncremental, BaseTarIncremental, MetricAdded}, 0.5},
		{comparison{ScenarioFull, BaseResticFull, MetricWall}, 0},
		{comparison{ScenarioRestore, BaseTarX, MetricWall}, 0},
	}
	for _, tt := range tests {
		r, ok := findRatio(ratios, tt.c)
		if tt.want == 0 {
			if ok {
				t.Errorf("%v present (%v); want absent", tt.c, r.Ratio)
			}
			continue
		}
		if !ok || math.Abs(r.Ratio-tt.want) > 1e-9 {
			t.Errorf("%v = %v (present %v); want %v", tt.c, r.Ratio, ok, tt.want)
		}
	}
}

func TestComputeTargets(t *testing.T) {
	res, bases := sample()
	targets := computeTargets(res, computeRatios(res, bases), 4)
	want := map[string]string{
		"full backup wall <= 1.0x tar|zstd -T0 -3":                                  Pass,
		"full backup wall <= 0.5x restic backup":                                    Skip,
		"no-change backup of a restored fork <= 2x the stat walk":                   Miss,
		"restore into an empty dir <= 1.5x cp -a":                                   Pass, // 1.5 is within the limit
		"repository size after full backup <= 1.05x tar|zstd -3 archive":            Pass,
		"bytes added by the incremental <= 1.3x tar --listed-incremental | zstd -3": Pass,
		"fork-4 store traffic of 4 restores <= 1.1x one restore":                    Miss,
		"peak RSS <= 300 MB in every scenario":                                      Miss,
	}
	seen := 0
	for _, tg := range targets {
		w, ok := want[tg.Goal]
		if !ok {
			continue
		}
		seen++
		if tg.Status != w {
			t.Errorf("%s: %s (%v); want %s", tg.Goal, tg.Status, tg.Got, w)
		}
		line := tg.String()
		if !strings.HasPrefix(line, tg.Status) {
			t.Errorf("line %q does not start with its status", line)
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of %d targets", seen, len(want))
	}
}

func TestForkTarget(t *testing.T) {
	one := Result{ID: ScenarioRestore, Metrics: Metrics{Store: counting.Stats{BytesDown: 100}}}
	plain := Result{ID: ScenarioForkRestore, Metrics: Metrics{Store: counting.Stats{BytesDown: 800}}}
	tests := []struct {
		name    string
		results []Result
		status  string
		got     float64
	}{
		{"without host cache", []Result{one, plain}, Miss, 8},
		{"host cache fetched once", []Result{one, plain, {ID: ScenarioHostCache, Metrics: Metrics{Store: counting.Stats{BytesDown: 105}}}}, Pass, 1.05},
		{"host cache fetched twice", []Result{one, plain, {ID: ScenarioHostCache, Metrics: Metrics{Store: counting.Stats{BytesDown: 200}}}}, Miss, 2},
		{"host cache n/a", []Result{one, plain, {ID: ScenarioHostCache, NA: "n/a (--no-cache)"}}, Miss, 8},
		{"no restore", []Result{plain}, Skip, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := forkTarget(tt.results, 8)
			if tg.Status != tt.status || math.Abs(tg.Got-tt.got) > 1e-9 {
				t.Errorf("forkTarget = %s %v; want %s %v", tg.Status, tg.Got, tt.status, tt.got)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		in        Config
		wantScale float64
		wantForks int
		wantErr   bool
	}{
		{Config{}, quickScale, quickForks, false},
		{Config{Preset: PresetFull}, fullScale, fullForks, false},
		{Config{Preset: PresetCustom, Scale: 0.5, Forks: 2}, 0.5, 2, false},
		{Config{Workload: "nope"}, 0, 0, true},
		{Config{Preset: "huge"}, 0, 0, true},
		{Config{Scale: -1}, 0, 0, true},
	}
	for _, tt := range tests {
		got, err := tt.in.Defaults()
		if (err != nil) != tt.wantErr {
			t.Errorf("%+v: err = %v; want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && (got.Scale != tt.wantScale || got.Forks != tt.wantForks) {
			t.Errorf("%+v: scale %v forks %d; want %v %d", tt.in, got.Scale, got.Forks, tt.wantScale, tt.wantForks)
		}
	}
}

func TestProcField(t *testing.T) {
	status := []byte("Name:\tx\nVmPeak:\t  1000 kB\nVmHWM:\t   2048 kB\nrchar: 77\n")
	tests := []struct {
		key  string
		want int64
	}{{"VmHWM:", 2048}, {"rchar:", 77}, {"VmRSS:", 0}, {"Name:", 0}}
	for _, tt := range tests {
		if got := procField(status, tt.key); got != tt.want {
			t.Errorf("procField(%q) = %d; want %d", tt.key, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/a b", `'/tmp/a b'`},
		{"it's", `'it'\''s'`},
		{"", `''`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s; want %s", tt.in, got, tt.want)
		}
	}
}

func TestRequestStats(t *testing.T) {
	tests := []struct {
		in   map[string]int64
		want counting.Stats
	}{
		{nil, counting.Stats{}},
		{map[string]int64{"put": 1, "get": 2, "head": 3, "list": 4, "delete": 5, "bytes_up": 6, "bytes_down": 7, "other": 8},
			counting.Stats{Puts: 1, Gets: 2, Heads: 3, Lists: 4, Deletes: 5, BytesUp: 6, BytesDown: 7}},
	}
	for _, tt := range tests {
		if got := requestStats(tt.in); got != tt.want {
			t.Errorf("requestStats(%v) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSumCache(t *testing.T) {
	out := func(c *cache.Stats) procOutput {
		var o procOutput
		o.Stats.Cache = c
		return o
	}
	tests := []struct {
		outs []procOutput
		want *cache.Stats
	}{
		{nil, nil},
		{[]procOutput{out(nil), out(nil)}, nil},
		{[]procOutput{out(&cache.Stats{Hits: 1, Misses: 2, Fills: 3, BytesFilled: 4, Evictions: 5}), out(nil),
			out(&cache.Stats{Hits: 10, Misses: 20, Fills: 30, BytesFilled: 40, Evictions: 50})},
			&cache.Stats{Hits: 11, Misses: 22, Fills: 33, BytesFilled: 44, Evictions: 55}},
	}
	for i, tt := range tests {
		got := sumCache(tt.outs)
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("case %d: sumCache = %+v; want %+v", i, got, tt.want)
		}
	}
}

func TestProcLine(t *testing.T) {
	tests := []struct {
		scenarios []Result
		want      string
	}{
		{[]Result{{Name: "full backup"}}, ""},
		{[]Result{{Name: "full backup"}, {Name: "fork-2 restore", Processes: 2}, {Name: "fork-2 backup", Processes: 2}},
			"fork-2 restore, fork-2 backup: one sandsnap process per operation"},
	}
	for _, tt := range tests {
		got := (&Report{Scenarios: tt.scenarios}).procLine()
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("procLine(%v) = %q; want it to start with %q", tt.scenarios, got, tt.want)
		}
	}
}
