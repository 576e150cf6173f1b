package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/bench"
)

// TestRunEndToEnd runs the harness on a tiny workspace against a temporary
// local repository and checks the JSON report and the report directory.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run (builds sandsnap and runs the harness): skipped under -short")
	}
	for _, tool := range []string{"bash", "tar", "zstd", "find", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
	cfg := Config{Preset: PresetCustom, Workload: bench.KindWorkspace, Scale: 0.005, Seed: 3, Forks: 2, WorkDir: t.TempDir()}
	rep, err := Run(context.Background(), cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("JSON does not decode: %v", err)
	}
	checkScenarios(t, got.Scenarios)
	for _, id := range []string{ScenarioForkRestore, ScenarioHostCache, ScenarioForkBackup} {
		// go build works wherever this test runs: the fork-N scenarios
		// must have run as cfg.Forks sandsnap processes.
		if r, _ := findResult(got.Scenarios, id); r.Processes != cfg.Forks || r.PeakRSS <= 0 || r.Store.Gets <= 0 {
			t.Errorf("%s: %d processes, peak RSS %d, %d GETs; want %d processes with a peak and traffic", id, r.Processes, r.PeakRSS, r.Store.Gets, cfg.Forks)
		}
	}
	if text := got.Text(); !strings.Contains(text, "one sandsnap process per operation") {
		t.Errorf("table does not say how the fork-N scenarios were measured:\n%s", text)
	}
	checkBaselines(t, got.Baselines)
	checkRatios(t, got.Ratios)
	if n := len(got.Targets); n != len(ratioTargets())+2 {
		t.Errorf("targets = %d; want %d", n, len(ratioTargets())+2)
	}
	checkReportDir(t, &got)
	text := got.Text()
	for _, r := range got.Scenarios {
		if !strings.Contains(text, r.Name) {
			t.Errorf("table lacks scenario %q", r.Name)
		}
	}
	if n := strings.Count(text, "\nPASS ") + strings.Count(text, "\nMISS ") + strings.Count(text, "\nSKIP "); n != len(got.Targets) {
		t.Errorf("table has %d PASS/MISS/SKIP lines; want %d:\n%s", n, len(got.Targets), text)
	}
	if entries, _ := os.ReadDir(cfg.WorkDir); len(entries) != 0 {
		t.Errorf("work dir not cleaned up: %d entries left", len(entries))
	}
}

func checkScenarios(t *testing.T, results []Result) {
	t.Helper()
	want := []string{ScenarioFull, ScenarioRestore, ScenarioNoChange, ScenarioIncremental, ScenarioInPlace,
		ScenarioForkRestore, ScenarioHostCache, ScenarioForkBackup, ScenarioGC}
	if len(results) != len(want) {
		t.Fatalf("scenarios = %d; want %d", len(results), len(want))
	}
	for i, id := range want {
		r := results[i]
		if r.ID != id {
			t.Errorf("scenario %d = %q; want %q", i, r.ID, id)
			continue
		}
		if id == ScenarioGC {
			checkGC(t, r, results[i-1])
			continue
		}
		if r.WallSeconds <= 0 || r.Files <= 0 || r.Bytes <= 0 || r.RepoBytes <= 0 || r.Dedup <= 0 {
			t.Errorf("%s: wall %v files %d bytes %d repo %d dedup %v; want all positive",
				id, r.WallSeconds, r.Files, r.Bytes, r.RepoBytes, r.Dedup)
		}
	}
	full, _ := findResult(results, ScenarioFull)
	if full.Store.BytesUp <= 0 || full.Store.Puts <= 0 {
		t.Errorf("full backup uploaded %d bytes in %d PUTs; want > 0", full.Store.BytesUp, full.Store.Puts)
	}
	restore, _ := findResult(results, ScenarioRestore)
	if restore.Store.BytesDown <= 0 {
		t.Errorf("restore downloaded %d bytes; want > 0", restore.Store.BytesDown)
	}
	forks, _ := findResult(results, ScenarioForkRestore)
	cached, _ := findResult(results, ScenarioHostCache)
	if cached.Cache == nil || cached.Store.BytesDown >= forks.Store.BytesDown {
		t.Errorf("fork restores via host cache downloaded %d bytes (cache %+v); want fewer than the %d without",
			cached.Store.BytesDown, cached.Cache, forks.Store.BytesDown)
	}
	nochange, _ := findResult(results, ScenarioNoChange)
	if nochange.Backup == nil || nochange.Backup.FilesRead != 0 {
		t.Errorf("no-change backup of a restored fork read files: %+v", nochange.Backup)
	}
}

