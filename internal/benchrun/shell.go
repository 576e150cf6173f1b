package benchrun

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Baseline is one run of a standard tool on the workload.
type Baseline struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	// Skipped says why the baseline did not run; the numbers are then 0.
	Skipped     string  `json:"skipped,omitempty"`
	WallSeconds float64 `json:"wall_seconds"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	PeakRSS     int64   `json:"peak_rss_bytes"`
	// OutputBytes is the size of what the tool wrote that matters: the
	// archive, or the bytes a backup added to restic's repository.
	OutputBytes int64 `json:"output_bytes,omitempty"`
}

// shellRun runs script with bash (pipefail) and measures it. extraEnv is
// added to the environment. Stdout is discarded unless the script
// redirects it.
func shellRun(ctx context.Context, name, script string, extraEnv []string) (Baseline, error) {
	b := Baseline{Name: name, Command: script}
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail; "+script)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	syscall.Sync() // as runner.measure: earlier writes are not this run's
	before := childCPU()
	start := time.Now()
	err := cmd.Run()
	b.WallSeconds = time.Since(start).Seconds()
	b.CPUSeconds = (childCPU() - before).Seconds()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			b.PeakRSS = ru.Maxrss * 1024 // Linux reports KiB
		}
	}
	if err != nil {
		return b, fmt.Errorf("baseline %s: %w: %s", name, err, lastLine(stderr.String()))
	}
	return b, nil
}

// childCPU is the user+sys CPU of every reaped child so far.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return tvDuration(ru.Utime) + tvDuration(ru.Stime)
}

// quote makes s one word for bash.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// fileSize is the size of path, or 0.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// treeSize is the apparent size of the regular files under dir.
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// copyTree copies src to a new directory dst with cp -a.
func copyTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, lastLine(string(out)))
	}
	return nil
}
