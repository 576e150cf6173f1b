package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// crashEnv asks the test binary, started by TestFatalReport, to guard its
// stderr as main does and then die of a real runtime error.
const crashEnv = "SANDSNAP_TEST_CRASH"

// crashIfAsked is called by TestMain; it returns unless crashEnv is set.
func crashIfAsked() {
	mode := os.Getenv(crashEnv)
	if mode == "" {
		return
	}
	os.Stderr = guardStderr()
	switch mode {
	case "panic":
		go func() { panic("boom on a goroutine") }()
		time.Sleep(time.Minute)
	case "oom":
		// Cap the address space a little above what is mapped now (the
		// watcher already runs, unlimited), then allocate until the
		// runtime fails: "fatal error: out of memory".
		lim := unix.Rlimit{Cur: vmSize() + 256<<20, Max: unix.RLIM_INFINITY}
		if err := unix.Setrlimit(unix.RLIMIT_AS, &lim); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(1)
		}
		var keep [][]byte
		for {
			keep = append(keep, make([]byte, 32<<20))
			runtime.KeepAlive(keep)
		}
	}
	os.Exit(1)
}

// vmSize is this process's mapped address space in bytes.
func vmSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb uint64
		if _, err := fmt.Sscanf(sc.Text(), "VmSize: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// TestFatalReport: a runtime crash (out of memory, a panic on a
// goroutine) prints the runtime's report and one line instead of the
// goroutine dump; with GOTRACEBACK set, the dump is printed as before.
func TestFatalReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes that run out of memory")
	}
	tests := []struct {
		mode, report string
	}{
		{"oom", "fatal error: out of memory\n"},
		{"panic", "panic: boom on a goroutine\n"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			if tt.mode == "oom" && raceEnabled {
				t.Skip("the race detector's shadow memory makes an address-space limit fail elsewhere")
			}
			stderr, code := crashProcess(t, tt.mode, "")
			if code != 2 || !strings.Contains(stderr, tt.report) || !strings.Contains(stderr, "sandsnap: crashed; the runtime's stack dump (") {
				t.Errorf("exit %d, stderr %q; want status 2, %q and the one line about the dump", code, stderr, tt.report)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, ".go:") {
				t.Errorf("stderr has a stack dump: %q", stderr)
			}
			stderr, _ = crashProcess(t, tt.mode, "single")
			if !strings.Contains(stderr, tt.report) || !strings.Contains(stderr, "goroutine ") {
				t.Errorf("with GOTRACEBACK=single, stderr %q; want the report and the dump", stderr)
			}
		})
	}
}

// crashProcess runs this test binary in crash mode and returns its stderr
// (once the watcher too has closed it) and exit status.
func crashProcess(t *testing.T, mode, traceback string) (string, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+mode, "GOTRACEBACK="+traceback)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("crash %s: %v; want an exit status", mode, err)
	}
	return stderr.String(), ee.ExitCode()
}

// TestFilterFatal: output before a runtime report passes through whole;
// the report's lines stay; the dump after them becomes one line.
func TestFilterFatal(t *testing.T) {
	in := "GODEBUG trace line\n" +
		"panic: first [recovered]\n\tpanic: second\n[signal SIGSEGV: segmentation violation]\n\n" +
		"goroutine 1 [running]:\nmain.main()\n\t/src/main.go:10 +0x1d\n\n" +
		"goroutine 7 [chan receive]:\nmain.worker()\n"
	var out bytes.Buffer
	filterFatal(strings.NewReader(in), &out)
	want := "GODEBUG trace line\npanic: first [recovered]\n\tpanic: second\n[signal SIGSEGV: segmentation violation]\n" +
		"sandsnap: crashed; the runtime's stack dump (7 lines) is left out, GOTRACEBACK=all shows it\n"
	if out.String() != want {
		t.Errorf("filterFatal =\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	filterFatal(strings.NewReader("no newline at the end"), &out)
	if out.String() != "no newline at the end" {
		t.Errorf("filterFatal kept %q of a plain line", out.String())
	}
}
