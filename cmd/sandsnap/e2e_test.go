package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds sandsnap and runs it as a real process, to check what
// in-process tests cannot: exit statuses from os.Exit and that stderr
// holds exactly one error line.
func TestBinary(t *testing.T) {
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	repoDir := filepath.Join(tmp, "repo")
	src := makeSource(t)
	handleFile := filepath.Join(tmp, "handle.json")

	type step struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string // substring, if set
		stderr string // substring, if set
	}
	steps := []step{
		{name: "backup", args: []string{"backup", src, "--json", "--name", "e2e"}, stdout: `"id"`},
		{name: "restore from stdin", args: []string{"restore", "-", filepath.Join(tmp, "dst")}, stdout: "restored"},
		{name: "verify", args: []string{"verify", "--read-data"}, stdout: "0 problems"},
		{name: "missing dir", args: []string{"backup", filepath.Join(tmp, "nope")}, code: 1, stderr: "no such file or directory"},
		{name: "unknown handle", args: []string{"restore", "nothing-by-this-name", filepath.Join(tmp, "x")}, code: exitNotFound, stderr: "not found"},
		{name: "usage", args: []string{"restore"}, code: 2, stderr: "missing HANDLE"},
		{name: "no repository", args: []string{"--repo", tmp + "/empty", "ls"}, code: exitNoRepository, stderr: "no sandsnap repository"},
	}
	var handle []byte
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			cmd := exec.Command(bin, s.args...)
			cmd.Env = append(os.Environ(), "SANDSNAP_REPO="+repoDir)
			cmd.Stdin = bytes.NewReader(handle)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != s.code {
				t.Errorf("exit %d; want %d (stderr %q)", code, s.code, errb.String())
			}
			checkStderr(t, errb.String(), code)
			if !strings.Contains(out.String(), s.stdout) || !strings.Contains(errb.String(), s.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q in them", out.String(), errb.String(), s.stdout, s.stderr)
			}
			if s.name == "backup" {
				handle = out.Bytes()
				var h map[string]any
				if err := json.Unmarshal(handle, &h); err != nil {
					t.Fatalf("handle %q: %v", handle, err)
				}
				if err := os.WriteFile(handleFile, handle, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	sameTree(t, src, filepath.Join(tmp, "dst"))
}

// buildBinary builds sandsnap into dir (extra go build flags first, such
// as -race) for the tests that run it as real processes; it skips under
// -short.
func buildBinary(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(dir, "sandsnap")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return bin
}

// s3TestServer returns the endpoint and bucket of the S3 server that
// scripts/test.sh starts, or skips the test without one.
func s3TestServer(t *testing.T) (endpoint, bucket string) {
	t.Helper()
	endpoint, bucket = os.Getenv("SANDSNAP_TEST_S3_ENDPOINT"), os.Getenv("SANDSNAP_TEST_S3_BUCKET")
	if endpoint == "" || bucket == "" {
		t.Skip("SANDSNAP_TEST_S3_ENDPOINT or SANDSNAP_TEST_S3_BUCKET not set: run scripts/test.sh to start the S3 server")
	}
	return endpoint, bucket
}
