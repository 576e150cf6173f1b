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
	if testing.Short() {
		t.Skip("builds the binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sandsnap")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
		{name: "unknown handle", args: []string{"restore", "nothing-by-this-name", filepath.Join(tmp, "x")}, code: 1, stderr: "not found"},
		{name: "usage", args: []string{"restore"}, code: 2, stderr: "missing HANDLE"},
		{name: "no repository", args: []string{"--repo", tmp + "/empty", "ls"}, code: 1, stderr: "no sandsnap repository"},
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
