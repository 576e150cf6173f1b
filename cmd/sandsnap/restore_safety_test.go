package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandsnap/sandsnap/repo"
)

// TestRestoreUntrusted: restore --untrusted drops a setuid bit, lists it
// as skipped (an object in --json, with the "partial" error naming it on
// stderr; a line in the human output, with nothing on stderr) and exits
// with status 3; the same restore without the flag keeps the bit and
// exits 0.
func TestRestoreUntrusted(t *testing.T) {
	t.Setenv("SANDSNAP_REPO", "")
	repoDir := filepath.Join(t.TempDir(), "repo")
	src := makeSource(t)
	tool := filepath.Join(src, "bin/run.sh")
	if err := unix.Chmod(tool, 0o4755); err != nil {
		t.Fatal(err)
	}
	backupJSON(t, repoDir, src, "--name", "suid")

	dst := filepath.Join(t.TempDir(), "dst")
	out, stderr, code := cli(t, "", "--repo", repoDir, "restore", "suid", dst, "--untrusted", "--json")
	var jerr struct{ Code, Path string }
	if code != exitPartial || json.Unmarshal([]byte(stderr), &jerr) != nil || jerr.Code != "partial" || jerr.Path != "bin/run.sh" {
		t.Fatalf("restore --untrusted: exit %d, stderr %q; want %d and a partial error naming bin/run.sh", code, stderr, exitPartial)
	}
	var got struct {
		Stats struct {
			Skipped []repo.Skipped `json:"skipped"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("restore --json output %q: %v", out, err)
	}
	want := []repo.Skipped{{Path: "bin/run.sh", Reason: "setuid/setgid bits not restored (untrusted)"}}
	if !slices.Equal(got.Stats.Skipped, want) {
		t.Errorf("skipped = %v; want %v", got.Stats.Skipped, want)
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin/run.sh")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("untrusted restore left %v, %v; want no setuid bit", fi.Mode(), err)
	}

	out, stderr, code = cli(t, "", "--repo", repoDir, "restore", "suid", dst, "--untrusted")
	if code != exitPartial || stderr != "" || !strings.Contains(out, "skipped  bin/run.sh: setuid/setgid bits not restored (untrusted)\n") {
		t.Errorf("human restore --untrusted: exit %d, stdout %q, stderr %q; want status 3 and the skipped line", code, out, stderr)
	}

	trusted := filepath.Join(t.TempDir(), "trusted")
	_, stderr, code = cli(t, "", "--repo", repoDir, "restore", "suid", trusted)
	checkStderr(t, stderr, code)
	if fi, err := os.Stat(filepath.Join(trusted, "bin/run.sh")); code != 0 || err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("trusted restore: exit %d, %v; want status 0 and the setuid bit", code, err)
	}
}

// TestRestoreAsNonRoot: a restore by an ordinary user sets the POSIX ACLs
// of the files it creates (it owns them) and reports the file capability
// it is not permitted to set, with exit status 3.
func TestRestoreAsNonRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the restore as another user")
	}
	const nobody = 65534
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(base, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prog", "shared.txt"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	acl := rawPosixACL(6, 1234, 6, 4, 6, 0)                                          // u::rw- u:1234:rw- g::r-- m::rw- o::---
	capability := []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // v2, effective, cap_net_bind_service
	for _, x := range []struct {
		file, name string
		value      []byte
	}{{"shared.txt", "system.posix_acl_access", acl}, {"prog", "security.capability", capability}} {
		if err := unix.Lsetxattr(filepath.Join(src, x.file), x.name, x.value, 0); err != nil {
			t.Skipf("cannot set %s here: %v", x.name, err)
		}
	}
	repoDir := filepath.Join(base, "repo")
	h, _ := backupJSON(t, repoDir, src)
	bin := buildBinary(t, base)
	dst := filepath.Join(base, "dst")
	for _, d := range []string{repoDir, dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nobody, nobody)
		}); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin, "--no-cache", "--repo", repoDir, "restore", h.ID.String(), dst, "--json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitPartial {
		t.Fatalf("restore as uid %d: %v, stderr %q; want exit status %d", nobody, err, stderr.String(), exitPartial)
	}
	var got struct {
		Stats struct {
			Skipped []repo.Skipped `json:"skipped"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("restore --json output %q: %v", stdout.String(), err)
	}
	want := []repo.Skipped{{Path: "prog", Reason: "xattr security.capability not restored: operation not permitted"}}
	if !slices.Equal(got.Stats.Skipped, want) {
		t.Errorf("skipped = %v; want %v", got.Stats.Skipped, want)
	}
	buf := make([]byte, 1024)
	n, err := unix.Lgetxattr(filepath.Join(dst, "shared.txt"), "system.posix_acl_access", buf)
	if err != nil || !bytes.Equal(buf[:n], acl) {
		t.Errorf("ACL restored by uid %d = %x, %v; want %x", nobody, buf[:max(n, 0)], err, acl)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dst, "prog"), "security.capability", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("capability on the restored prog: %v; want none", err)
	}
}

// rawPosixACL encodes u::uo u:id:u g::g m::m o::o as a system.posix_acl_*
// value (version 2, little-endian {tag u16, perm u16, id u32} entries).
func rawPosixACL(uo uint16, id uint32, u, g, m, o uint16) []byte {
	const undefined = 0xffffffff
	b := []byte{2, 0, 0, 0}
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, uo, undefined}, {0x02, u, id}, {0x04, g, undefined}, {0x10, m, undefined}, {0x20, o, undefined}} {
		b = append(b, byte(e.tag), byte(e.tag>>8), byte(e.perm), byte(e.perm>>8),
			byte(e.id), byte(e.id>>8), byte(e.id>>16), byte(e.id>>24))
	}
	return b
}
