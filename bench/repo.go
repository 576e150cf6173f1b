package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path"
)

// planRepo adds a source checkout at the root: source files in a few nested
// folders, project files, and a .git whose pack and loose objects are
// incompressible (they are zlib-compressed in a real repository).
func planRepo(p *plan, seed uint64, countScale, sizeScale float64) {
	r := newRand(seed, 0x7265706f)
	vocab := r.Uint64()
	text := func(rel string, size int64, kind contentKind) {
		p.add(fileSpec{rel: rel, size: size, kind: kind, vocab: vocab, seed: r.Uint64()})
	}
	n := max(5, int(math.Round(DefaultRepoFiles*countScale)))
	text("README.md", 6000, kindMD)
	text("package.json", 2000, kindJSON)
	text("package-lock.json", max(4<<10, int64(400<<10*countScale)), kindJSON)
	text("tsconfig.json", 600, kindJSON)
	text(".gitignore", 120, kindMD)
	p.add(fileSpec{rel: "LICENSE", size: int64(len(license(7))), kind: kindLicense, seed: 7})

	dirs := []string{"src", "src", "src", "test", "docs", "scripts", "packages"}
	for range max(3, n/12) {
		parent := dirs[int(float64(len(dirs))*math.Pow(r.Float64(), 2))]
		dirs = append(dirs, path.Join(parent, codeWords[r.IntN(len(codeWords))]))
	}
	taken := map[string]bool{}
	for range n {
		dir := dirs[r.IntN(len(dirs))]
		base := codeWords[r.IntN(len(codeWords))]
		if r.IntN(2) == 0 {
			base += "_" + codeWords[r.IntN(len(codeWords))]
		}
		kind, ext, mode := kindJS, ".ts", uint32(0o644)
		switch e := r.IntN(100); {
		case e < 45:
		case e < 55:
			ext = ".tsx"
		case e < 70:
			ext = ".js"
		case e < 75:
			kind, ext = kindJSON, ".json"
		case e < 83:
			kind, ext = kindMD, ".md"
		case e < 88:
			kind, ext = kindDTS, ".d.ts"
		case e < 95:
			ext = ".go"
		default:
			ext, mode = ".sh", 0o755
		}
		rel := uniqueName(taken, path.Join(dir, base), ext)
		p.add(fileSpec{rel: rel, size: lognormal(r, 3000, 1.1, 40, 400<<10), kind: kind, vocab: vocab, seed: r.Uint64(), mode: mode})
	}
	planGit(p, r, n, countScale, sizeScale)
}

func hexID(r *rand.Rand) string {
	return fmt.Sprintf("%016x%016x%08x", r.Uint64(), r.Uint64(), r.Uint32())
}

func planGit(p *plan, r *rand.Rand, nsrc int, countScale, sizeScale float64) {
	lit := func(rel, data string) {
		p.add(fileSpec{rel: ".git/" + rel, size: int64(len(data)), kind: kindLiteral, data: data})
	}
	head := hexID(r)
	lit("HEAD", "ref: refs/heads/main\n")
	lit("config", "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"+
		"[remote \"origin\"]\n\turl = https://github.com/example/project.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"+
		"[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n")
	lit("description", "Unnamed repository; edit this file 'description' to name the repository.\n")
	lit("refs/heads/main", head+"\n")
	lit("refs/remotes/origin/HEAD", "ref: refs/remotes/origin/main\n")
	lit("info/exclude", "# git ls-files --others --exclude-from=.git/info/exclude\n")
	lit("logs/HEAD", "0000000000000000000000000000000000000000 "+head+" Dev <dev@example.com> 1704164645 +0000\tclone: from https://github.com/example/project.git\n")
	packed := "# pack-refs with: peeled fully-peeled sorted\n"
	for i := range 20 {
		packed += fmt.Sprintf("%s refs/tags/v1.%d.0\n", hexID(r), i)
	}
	lit("packed-refs", packed)
	// The same sample hooks in every clone: fixed seeds.
	for i, h := range []string{"applypatch-msg", "commit-msg", "post-update", "pre-applypatch", "pre-commit",
		"pre-push", "pre-rebase", "pre-receive", "prepare-commit-msg", "update", "fsmonitor-watchman", "push-to-checkout"} {
		p.add(fileSpec{rel: ".git/hooks/" + h + ".sample", size: int64(400 + 300*i), kind: kindJS, vocab: 1, seed: uint64(i), mode: 0o755})
	}
	p.add(fileSpec{rel: ".git/index", size: int64(100 * nsrc), kind: kindRandom, seed: r.Uint64()})
	packSize := max(64<<10, int64(DefaultRepoPack*sizeScale))
	pack := ".git/objects/pack/pack-" + hexID(r)
	for _, f := range []struct {
		ext  string
		size int64
	}{{".pack", packSize}, {".idx", packSize / 50}, {".rev", packSize / 200}} {
		p.add(fileSpec{rel: pack + f.ext, size: f.size, kind: kindRandom, seed: r.Uint64(), mode: 0o444})
	}
	for range int(math.Round(200 * countScale)) {
		id := hexID(r)
		p.add(fileSpec{rel: ".git/objects/" + id[:2] + "/" + id[2:], size: lognormal(r, 600, 1.2, 30, 64<<10), kind: kindRandom, seed: r.Uint64(), mode: 0o444})
	}
}