// checkGC checks that gc removed the expired snapshots (the incremental
// and the forks') and shrank the repository.
func checkGC(t *testing.T, gc, prev Result) {
	t.Helper()
	if gc.NA != "" || len(gc.GC) != 2 {
		t.Fatalf("gc: NA %q, %d reports; want 2 runs", gc.NA, len(gc.GC))
	}
	expired := gc.GC[0].ExpiredRemoved + gc.GC[1].ExpiredRemoved
	if expired < 2 {
		t.Errorf("gc removed %d expired snapshots; want the incremental and the forks'", expired)
	}
	if gc.RepoBytes >= prev.RepoBytes {
		t.Errorf("repository after gc = %d bytes; want less than the %d before", gc.RepoBytes, prev.RepoBytes)
	}
}

func checkBaselines(t *testing.T, bases []Baseline) {
	t.Helper()
	for _, name := range []string{BaseStatWalk, BaseTarZstd, BaseCp, BaseTarX, BaseTarIncremental} {
		b, ok := findBaseline(bases, name)
		if !ok {
			t.Errorf("baseline %q missing or skipped", name)
			continue
		}
		if b.WallSeconds <= 0 || b.Command == "" {
			t.Errorf("baseline %q: wall %v, command %q", name, b.WallSeconds, b.Command)
		}
	}
	if b, _ := findBaseline(bases, BaseTarZstd); b.OutputBytes <= 0 {
		t.Errorf("tar|zstd archive size = %d; want > 0", b.OutputBytes)
	}
}

func checkRatios(t *testing.T, ratios []Ratio) {
	t.Helper()
	for _, c := range []comparison{
		{ScenarioFull, BaseTarZstd, MetricWall},
		{ScenarioFull, BaseTarZstd, MetricSize},
		{ScenarioNoChange, BaseStatWalk, MetricWall},
		{ScenarioRestore, BaseCp, MetricWall},
		{ScenarioIncremental, BaseTarIncremental, MetricAdded},
	} {
		r, ok := findRatio(ratios, c)
		if !ok {
			t.Errorf("ratio %v missing", c)
			continue
		}
		if r.Ratio <= 0 || math.IsInf(r.Ratio, 0) || math.IsNaN(r.Ratio) {
			t.Errorf("ratio %v = %v; want a positive number", c, r.Ratio)
		}
	}
}

func checkReportDir(t *testing.T, rep *Report) {
	t.Helper()
	dir := t.TempDir()
	if err := rep.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "REPORT.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Scenarios", "## Baselines", "## Targets", "full backup", "throughput.svg", "ratios.svg"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("REPORT.md lacks %q", want)
		}
	}
	for _, name := range []string{"throughput.svg", "uploaded.svg", "ratios.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := parseSVG(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// parseSVG checks that b is well-formed XML whose root is <svg>.
func parseSVG(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		return errors.New("root element is " + root + "; want svg")
	}
	return nil
}

func TestBarChartEscapes(t *testing.T) {
	svg := barChart(`a <b> & "c"`, []bar{{label: "x<y", value: 2, text: "2 & more"}, {label: "z", value: -1, text: "neg"}}, 1)
	if err := parseSVG([]byte(svg)); err != nil {
		t.Fatalf("chart is not XML: %v\n%s", err, svg)
	}
	if !strings.Contains(svg, "x&lt;y") {
		t.Errorf("label not escaped:\n%s", svg)
	}
}
