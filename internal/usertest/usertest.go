// Package usertest runs a test as an unprivileged user, so that file
// permissions apply to it: a mode 0 directory then gives a real EACCES
// even when the tests run as root (as they do in CI). Only tests import
// it.
package usertest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// ID is the uid and gid the test runs as: nobody's on most systems.
const ID = 65534

// env names, in the child process, the test it runs.
const env = "SANDSNAP_USERTEST_RUN"

// Nobody reports whether the calling test should run its body in this
// process. Not running as root, it returns true at once. As root, it runs
// the test again in a child process as uid and gid ID (from a copy of the
// test binary in a directory that user can read, with that directory as
// the working directory), logs the child's output, fails unless the child
// passed, and returns false; in the child it returns true.
func Nobody(t *testing.T) bool {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		if os.Geteuid() == 0 {
			t.Fatal("usertest: the child process still runs as root")
		}
		return true
	}
	if os.Geteuid() != 0 {
		return true
	}
	bin := copyBinary(t)
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: ID, Gid: ID, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("the test as uid %d:\n%s", ID, out)
	if err != nil {
		t.Fatalf("usertest: as uid %d: %v", ID, err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatal("usertest: the child process did not run the test")
	}
	return false
}

// copyBinary copies the running test binary into a fresh directory that
// every user can read and search (the go command builds it in one only
// root can), removed when the test ends.
func copyBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// TempDir's parent is private too.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, filepath.Base(exe))
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
