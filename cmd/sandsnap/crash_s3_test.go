package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/repo"
)

// TestCrashesS3 kills real `sandsnap backup` and `sandsnap gc` processes
// with SIGKILL at pseudo-random moments over a real S3 server. After every
// kill each committed snapshot must restore: the ones whose backup exited
// 0 byte for byte to the tree it backed up, and one that a killed backup
// nevertheless committed to the tree that backup read (the tree does not
// change while a backup runs). verify --read-data must pass after every
// kill, and at the end a normal backup and two gc runs must succeed and
// keep all of it restorable. The killed writers' leases hold their packs
// for the lease TTL, so gc may delete nothing here; that is safe too.
func TestCrashesS3(t *testing.T) {
	endpoint, bucket := s3TestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	phase("built")
	var suffix [8]byte
	crand.Read(suffix[:])
	global := []string{"--repo", "s3://" + bucket + "/crashes-" + hex.EncodeToString(suffix[:]), "--endpoint", endpoint, "--no-cache"}
	run := func(args ...string) []byte {
		t.Helper()
		out := proc(t, ctx, bin, append(global, args...)...)
		if t.Failed() {
			t.FailNow()
		}
		return out
	}

	src := filepath.Join(tmp, "src")
	rng := rand.New(rand.NewPCG(7, 8))
	files := 0
	write := func(name string) {
		b := make([]byte, 1<<10+rng.IntN(48<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	add := func(n int) {
		for range n {
			write(fmt.Sprintf("d%d/f%d", files%5, files))
			files++
		}
	}
	// mutate rewrites two existing files, removes one and adds two.
	mutate := func() {
		for range 2 {
			write(fmt.Sprintf("d%d/f%d", 0, 5*rng.IntN((files+4)/5)))
		}
		i := rng.IntN(files)
		if err := os.Remove(filepath.Join(src, fmt.Sprintf("d%d/f%d", i%5, i))); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		add(2)
	}

	// trees holds, by snapshot ID, the files of the tree each snapshot
	// must restore to.
	trees := map[string]map[string][]byte{}
	// expiring holds the snapshots backed up with a TTL that has passed.
	expiring := map[string]bool{}
	check := func(when string) {
		t.Helper()
		var listed []repo.Handle
		if err := json.Unmarshal(run("ls", "--all", "--json"), &listed); err != nil {
			t.Fatalf("%s: ls --all --json: %v", when, err)
		}
		seen := map[string]bool{}
		for _, h := range listed {
			seen[h.ID.String()] = true
		}
		for id := range trees {
			if !seen[id] {
				t.Errorf("%s: snapshot %s is not listed", when, id)
			}
		}
		for _, h := range listed {
			id := h.ID.String()
			if expiring[id] {
				continue // gc removes it; restore refuses it
			}
			want, ok := trees[id]
			if !ok {
				t.Fatalf("%s: snapshot %s listed but no backup made it", when, id)
			}
			dst := filepath.Join(t.TempDir(), "dst")
			run("restore", id, dst)
			got := crashFiles(t, dst)
			if len(got) != len(want) {
				t.Fatalf("%s: restore %s: %d files, want %d", when, id, len(got), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("%s: restore %s: %s differs", when, id, k)
				}
			}
		}
		run("verify", "--read-data")
	}
	listIDs := func() map[string]bool {
		var listed []repo.Handle
		if err := json.Unmarshal(run("ls", "--all", "--json"), &listed); err != nil {
			t.Fatalf("ls --all --json: %v", err)
		}
		ids := map[string]bool{}
		for _, h := range listed {
			ids[h.ID.String()] = true
		}
		return ids
	}
	backup := func() {
		var h repo.Handle
		if err := json.Unmarshal(run("backup", src, "--json"), &h); err != nil || h.ID.IsZero() {
			t.Fatalf("backup: handle %+v, %v", h, err)
		}
		trees[h.ID.String()] = crashFiles(t, src)
	}

	const rounds = 24
	add(36)
	backup()
	phase("first backup")
	// A snapshot that expires at once, of files no other snapshot has:
	// the first gc removes it and condemns its packs, so that the gc runs
	// of the loop (the first one before any backup was killed, whose lease
	// would hold the packs) delete them and can be killed doing it.
	for i := range 12 {
		write(fmt.Sprintf("expiring/f%d", i))
	}
	var h repo.Handle
	if err := json.Unmarshal(run("backup", src, "--json", "--ttl", "1ms"), &h); err != nil || h.ID.IsZero() {
		t.Fatalf("backup --ttl 1ms: handle %+v, %v", h, err)
	}
	expiring[h.ID.String()] = true
	if err := os.RemoveAll(filepath.Join(src, "expiring")); err != nil {
		t.Fatal(err)
	}
	// Store time may count whole seconds: wait until it has passed the
	// snapshot's expiry.
	time.Sleep(1500 * time.Millisecond)
	t.Logf("gc: %s", run("gc", "--json"))
	phase("expiring snapshot backed up, gc")
	killed, committedByKilled := 0, 0
	for round := range rounds {
		// Against a local S3 server a backup of this tree or a gc takes
		// about 30 to 60 ms (more on a loaded machine).
		delay := time.Duration(rng.IntN(61)) * time.Millisecond
		args := []string{"gc"}
		var tree map[string][]byte
		var before map[string]bool
		if round%2 == 1 {
			mutate()
			tree = crashFiles(t, src)
			before = listIDs()
			args = []string{"backup", src, "--json"}
		}
		cmd := exec.CommandContext(ctx, bin, append(global, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var err error
		wasKilled := false
		select {
		case err = <-exited:
		case <-time.After(delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err = <-exited
			wasKilled = err != nil
		}
		ran := time.Since(began)
		switch {
		case !wasKilled && err != nil:
			t.Fatalf("round %d: sandsnap %v exited before its kill: %v\nstderr: %s", round, args, err, errb.String())
		case wasKilled:
			killed++
		}
		if tree != nil {
			if !wasKilled {
				var h repo.Handle
				if err := json.Unmarshal(out.Bytes(), &h); err != nil || h.ID.IsZero() {
					t.Fatalf("round %d: backup output %q: %v", round, out.String(), err)
				}
				trees[h.ID.String()] = tree
			} else {
				// A killed backup may still have written its snapshot;
				// it backed up exactly tree.
				for id := range listIDs() {
					if !before[id] {
						trees[id] = tree
						committedByKilled++
					}
				}
			}
		}
		check(fmt.Sprintf("round %d (%v after %v, killed %v)", round, args[0], delay, wasKilled))
		phase(fmt.Sprintf("round %d: %s, kill after %v, ran %v, killed %v", round, args[0], delay, ran.Round(time.Millisecond), wasKilled))
	}
	t.Logf("%d of %d processes killed; %d snapshots committed by killed backups", killed, rounds, committedByKilled)

	mutate()
	backup()
	run("gc")
	run("gc")
	check("after the final gc runs")
	phase("final backup, two gc runs, checked")
}
