package location

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sandsnap/sandsnap/store"
	"github.com/sandsnap/sandsnap/store/s3"
)

const account = "0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	awsEnv := map[string]string{
		"AWS_ENDPOINT_URL": "http://generic:9000",
		"AWS_REGION":       "eu-west-3",
	}
	s3Env := map[string]string{
		"AWS_ENDPOINT_URL_S3": "http://s3only:9000",
		"AWS_ENDPOINT_URL":    "http://generic:9000",
		"AWS_DEFAULT_REGION":  "ap-south-1",
	}
	r2Env := map[string]string{
		"R2_ACCESS_KEY_ID":     "r2key",
		"R2_SECRET_ACCESS_KEY": "r2secret",
		"AWS_ENDPOINT_URL":     "http://ignored-for-r2:9000",
	}
	r2Endpoint := "https://" + account + ".r2.cloudflarestorage.com"
	tests := []struct {
		location string
		endpoint string // Options.Endpoint
		env      map[string]string
		want     target
		wantErr  string // "" for success
	}{
		// Local folders.
		{location: "/srv/repo", want: target{dir: "/srv/repo"}},
		{location: "repo", want: target{dir: "repo"}},
		{location: "./a:b/repo", want: target{dir: "./a:b/repo"}},
		{location: "file:///srv/repo", want: target{dir: "/srv/repo"}},
		{location: "file://localhost/srv/repo", want: target{dir: "/srv/repo"}},
		{location: "file://otherhost/srv/repo", wantErr: "want file:///absolute/path"},
		{location: "file://", wantErr: "want file:///absolute/path"},

		// S3.
		{location: "s3://bucket", want: target{s3: s3.Config{Bucket: "bucket", Region: "us-east-1"}}},
		{location: "s3://bucket/", want: target{s3: s3.Config{Bucket: "bucket", Region: "us-east-1"}}},
		{location: "s3://bucket/team/repo/", want: target{s3: s3.Config{Bucket: "bucket", Prefix: "team/repo", Region: "us-east-1"}}},
		{location: "s3://my.bucket-1/r", env: awsEnv, want: target{s3: s3.Config{
			Bucket: "my.bucket-1", Prefix: "r", Endpoint: "http://generic:9000", Region: "eu-west-3", PathStyle: true}}},
		{location: "s3://bucket/r", env: s3Env, want: target{s3: s3.Config{
			Bucket: "bucket", Prefix: "r", Endpoint: "http://s3only:9000", Region: "ap-south-1", PathStyle: true}}},
		{location: "s3://bucket/r", env: s3Env, endpoint: "http://flag:1", want: target{s3: s3.Config{
			Bucket: "bucket", Prefix: "r", Endpoint: "http://flag:1", Region: "ap-south-1", PathStyle: true}}},
		{location: "s3://", wantErr: `bucket name ""`},
		{location: "s3:///prefix", wantErr: `bucket name ""`},
		{location: "s3://Bucket/r", wantErr: `bucket name "Bucket"`},
		{location: "s3://b/r", wantErr: `bucket name "b"`},
		{location: "s3://-bucket/r", wantErr: `bucket name "-bucket"`},
		{location: "s3://bucket/a//b", wantErr: "empty"},
		{location: "s3://bucket/a/../b", wantErr: `".."`},
		{location: "s3://bucket/r?region=x", wantErr: "query"},
		{location: "s3://user@bucket/r", wantErr: "user info"},

		// R2.
		{location: "r2://" + account + "/bucket/team/repo", env: r2Env, want: target{s3: s3.Config{
			Bucket: "bucket", Prefix: "team/repo", Endpoint: r2Endpoint, Region: "auto",
			AccessKeyID: "r2key", SecretAccessKey: "r2secret", PathStyle: true}}},
		{location: "r2://" + strings.ToUpper(account) + "/bucket", want: target{s3: s3.Config{
			Bucket: "bucket", Endpoint: r2Endpoint, Region: "auto", PathStyle: true}}},
		{location: "r2://" + account + "/bucket", endpoint: "https://" + account + ".eu.r2.cloudflarestorage.com", want: target{s3: s3.Config{
			Bucket: "bucket", Endpoint: "https://" + account + ".eu.r2.cloudflarestorage.com", Region: "auto", PathStyle: true}}},
		{location: "r2://" + account, wantErr: `bucket name ""`},
		{location: "r2://bucket/repo", wantErr: "hexadecimal account ID"},
		{location: "r2:///bucket/repo", wantErr: "hexadecimal account ID"},
		{location: "r2://" + account + "/bucket", env: map[string]string{"R2_ACCESS_KEY_ID": "k"}, wantErr: "set both"},

		// Mistyped URLs are errors, never local folders.
		{location: "s3:/bucket", wantErr: "did you mean s3://bucket?"},
		{location: "s3:bucket/team", wantErr: "did you mean s3://bucket/team?"},
		{location: "S3:/bucket", wantErr: "did you mean s3://bucket?"},
		{location: "s3//bucket", wantErr: "did you mean s3://bucket?"},
		{location: "s3///bucket/r", wantErr: "did you mean s3://bucket/r?"},
		{location: "r2:x", wantErr: "did you mean r2://x?"},
		{location: "r2//" + account + "/bucket", wantErr: "did you mean r2://" + account + "/bucket?"},
		{location: "file:/srv/repo", wantErr: "did you mean file:///srv/repo?"},
		{location: "file:srv/repo", wantErr: "did you mean file:///srv/repo?"},
		{location: "file//srv/repo", wantErr: "did you mean file:///srv/repo?"},
		{location: "backup:2024", wantErr: `scheme "backup"`},
		{location: "s3:", wantErr: "did you mean s3://?"},
		{location: "xyz://bucket", wantErr: `unknown scheme "xyz"`},
		{location: "xyz://", wantErr: `unknown scheme "xyz"`},
		{location: "https://example.com/bucket", wantErr: `unknown scheme "https"`},
		// ... while folders that merely hold a colon or a scheme's name
		// stay folders.
		{location: "./backup:2024", want: target{dir: "./backup:2024"}},
		{location: "/srv/s3:/x", want: target{dir: "/srv/s3:/x"}},
		{location: "s3", want: target{dir: "s3"}},
		{location: "s3/bucket", want: target{dir: "s3/bucket"}},
		{location: "1:2", want: target{dir: "1:2"}},

		// Others.
		{location: "", wantErr: "empty location"},
		{location: "gs://bucket/repo", wantErr: `unknown scheme "gs"`},
		{location: "S3://bucket/repo", wantErr: `unknown scheme "S3"`},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			got, err := parse(tt.location, tt.endpoint, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.location != "" && !strings.Contains(err.Error(), tt.location) {
					t.Errorf("error %q does not name the location", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "repo")
	if _, err := Open(t.Context(), dir, Options{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open of a missing folder: error = %v, want ErrNotFound", err)
	}
	s, err := Create(t.Context(), "file://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(t.Context(), "config", []byte("c"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.LoadAll(t.Context(), s, "config", 0, 0); err != nil || string(got) != "c" {
		t.Errorf("Load after reopening = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Errorf("the object is not in the folder: %v", err)
	}
}

// TestOpenRemote opens S3 and R2 locations without a network: Open sends
// no request.
func TestOpenRemote(t *testing.T) {
	for _, loc := range []string{"s3://bucket/repo", "r2://" + account + "/bucket/repo"} {
		for _, open := range []func() (store.Store, error){
			func() (store.Store, error) { return Open(t.Context(), loc, Options{Endpoint: "http://127.0.0.1:1"}) },
			func() (store.Store, error) { return Create(t.Context(), loc, Options{Endpoint: "http://127.0.0.1:1"}) },
		} {
			s, err := open()
			if err != nil || s == nil {
				t.Errorf("open %s = %v, %v", loc, s, err)
			}
		}
	}
	if _, err := Open(t.Context(), "s3://b", Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open of a bad location: error = %v, want ErrInvalid", err)
	}
}

// TestTypoCreatesNothing checks that Create, which makes missing local
// folders, refuses a mistyped URL before it creates anything.
func TestTypoCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, loc := range []string{"s3:/bucket", "s3//bucket/repo", "r2:x", "file:/x", "xyz://bucket", "backup:2024"} {
		if _, err := Create(t.Context(), loc, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q) error = %v, want ErrInvalid", loc, err)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("mistyped locations created %v (%v)", entries, err)
	}
}
