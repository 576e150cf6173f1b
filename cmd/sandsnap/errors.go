package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/sandsnap/sandsnap/manifest"
	"github.com/sandsnap/sandsnap/pack"
	"github.com/sandsnap/sandsnap/repo"
	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/location"
)

// Exit statuses: restic's where restic has one (0, 1, 3, 10, 130; its 11
// and 12, a lock and a wrong password, are left unused), then one per
// failure a program reacts to differently. kinds maps errors onto them;
// the README's table and --help list them.
const (
	exitOK           = 0
	exitError        = 1 // any other failure: the JSON code says which
	exitUsage        = 2 // bad flags, arguments or location
	exitPartial      = 3 // finished, but some entries were skipped
	exitNoRepository = 10
	exitNotFound     = 13 // no snapshot has that handle
	exitExpired      = 14
	exitCorrupt      = 15 // verify found problems, or damaged or missing data
	exitRefused      = 16 // a restore target, a snapshot over the limits, an incomplete restore
	exitInterrupted  = 130
)

// exitHelp is the exit status section of the root command's --help.
const exitHelp = `Exit status: 0 success; 1 failure; 2 bad flags, arguments or location;
3 finished but some entries were skipped (listed in the output);
10 no repository at the location; 13 snapshot not found; 14 snapshot
expired; 15 corrupt or missing data (also verify finding problems);
16 refused (restore target, limits, incomplete restore); 130 interrupted.
With --json a failure prints one JSON object on stderr:
{"code", "message", "path", "object", "exit"} (see the README).`

// kind is one class of failure: a stable code for programs, its exit
// status, and the Cloudflare Sandbox SDK code it corresponds to, if any.
type kind struct {
	code       string
	exit       int
	cloudflare string
	// is reports whether err is of this kind (errors.Is on sentinels).
	is func(err error) bool
}

