package bench

import (
	"math"
	"math/rand/v2"
	"path"
	"strings"
)

// nodeNames is the number of distinct package names at file scale 1, chosen
// so that the tree holds about DefaultNodeFiles files.
const nodeNames = 820

// pkg is one version of one npm package: its files relative to the
// package folder. Installing it twice gives byte-identical copies.
type pkg struct {
	name  string
	vocab uint64
	files []fileSpec
	bin   string // the package's bin script, if it has one
}

var scopes = []string{"@types", "@babel", "@aws-sdk", "@smithy", "@esbuild", "@jest", "@rollup", "@typescript-eslint"}

// planNode adds a node_modules tree under prefix: every package once at the
// top, some in a second version nested under a dependent, some vendored again
// (same version) under other dependents, a few nested two deep.
func planNode(p *plan, prefix string, seed uint64, countScale, sizeScale float64) {
	r := newRand(seed, 0x6e6f6465)
	n := max(2, int(math.Round(nodeNames*countScale)))
	taken := map[string]bool{}
	pkgs := make([]*pkg, n)
	variants := make([]*pkg, n) // a second version, or nil
	for i := range pkgs {
		name := uniqueName(taken, joinWords(r, 1+r.IntN(2), "-"), "")
		if r.IntN(10) == 0 {
			name = scopes[r.IntN(len(scopes))] + "/" + name
		}
		pkgs[i] = makePkg(r, name, nil)
		if r.IntN(100) < 15 {
			variants[i] = makePkg(r, name, pkgs[i])
		}
	}
	for range max(1, int(math.Round(6*sizeScale))) {
		k := pkgs[r.IntN(n)]
		rel := uniqueName(map[string]bool{}, "dist/"+path.Base(k.name)+".min", ".js")
		// 1.5 to 5 MiB at full size; smaller in quick runs.
		size := max(4<<10, int64(float64(3<<19+r.IntN(7<<19))*min(1, 5*sizeScale)))
		k.files = append(k.files, fileSpec{rel: rel, size: size, kind: kindMinJS, vocab: k.vocab, seed: r.Uint64()})
	}

	installed := map[string]bool{}
	var nested []string
	install := func(dir string, k *pkg) {
		if installed[dir] {
			return
		}
		installed[dir] = true
		for _, f := range k.files {
			f.rel = dir + "/" + f.rel
			p.add(f)
		}
	}
	for _, k := range pkgs {
		install(prefix+"/"+k.name, k)
		if k.bin != "" && r.IntN(2) == 0 {
			link := prefix + "/.bin/" + strings.TrimSuffix(path.Base(k.bin), ".js")
			if !installed[link] {
				installed[link] = true
				p.add(fileSpec{rel: link, link: "../" + k.name + "/" + k.bin})
			}
		}
	}
	nest := func(k *pkg) {
		parent := pkgs[r.IntN(n)].name
		if parent == k.name {
			return
		}
		dir := prefix + "/" + parent + "/node_modules/" + k.name
		if len(nested) > 0 && r.IntN(8) == 0 { // two deep
			dir = nested[r.IntN(len(nested))] + "/node_modules/" + k.name
		}
		if !installed[dir] {
			nested = append(nested, dir)
		}
		install(dir, k)
	}
	for i, k := range pkgs {
		if v := variants[i]; v != nil {
			for range 1 + r.IntN(2) {
				nest(v)
			}
		}
		if r.IntN(100) < 10 {
			for range 1 + r.IntN(3) {
				nest(k)
			}
		}
	}
	p.add(fileSpec{rel: prefix + "/.package-lock.json", size: int64(180 * len(installed)), kind: kindJSON, vocab: seed, seed: seed})
}

// makePkg makes a package; with a base it makes another version of base,
// which shares most files with it.
func makePkg(r *rand.Rand, name string, base *pkg) *pkg {
	if base != nil {
		k := &pkg{name: name, vocab: base.vocab, bin: base.bin}
		for _, f := range base.files {
			if f.rel == "package.json" || (f.kind != kindLicense && r.IntN(100) < 40) {
				f.seed = r.Uint64()
				f.size = max(1, f.size*int64(80+r.IntN(40))/100)
			}
			k.files = append(k.files, f)
		}
		return k
	}
	k := &pkg{name: name, vocab: r.Uint64()}
	add := func(rel string, size int64, kind contentKind, mode uint32) {
		k.files = append(k.files, fileSpec{rel: rel, size: size, kind: kind, vocab: k.vocab, seed: r.Uint64(), mode: mode})
	}
	add("package.json", lognormal(r, 1200, 0.5, 300, 20000), kindJSON, 0)
	if r.IntN(10) != 0 {
		// Few distinct license texts: most LICENSE files equal some other.
		seed := uint64(r.IntN(40))
		k.files = append(k.files, fileSpec{rel: "LICENSE", size: int64(len(license(seed))), kind: kindLicense, seed: seed})
	}
	if r.IntN(10) != 0 {
		add("README.md", lognormal(r, 3000, 1.0, 200, 200<<10), kindMD, 0)
	}
	if r.IntN(5) == 0 {
		add("CHANGELOG.md", lognormal(r, 8000, 1.0, 500, 300<<10), kindMD, 0)
	}
	if r.IntN(10) == 0 {
		k.bin = "bin/" + path.Base(name) + ".js"
		add(k.bin, lognormal(r, 1500, 0.6, 200, 20000), kindJS, 0o755)
	}
	layouts := []string{"lib", "dist", "src", "dist/esm", "dist/cjs", "build", "types", ""}
	dirs := []string{layouts[r.IntN(len(layouts))], layouts[r.IntN(len(layouts))]}
	count := int(lognormal(r, 11, 1.1, 1, 900))
	for range count / 15 {
		dirs = append(dirs, path.Join(dirs[r.IntN(len(dirs))], codeWords[r.IntN(len(codeWords))]))
	}
	taken := map[string]bool{}
	for range count {
		dir := dirs[r.IntN(len(dirs))]
		base := codeWords[r.IntN(len(codeWords))]
		if r.IntN(3) == 0 {
			base += "-" + codeWords[r.IntN(len(codeWords))]
		}
		size := lognormal(r, 2048, 1.8, 30, 1<<20)
		kind, ext := kindJS, ".js"
		switch e := r.IntN(100); {
		case e < 50:
		case e < 68:
			kind, ext, size = kindDTS, ".d.ts", max(30, size*3/5)
		case e < 80:
			kind, ext, size = kindMap, ".js.map", min(1<<20, size*3/2)
		case e < 86:
			ext = ".mjs"
		case e < 89:
			ext = ".cjs"
		case e < 94:
			kind, ext = kindJSON, ".json"
		default:
			kind, ext = kindMD, ".md"
		}
		add(uniqueName(taken, path.Join(dir, base), ext), size, kind, 0)
	}
	return k
}
