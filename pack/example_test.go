package pack_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/sandsnap/sandsnap/chunk"
	"github.com/sandsnap/sandsnap/pack"
)

func Example() {
	enc, err := pack.NewEncoder()
	if err != nil {
		log.Fatal(err)
	}
	defer enc.Close()
	dec, err := pack.NewDecoder()
	if err != nil {
		log.Fatal(err)
	}
	defer dec.Close()

	// Write: Add blobs, then Finish (or Abort).
	w := pack.NewWriter(enc, pack.Options{})
	for _, s := range []string{"module.exports = require('./lib');\n", "{\"name\": \"left-pad\"}\n"} {
		if err := w.Add(chunk.Hash([]byte(s)), pack.DataBlob, []byte(s)); err != nil {
			log.Fatal(err)
		}
	}
	p, err := w.Finish()
	if err != nil {
		log.Fatal(err)
	}
	index, err := pack.EncodeIndex(p.Entries)
	if err != nil {
		log.Fatal(err)
	}

	// Read: entries from the index (or the pack's trailer), then whole
	// frames by range, then blobs checked against their IDs.
	entries, err := pack.DecodeIndex(index)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := pack.ParseTrailer(p.ID, bytes.NewReader(p.Data), int64(len(p.Data))); err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		frame, err := pack.DecodeFrame(dec, e.Frame, p.Data[e.Frame.Offset:e.Frame.End()], nil)
		if err != nil {
			log.Fatal(err)
		}
		b, err := pack.Blob(frame, e)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d bytes: %q\n", e.Length, b)
	}
	// Output:
	// 35 bytes: "module.exports = require('./lib');\n"
	// 21 bytes: "{\"name\": \"left-pad\"}\n"
}
