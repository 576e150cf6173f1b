//go:build !unix

package cache

import "context"

// lock stands in for flock where there is none: one lock per Store, which
// excludes the goroutines of this process only (see the package comment).
func (s *Store) lock(ctx context.Context, key string) (func(), error) {
	select {
	case s.procLock <- struct{}{}:
		return func() { <-s.procLock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
