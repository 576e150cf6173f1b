package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
)

// TestClassify maps errors wrapped as the packages wrap them onto codes,
// for the kinds the binary tests cannot easily cause (a refused target, a
// full disk, a newer repository ...).
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		code string
		exit int
	}{
		{fmt.Errorf("repo: restore target /: %w", repo.ErrTargetRefused), "refused", exitRefused},
		{fmt.Errorf("repo: backup /w: %w: restore of 4d09 not finished", repo.ErrIncomplete), "incomplete", exitRefused},
		{fmt.Errorf("%w: snapshot declares 5 files but its trees hold 9", repo.ErrLimit), "limit", exitRefused},
		{fmt.Errorf("repo: snapshot s: %w", manifest.ErrVersion), "unsupported", exitError},
		{fmt.Errorf("repo: read packs/ab/ab: %w", pack.ErrCorrupt), "corrupt", exitCorrupt},
		{fmt.Errorf("repo: %w: 12 files at work/a/../../x", repo.ErrUnsafePath), "corrupt", exitCorrupt},
		{fmt.Errorf("repo: read packs/ab/ab: local: load %q: %w", "packs/ab/ab", store.ErrNotFound), "corrupt", exitCorrupt},
		{fmt.Errorf("repo: gc: %w", repo.ErrConcurrentGC), "conflict", exitError},
		{fmt.Errorf("restore /w: %w", &fs.PathError{Op: "write", Path: "/w/big", Err: syscall.ENOSPC}), "no_space", exitError},
		{fmt.Errorf("backup: %w", &fs.PathError{Op: "open", Path: "/w/secret", Err: syscall.EACCES}), "permission", exitError},
		{&os.LinkError{Op: "link", Old: "/w/a", New: "/w/b", Err: syscall.EPERM}, "permission", exitError},
		{fmt.Errorf("repo: %w", repo.ErrAmbiguous), "invalid_argument", exitUsage},
		{usageErrorf("--ttl: bad"), "invalid_argument", exitUsage},
		{partial([]repo.Skipped{{Path: "s", Reason: "socket not supported"}}), "partial", exitPartial},
		{errors.New("something nobody foresaw"), "internal", exitError},
	}
	for _, tt := range tests {
		if k := classify(context.Background(), tt.err); k.code != tt.code || k.exit != tt.exit {
			t.Errorf("classify(%v) = %s, %d; want %s, %d", tt.err, k.code, k.exit, tt.code, tt.exit)
		}
	}
	// An interrupted command is interrupted, whatever it returned.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k := classify(ctx, fmt.Errorf("repo: read config: %w", pack.ErrCorrupt)); k.code != "interrupted" || k.exit != exitInterrupted {
		t.Errorf("classify under a cancelled context = %s, %d; want interrupted, %d", k.code, k.exit, exitInterrupted)
	}
}

// TestSubject checks where the JSON error's path and object come from.
func TestSubject(t *testing.T) {
	obj := "packs/ab/" + strings.Repeat("ab", 32)
	tests := []struct {
		err          error
		path, object string
	}{
		{fmt.Errorf("backup source: %w", &fs.PathError{Op: "stat", Path: "/w", Err: fs.ErrNotExist}), "/w", ""},
		{&os.LinkError{Op: "link", Old: "/w/a", New: "/w/b", Err: syscall.EXDEV}, "/w/b", ""},
		{fmt.Errorf("restore: %w", &repo.ObjectError{Op: "read", Object: obj, Err: pack.ErrCorrupt}), "", obj},
		// The innermost store message names the object, through a
		// retry's double wrapping.
		{fmt.Errorf("repo: read: %w", fmt.Errorf("retry: get %q: %w (after attempt 1 failed: %w)", obj, context.Canceled,
			fmt.Errorf("s3: get %q: %w", obj, store.ErrNotFound))), "", obj},
		{&verifyError{url: "/r", n: 2, first: repo.Problem{Object: obj, Path: "work/x", Err: "missing"}}, "work/x", obj},
		{errors.New("nothing to name"), "", ""},
	}
	for _, tt := range tests {
		if p, o := subject(tt.err); p != tt.path || o != tt.object {
			t.Errorf("subject(%v) = %q, %q; want %q, %q", tt.err, p, o, tt.path, tt.object)
		}
	}
}

// TestPlainMessage checks that package prefixes go and paths stay, also
// paths that hold a package's name.
func TestPlainMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"repo: restore target /x: repo: not a directory", "restore target /x: not a directory"},
		{"repo: read config: local: load \"config\": store: object not found", "read config: load \"config\": object not found"},
		{"open /tmp/repo: permission denied", "open /tmp/repo: permission denied"},
		{"backup source /srv/my repo: x: repo: not a directory", "backup source /srv/my repo: x: not a directory"},
		{"restore /w:\n  line two", "restore /w: line two"},
	}
	for _, tt := range tests {
		if got := plainMessage(errors.New(tt.in)); got != tt.want {
			t.Errorf("plainMessage(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
