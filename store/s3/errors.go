package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/sandsnap/sandsnap/store"
)

// opSave tells translate what a failed precondition meant.
type opSave struct {
	create  bool // the request had If-None-Match: *
	ifMatch bool // the request had If-Match
}

// translate turns an SDK error from op on name into an error classified by
// the store sentinels (see doc.go). It is the only place that looks inside
// SDK errors. Errors it cannot classify keep their cause (%w) so that
// io.ErrUnexpectedEOF, net and syscall errors stay visible to errors.Is.
func (s *Store) translate(op, name string, err error, o opSave) error {
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("s3: %s %q: %w", op, name, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3: %s %q: %w", op, name, context.DeadlineExceeded)
	}

	var status int
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var code string
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}

	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("s3: %s %q: bucket %q does not exist: %w", op, name, s.bucket, store.ErrPermanent)
	case status == http.StatusForbidden || accessCode(code):
		if code == "" {
			code = "403 Forbidden"
		}
		return fmt.Errorf("s3: %s %q: access denied (check credentials): %s: %w", op, name, code, store.ErrPermanent)
	case code == "NoSuchKey" || status == http.StatusNotFound:
		return fmt.Errorf("s3: %s %q: %w", op, name, store.ErrNotFound)
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed" ||
		code == "ConditionalRequestConflict":
		if o.create {
			return fmt.Errorf("s3: %s %q: %w", op, name, store.ErrExists)
		}
		return fmt.Errorf("s3: %s %q: %w", op, name, store.ErrPrecondition)
	case status == http.StatusRequestedRangeNotSatisfiable || code == "InvalidRange":
		return fmt.Errorf("s3: %s %q: %w", op, name, store.ErrInvalidRange)
	case status == http.StatusNotImplemented || code == "NotImplemented":
		return fmt.Errorf("s3: %s %q: the server does not implement this request: %w", op, name, store.ErrPermanent)
	}

	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		// The SDK's message repeats the operation and attempt count;
		// the dial error alone says what is wrong.
		return fmt.Errorf("s3: %s %q: cannot connect to %s: %w", op, name, s.endpoint, oe)
	}
	return fmt.Errorf("s3: %s %q: %w", op, name, err)
}

// accessCode reports whether an error code means that the credentials
// were refused. Some arrive with status 400 (expired tokens), so the code is
// checked as well as the status; versitygw answers an unknown access key
// with 404 XAdminUserNotFound.
func accessCode(code string) bool {
	switch code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"InvalidToken", "ExpiredToken", "TokenRefreshRequired", "XAdminUserNotFound":
		return true
	}
	return false
}
