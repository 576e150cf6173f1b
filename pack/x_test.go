package pack

import "testing"

func BenchmarkXSmallEncode(b *testing.B) {
	enc := newTestEncoder(b)
	src := jsText(&splitmix{s: 1}, 2000)
	var dst []byte
	for b.Loop() {
		dst = enc.EncodeAll(src, dst[:0])
	}
}