// sentinels returns an is func matching any of errs with errors.Is.
func sentinels(errs ...error) func(error) bool {
	return func(err error) bool {
		for _, s := range errs {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
}

// kinds are tried in order: the first that matches names the failure. A
// command-line error, an interrupt and a partial result are recognised
// before (see classify); "internal" is what matches nothing.
var kinds = []kind{
	{"invalid_argument", exitUsage, "INVALID_BACKUP_CONFIG", sentinels(location.ErrInvalid, manifest.ErrBadSnapshotName, repo.ErrAmbiguous)},
	{"no_repository", exitNoRepository, "", func(err error) bool {
		return errors.Is(err, repo.ErrNoRepository) || permanent(err, "does not exist") // a missing bucket
	}},
	{"expired", exitExpired, "BACKUP_EXPIRED", sentinels(repo.ErrExpired)},
	{"not_found", exitNotFound, "BACKUP_NOT_FOUND", sentinels(repo.ErrSnapshotNotFound)},
	{"refused", exitRefused, "", sentinels(repo.ErrTargetRefused)},
	{"incomplete", exitRefused, "", sentinels(repo.ErrIncomplete)},
	{"limit", exitRefused, "", sentinels(repo.ErrLimit)},
	{"permission", exitError, "PERMISSION_DENIED", func(err error) bool {
		return errors.Is(err, fs.ErrPermission) || permanent(err, "access denied")
	}},
	{"unsupported", exitError, "", func(err error) bool {
		return sentinels(repo.ErrVersion, pack.ErrVersion, manifest.ErrVersion)(err) || permanent(err, "does not implement")
	}},
	// A store object that is missing is damage too: something the
	// repository refers to is gone.
	{"corrupt", exitCorrupt, "", sentinels(errVerifyProblems, pack.ErrCorrupt, manifest.ErrCorrupt, manifest.ErrInvalid,
		repo.ErrBadConfig, repo.ErrConfigMissing, repo.ErrUnsafePath, repo.ErrBlobNotFound, store.ErrNotFound)},
	{"exists", exitError, "", sentinels(store.ErrExists)},
	{"conflict", exitError, "", sentinels(repo.ErrConcurrentGC, repo.ErrLeaseLapsed, store.ErrPrecondition)},
	{"no_space", exitError, "NO_SPACE", sentinels(syscall.ENOSPC, syscall.EDQUOT)},
	{"not_directory", exitError, "NOT_DIRECTORY", sentinels(repo.ErrNotDir, syscall.ENOTDIR)},
	{"path_not_found", exitError, "FILE_NOT_FOUND", sentinels(fs.ErrNotExist)},
	{"unavailable", exitError, "", unavailable},
}

// The kinds recognised before the table, and the fallback.
var (
	kindInvalid     = kinds[0]
	kindPartial     = kind{code: "partial", exit: exitPartial}
	kindInterrupted = kind{code: "interrupted", exit: exitInterrupted, cloudflare: "OPERATION_INTERRUPTED"}
	kindInternal    = kind{code: "internal", exit: exitError, cloudflare: "INTERNAL_ERROR"}
)

// permanent reports whether err is a store error no retry can fix whose
// message says what: store/s3 has no finer sentinel for a missing bucket,
// refused credentials or an unimplemented request (yet), only its fixed
// wording.
func permanent(err error, says string) bool {
	return errors.Is(err, store.ErrPermanent) && strings.Contains(err.Error(), says)
}

// unavailable reports whether err is the store being out of reach after
// the retries: a network error, or an HTTP 5xx or 429 answer.
func unavailable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		code := status.HTTPStatusCode()
		return code >= 500 || code == 429
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// classify names the failure err of a command run under ctx.
func classify(ctx context.Context, err error) kind {
	var ue usageError
	switch {
	// Whatever error an interrupted command returns (a cancelled read,
	// a wrapped "operation was canceled"), the cause is the signal.
	case ctx.Err() != nil:
		return kindInterrupted
	case errors.Is(err, errPartial):
		return kindPartial
	case errors.As(err, &ue):
		return kindInvalid
	}
	for _, k := range kinds {
		if k.is(err) {
			return k
		}
	}
	return kindInternal
}

// errVerifyProblems marks verify's failure: it found problems, listed in
// its report.
var errVerifyProblems = errors.New("verify found problems")

// verifyError is verify's failure: how many problems, and the first, whose
// object and path the JSON error carries.
type verifyError struct {
	url   string
	n     int
	first repo.Problem
}

func (e *verifyError) Error() string {
	return fmt.Sprintf("verify found %d problems in %s (first: %s)", e.n, e.url, e.first)
}

func (e *verifyError) Is(target error) bool { return target == errVerifyProblems }

// errPartial is returned by a command that finished and printed its
// result but skipped some entries: exit status 3, no error line (the
// output already lists what was skipped).
var errPartial = errors.New("some entries were skipped")

// skippedError is errPartial with the entries skipped, so that the JSON
// error can name the first.
type skippedError struct{ skipped []repo.Skipped }

func (e *skippedError) Error() string {
	return fmt.Sprintf("finished, but skipped %d entries (first: %s)", len(e.skipped), e.skipped[0])
}

func (e *skippedError) Is(target error) bool { return target == errPartial }

// partial returns errPartial for the entries skipped, or nil if none were.
func partial(skipped []repo.Skipped) error {
	if len(skipped) == 0 {
		return nil
	}
	return &skippedError{skipped}
}

// jsonError is what a failed command prints on stderr with --json: one
// object on one line. Path and Object are null when the error names
// neither.
type jsonError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Path    *string `json:"path"`
	Object  *string `json:"object"`
	Exit    int     `json:"exit"`
}

// writeJSONError prints err as a jsonError of kind k.
func writeJSONError(w io.Writer, k kind, err error) {
	e := jsonError{Code: k.code, Message: plainMessage(err), Exit: k.exit}
	p, o := subject(err)
	if p != "" {
		e.Path = &p
	}
	if o != "" {
		e.Object = &o
	}
	b, merr := json.Marshal(e)
	if merr != nil { // cannot happen: strings and ints only
		b = []byte(`{"code":"internal","message":"encoding the error failed","path":null,"object":null,"exit":1}`)
	}
	fmt.Fprintf(w, "%s\n", b)
}

// subject returns the file path and the repository object err concerns,
// as far as its chain tells: a *fs.PathError or *os.LinkError path, a
// *repo.ObjectError object, the first problem verify found, the first
// entry a backup skipped, or the object a store named in its message.
func subject(err error) (path, object string) {
	var (
		pe *fs.PathError
		le *os.LinkError
		oe *repo.ObjectError
		ve *verifyError
		se *skippedError
	)
	switch {
	case errors.As(err, &se):
		path = se.skipped[0].Path
	case errors.As(err, &ve):
		path, object = ve.first.Path, ve.first.Object
	case errors.As(err, &pe):
		path = pe.Path
	case errors.As(err, &le):
		path = le.New
	}
	if errors.As(err, &oe) {
		object = oe.Object
	} else if object == "" {
		object = storeObject(err)
	}
	return path, object
}

// storeMessage matches the message a store wraps its errors in:
// `s3: get "packs/ab/…": …` (also local, mem, cache and retry).
var storeMessage = regexp.MustCompile(`^(?:s3|local|mem|cache|retry): [a-z-]+ "([^"]+)"`)

// storeObject returns the object named by the innermost store error in
// err's chain, or "".
func storeObject(err error) string {
	if err == nil {
		return ""
	}
	var inner []error
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		inner = []error{u.Unwrap()}
	case interface{ Unwrap() []error }:
		inner = u.Unwrap()
	}
	for _, e := range inner {
		if name := storeObject(e); name != "" {
			return name
		}
	}
	if m := storeMessage.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// packagePrefix matches a Go package's prefix at the start of a message
// or of one of its ": "-separated parts.
var packagePrefix = regexp.MustCompile(`(^|: )(?:repo|store|pack|manifest|chunk|location|cache|retry|s3|local|mem|counting|faulty): `)

// plainMessage is err's message for people: one line, without the package
// prefixes that wrapping piles up ("repo: restore target /x: repo: not a
// directory" reads "restore target /x: not a directory"). The library's
// errors keep them (they help in logs); the CLI strips them here, once.
func plainMessage(err error) string {
	s := oneLine(err.Error())
	for {
		t := packagePrefix.ReplaceAllString(s, "$1")
		if t == s {
			return s
		}
		s = t
	}
}
