package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandsnap/sandsnap/chunk"
)

// sampleSnapshot sets every field; the golden file holds its encoding.
func sampleSnapshot() *Snapshot {
	parent := id("parent snapshot")
	created := time.Date(2026, 11, 29, 10, 45, 8, 123456789, time.UTC)
	expires := created.Add(7 * 24 * time.Hour)
	return &Snapshot{
		Version: Version,
		Tree:    id("root tree"),
		Parent:  &parent,
		Name:    "nightly <main> & ünïcode",
		Dir:     "/workspace/app",
		Host:    "sandbox-7",
		Writer:  "w-1234",
		Created: created,
		Expires: &expires,
		Summary: Summary{Files: 30000, Dirs: 4000, Symlinks: 120, Other: 1, Bytes: 1 << 30, BlobsNew: 17, BytesNew: 1 << 20, Skipped: 2},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	minimal := &Snapshot{Version: Version, Tree: id("t"), Created: time.Unix(0, 1).UTC()}
	zone := time.FixedZone("X", 5*3600+1800)
	local := sampleSnapshot()
	local.Created = local.Created.In(zone)
	e := local.Expires.In(zone)
	local.Expires = &e
	tests := []struct {
		name string
		s    *Snapshot
	}{
		{"full", sampleSnapshot()},
		{"minimal", minimal},
		{"times in another zone", local},
		{"monotonic clock reading", &Snapshot{Version: Version, Tree: id("t"), Created: time.Now()}},
		{"name at limit", &Snapshot{Version: Version, Tree: id("t"), Created: time.Unix(1, 0), Name: strings.Repeat("é", MaxSnapshotNameLen/2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.s.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := DecodeSnapshot(b)
			if err != nil {
				t.Fatalf("DecodeSnapshot(%s): %v", b, err)
			}
			if !got.Created.Equal(tt.s.Created) || got.Created.Location() != time.UTC {
				t.Errorf("Created = %v; want %v in UTC", got.Created, tt.s.Created)
			}
			if (got.Expires == nil) != (tt.s.Expires == nil) || got.Expires != nil && !got.Expires.Equal(*tt.s.Expires) {
				t.Errorf("Expires = %v; want %v", got.Expires, tt.s.Expires)
			}
			want := *tt.s
			want.Created, want.Expires = got.Created, got.Expires
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("decode(encode(s)) = %+v; want %+v", got, &want)
			}
			b2, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("re-encoding differs:\n%s\n%s", b, b2)
			}
		})
	}
}

func TestSnapshotEncodeCanonical(t *testing.T) {
	a := sampleSnapshot()
	b := sampleSnapshot()
	b.Created = b.Created.In(time.FixedZone("Y", -7*3600))
	ea, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ea, eb) {
		t.Errorf("one instant in two zones encodes differently:\n%s\n%s", ea, eb)
	}
	if !bytes.Contains(ea, []byte(`"created":"2026-11-29T10:45:08.123456789Z"`)) {
		t.Errorf("created not in UTC with nanoseconds: %s", ea)
	}
	if !bytes.HasPrefix(ea, []byte(`{"version":1,`)) {
		t.Errorf("encoding does not start with the version: %s", ea)
	}
	if a.Created.Location() != time.UTC || b.Created.Location().String() != "Y" {
		t.Errorf("Encode modified its receiver")
	}
}

func TestValidSnapshotName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"", true}, {"nightly", true}, {"with space and ünïcode 日本", true}, {strings.Repeat("a", 256), true},
		{strings.Repeat("a", 257), false}, {"new\nline", false}, {"tab\t", false}, {"nul\x00", false},
		{"del\x7f", false}, {"c1\u0085", false}, {"bad \xff utf-8", false},
	}
	for _, tt := range tests {
		err := ValidSnapshotName(tt.name)
		if tt.ok && err != nil {
			t.Errorf("ValidSnapshotName(%q) = %v; want nil", tt.name, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadSnapshotName) {
			t.Errorf("ValidSnapshotName(%q) = %v; want ErrBadSnapshotName", tt.name, err)
		}
	}
}

