package repo

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sandsnap/sandsnap/pack"
)

// TestObjectError checks what a program relies on: the object is found
// with errors.As through any wrapping, and the cause with errors.Is.
func TestObjectError(t *testing.T) {
	const name = "packs/ab/ab01"
	tests := []struct {
		err  *ObjectError
		want string
	}{
		{&ObjectError{Op: "read", Object: name, Err: pack.ErrCorrupt}, "read packs/ab/ab01: pack: corrupt"},
		{&ObjectError{Object: name, Err: pack.ErrCorrupt}, "packs/ab/ab01: pack: corrupt"},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("restore /x: %w", tt.err)
		var oe *ObjectError
		if !errors.As(wrapped, &oe) || oe.Object != name {
			t.Errorf("errors.As(%v) = %v; want the object %s", wrapped, oe, name)
		}
		if !errors.Is(wrapped, pack.ErrCorrupt) {
			t.Errorf("errors.Is(%v, pack.ErrCorrupt) = false", wrapped)
		}
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}
