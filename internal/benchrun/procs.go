package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sandsnap/sandsnap/store/cache"
	"github.com/sandsnap/sandsnap/store/counting"
)

// sandsnapPkg is the CLI that the fork-N scenarios run as processes.
const sandsnapPkg = "github.com/sandsnap/sandsnap/cmd/sandsnap"

// buildSandsnap builds the sandsnap binary into the work directory, so
// that the fork-N scenarios run N real processes as N sandboxes would. It
// returns a note for the report; if the build fails (no Go toolchain, or
// not run inside the module) e.bin stays "" and the fork-N scenarios run
// in this process instead.
func (e *env) buildSandsnap(ctx context.Context) string {
	bin := filepath.Join(e.work, "sandsnap")
	e.logf("building %s", sandsnapPkg)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, sandsnapPkg).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		e.logf("go build %s failed, running the fork-N scenarios in this process: %s", sandsnapPkg, msg)
		return "The sandsnap binary could not be built (" + firstLine(msg) + "): the fork-N scenarios ran as N goroutines in the harness's process, so their peak RSS is that of N operations together."
	}
	e.bin = bin
	return "The fork-N scenarios ran as N concurrent `sandsnap` processes (the CLI built at the start of the run), started together: wall is from the first start to the last exit; CPU sums the children's rusage; peak RSS is the largest child's rusage Maxrss (a per-process peak, as each sandbox is its own process); disk rd sums their inblock; rchar is not measured (-); the store traffic sums the requests each child reports in its --json output, which include opening the repository (config, index) in every process."
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// cacheArgs are the global flags that give a child process the host
// cache folder dir, or none if dir is "".
func cacheArgs(dir string) []string {
	if dir == "" {
		return []string{"--no-cache"}
	}
	return []string{"--cache", dir}
}

// procOutput is the part of `sandsnap backup --json` and `restore --json`
// output that the fork-N scenarios use.
type procOutput struct {
	Stats struct {
		Files    int64            `json:"files"`
		Bytes    int64            `json:"bytes"`
		Requests map[string]int64 `json:"requests"`
		Cache    *cache.Stats     `json:"cache"`
	} `json:"stats"`
}

// measureProcs runs `sandsnap --repo URL <args[i]...>` for every i at once,
// waits for all and returns their metrics and --json outputs; see the note
// of buildSandsnap for what each metric is.
func (e *env) measureProcs(ctx context.Context, args [][]string) (Metrics, []procOutput, error) {
	syscall.Sync() // as measure does: earlier writeback is not this step's
	cmds := make([]*exec.Cmd, len(args))
	outs := make([]bytes.Buffer, len(args))
	errs := make([]bytes.Buffer, len(args))
	for i, a := range args {
		cmds[i] = exec.CommandContext(ctx, e.bin, append([]string{"--repo", e.repoURL}, a...)...)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &errs[i]
	}
	start := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, started := range cmds[:i] {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return Metrics{}, nil, fmt.Errorf("start %s: %w", c, err)
		}
	}
	var failed []error
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w: %s", strings.Join(args[i], " "), err, strings.TrimSpace(errs[i].String())))
		}
	}
	wall := time.Since(start)
	if len(failed) > 0 {
		return Metrics{}, nil, failed[0]
	}
	m := Metrics{WallSeconds: wall.Seconds()}
	res := make([]procOutput, len(args))
	var w work
	for i, c := range cmds {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.UserSeconds += tvDuration(ru.Utime).Seconds()
			m.SysSeconds += tvDuration(ru.Stime).Seconds()
			m.PeakRSS = max(m.PeakRSS, int64(ru.Maxrss)*1024) // KiB on Linux
			m.DiskReadBytes += int64(ru.Inblock) * 512
		}
		if err := json.Unmarshal(outs[i].Bytes(), &res[i]); err != nil {
			return Metrics{}, nil, fmt.Errorf("%s: --json output: %w", strings.Join(args[i], " "), err)
		}
		st := res[i].Stats
		w.files += st.Files
		w.bytes += st.Bytes
		m.Store = m.Store.Add(requestStats(st.Requests))
	}
	m.Files, m.Bytes = w.files, w.bytes
	m.FilesPerSec, m.MBPerSec = rates(w, m.WallSeconds)
	return m, res, nil
}

// requestStats converts the CLI's request counts (repo.Stats.Requests).
func requestStats(r map[string]int64) counting.Stats {
	return counting.Stats{
		Puts: r["put"], Gets: r["get"], Heads: r["head"], Lists: r["list"], Deletes: r["delete"],
		BytesUp: r["bytes_up"], BytesDown: r["bytes_down"],
	}
}

// sumCache adds up the host cache counts of the outputs, nil if none has
// any.
func sumCache(outs []procOutput) *cache.Stats {
	var sum *cache.Stats
	for _, o := range outs {
		if c := o.Stats.Cache; c != nil {
			if sum == nil {
				sum = new(cache.Stats)
			}
			sum.Hits += c.Hits
			sum.Misses += c.Misses
			sum.Fills += c.Fills
			sum.BytesFilled += c.BytesFilled
			sum.Evictions += c.Evictions
		}
	}
	return sum
}
