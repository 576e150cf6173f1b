package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/s3"
)

func main() {
	endpoint := flag.String("endpoint", os.Getenv("SANDSNAP_TEST_S3_ENDPOINT"), "S3 endpoint URL")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to wait for the server")
	flag.Parse()
	if *endpoint == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: s3ready -endpoint URL [-timeout D] BUCKET...")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, bucket := range flag.Args() {
		if err := create(ctx, *endpoint, bucket); err != nil {
			fmt.Fprintf(os.Stderr, "s3ready: %v\n", err)
			os.Exit(1)
		}
	}
}

// create makes bucket, retrying until the server answers or ctx ends.
func create(ctx context.Context, endpoint, bucket string) error {
	s, err := s3.New(ctx, s3.Config{
		Bucket:    bucket,
		Endpoint:  endpoint,
		Region:    os.Getenv("AWS_REGION"),
		PathStyle: true,
	})
	if err != nil {
		return err
	}
	for {
		err := s.CreateBucket(ctx)
		if err == nil || errors.Is(err, store.ErrPermanent) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server at %s not ready: %w", endpoint, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
