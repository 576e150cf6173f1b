package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzDecodeTree(f *testing.F) {
	for _, tr := range []*Tree{{}, sampleTree(), benchTree(20)} {
		b, err := tr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add(raw(byte(Version), 1, rawFIFO("a"), byte(0)))
	f.Add(raw(byte(Version), 2, rawFIFO("b"), rawFIFO("a")))
	f.Add(raw(byte(Version), []byte{0x80, 0x00}))
	f.Add(raw(byte(Version), uint64(1)<<40))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := DecodeTree(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v matches neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		b, err := tr.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("encode(decode(data)) != data:\n got %x\nwant %x", b, data)
		}
		tr2, err := DecodeTree(b)
		if err != nil || !reflect.DeepEqual(tr, tr2) {
			t.Fatalf("decode(encode(t)) != t: %v", err)
		}
		for i := range tr.Nodes {
			if n, ok := tr.Find(tr.Nodes[i].Name); !ok || n != &tr.Nodes[i] {
				t.Fatalf("Find(%q) misses entry %d", tr.Nodes[i].Name, i)
			}
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	b, err := sampleSnapshot().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"tree":"` + id("t").String() + `","dir":"","created":"2026-01-02T03:04:05.5+01:00","x":1}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"tree":"` + id("t").String() + `","created":"9999-12-31T23:00:00-05:00"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v matches neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		b, err := s.Encode()
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := DecodeSnapshot(b)
		if err != nil {
			t.Fatalf("encoding of a decoded snapshot does not decode: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("decode(encode(s)) != s:\n%+v\n%+v", s, s2)
		}
		b2, err := s2.Encode()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable: %v\n%s\n%s", err, b, b2)
		}
	})
}
