package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Fatal runtime errors. When the Go runtime dies (out of memory, a panic
// on a goroutine that run's recover cannot see), it writes its report and
// every goroutine's stack to file descriptor 2. debug.SetTraceback("none")
// cannot shorten that: it never goes below the GOTRACEBACK default
// ("single"), and a runtime throw such as "fatal error: out of memory"
// prints full stacks whatever the setting (runtime.gotraceback forces
// level 2 for throws; measured with Go 1.26, GOTRACEBACK=none included).
// Only another process can keep the dump off the terminal.
//
// So, unless GOTRACEBACK is set (someone wants the stacks), main starts a
// watcher: this binary again, with watcherEnv set, reading a pipe that
// becomes the runtime's descriptor 2. The commands write to the real
// stderr (a duplicate of the original descriptor), so the pipe carries
// only what the runtime and libraries write there. The watcher copies it
// through until a report begins ("panic: " or "fatal error: "), keeps the
// report's own lines, and replaces the stack dump after them with one
// line. It ignores SIGINT, SIGTERM and SIGQUIT (a terminal sends them to
// the whole process group; the watcher must outlive the process it
// watches) and exits when the pipe closes.

// watcherEnv marks the watcher process.
const watcherEnv = "SANDSNAP_INTERNAL_STDERR_WATCHER"

// exitIfWatcher runs the watcher and exits if this process is one; it
// returns at once otherwise.
func exitIfWatcher() {
	if os.Getenv(watcherEnv) == "" {
		return
	}
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	filterFatal(os.Stdin, os.Stderr)
	os.Exit(0)
}

// guardStderr starts the watcher (see the top of this file) and returns
// the file the commands write their messages to. Where the watcher cannot
// start, or should not, it returns os.Stderr and changes nothing. Nobody
// waits for the watcher: it exits when this process does, so a command
// takes no longer for it (measured: about 20 ms of CPU, in the watcher,
// for its start). As PID 1 of a container, though, this process's exit
// kills every other process in it, the watcher included, before it could
// pass a crash report on: there the runtime keeps descriptor 2.
func guardStderr() *os.File {
	if os.Getenv("GOTRACEBACK") != "" || os.Getpid() == 1 {
		return os.Stderr
	}
	fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.Stderr
	}
	stderr := os.NewFile(uintptr(fd), "/dev/stderr")
	pr, pw, err := os.Pipe()
	if err != nil {
		stderr.Close()
		return os.Stderr
	}
	defer pw.Close()
	w := exec.Command("/proc/self/exe")
	w.Env = append(os.Environ(), watcherEnv+"=1")
	w.Stdin, w.Stderr = pr, stderr
	err = w.Start()
	pr.Close()
	if err == nil {
		err = unix.Dup3(int(pw.Fd()), 2, 0)
	}
	if err != nil {
		if w.Process != nil {
			w.Process.Kill()
			w.Wait()
		}
		stderr.Close()
		return os.Stderr
	}
	return stderr
}

// filterFatal copies r to w line by line, except that the stack dump
// following a runtime report ("panic: ..." or "fatal error: ...", up to
// its first empty line) is replaced by one line.
func filterFatal(r io.Reader, w io.Writer) {
	br := bufio.NewReader(r)
	inReport, dropped := false, 0
	for {
		line, err := br.ReadString('\n')
		switch {
		case line == "":
		case dropped > 0 || (inReport && dumpStarts(line)):
			dropped++
		default:
			inReport = inReport || strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")
			io.WriteString(w, line)
		}
		if err != nil {
			break
		}
	}
	if dropped > 0 {
		fmt.Fprintf(w, "sandsnap: crashed; the runtime's stack dump (%d lines) is left out, GOTRACEBACK=all shows it\n", dropped)
	}
}

// dumpStarts reports whether line, inside a runtime report, ends it: the
// empty line before the stacks, or a stack's first line.
func dumpStarts(line string) bool {
	return strings.TrimSpace(line) == "" || strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "runtime stack:")
}