func TestSnapshotEncodeRejects(t *testing.T) {
	with := func(f func(s *Snapshot)) *Snapshot {
		s := sampleSnapshot()
		f(s)
		return s
	}
	tests := []struct {
		name string
		s    *Snapshot
		want error
	}{
		{"nil", nil, ErrInvalid},
		{"version 0", with(func(s *Snapshot) { s.Version = 0 }), ErrVersion},
		{"version 2", with(func(s *Snapshot) { s.Version = 2 }), ErrVersion},
		{"zero tree", with(func(s *Snapshot) { s.Tree = chunk.ID{} }), ErrInvalid},
		{"zero parent", with(func(s *Snapshot) { s.Parent = &chunk.ID{} }), ErrInvalid},
		{"long name", with(func(s *Snapshot) { s.Name = strings.Repeat("a", 257) }), ErrBadSnapshotName},
		{"control in name", with(func(s *Snapshot) { s.Name = "a\nb" }), ErrBadSnapshotName},
		{"invalid UTF-8 dir", with(func(s *Snapshot) { s.Dir = "/a\xff" }), ErrInvalid},
		{"invalid UTF-8 host", with(func(s *Snapshot) { s.Host = "\xff" }), ErrInvalid},
		{"no created", with(func(s *Snapshot) { s.Created = time.Time{} }), ErrInvalid},
		{"expires at created", with(func(s *Snapshot) { e := s.Created; s.Expires = &e }), ErrInvalid},
		{"expires before created", with(func(s *Snapshot) { e := s.Created.Add(-time.Second); s.Expires = &e }), ErrInvalid},
		{"year 10000", with(func(s *Snapshot) {
			s.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			s.Expires = nil
		}), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.Encode(); !errors.Is(err, tt.want) {
				t.Errorf("Encode error = %v; want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeSnapshotRejects(t *testing.T) {
	const tree = `"tree":"` + "0101010101010101010101010101010101010101010101010101010101010101" + `"`
	const created = `"created":"2026-01-02T03:04:05Z"`
	tests := []struct {
		name string
		data string
		want error // besides ErrCorrupt, unless ErrVersion
	}{
		{"empty", ``, nil},
		{"not JSON", `nope`, nil},
		{"null", `null`, nil},
		{"array", `[1]`, nil},
		{"no version", `{` + tree + `,` + created + `}`, nil},
		{"null version", `{"version":null,` + tree + `,` + created + `}`, nil},
		{"version 2", `{"version":2,` + tree + `,` + created + `}`, ErrVersion},
		{"version 0", `{"version":0,` + tree + `,` + created + `}`, ErrVersion},
		{"version string", `{"version":"1",` + tree + `,` + created + `}`, ErrVersion},
		{"no tree", `{"version":1,` + created + `}`, ErrInvalid},
		{"zero tree", `{"version":1,"tree":"` + strings.Repeat("0", 64) + `",` + created + `}`, ErrInvalid},
		{"short tree", `{"version":1,"tree":"0101",` + created + `}`, nil},
		{"no created", `{"version":1,` + tree + `}`, ErrInvalid},
		{"bad created", `{"version":1,` + tree + `,"created":"yesterday"}`, nil},
		{"expires before created", `{"version":1,` + tree + `,` + created + `,"expires":"2026-01-01T00:00:00Z"}`, ErrInvalid},
		{"name with newline", `{"version":1,` + tree + `,` + created + `,"name":"a\nb"}`, ErrBadSnapshotName},
		{"year past 9999 in UTC", `{"version":1,` + tree + `,"created":"9999-12-31T23:00:00-05:00"}`, ErrInvalid},
		{"wrong type", `{"version":1,` + tree + `,` + created + `,"summary":{"files":-1}}`, nil},
		{"trailing data", `{"version":1,` + tree + `,` + created + `} {}`, nil},
		{"too big", `{"version":1,` + tree + `,` + created + `,"x":"` + strings.Repeat("a", MaxSnapshotSize) + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSnapshot([]byte(tt.data))
			if err == nil {
				t.Fatalf("DecodeSnapshot accepted it as %+v", got)
			}
			if tt.want != ErrVersion && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v; want ErrCorrupt", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v; want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeSnapshotAcceptsUnknownFields(t *testing.T) {
	in := `{"future":{"x":[1,2]},"version":1,"tree":"` + id("t").String() + `","dir":"/d","created":"2026-01-02T03:04:05.5+01:00"}`
	s, err := DecodeSnapshot([]byte(in))
	if err != nil {
		t.Fatalf("DecodeSnapshot: %v", err)
	}
	want := time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC)
	if s.Tree != id("t") || s.Dir != "/d" || !s.Created.Equal(want) || s.Created.Location() != time.UTC {
		t.Errorf("decoded %+v", s)
	}
}
