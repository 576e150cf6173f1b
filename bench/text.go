package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The word lists are read-only data for the text generators.
var (
	// codeWords make identifiers: camelCase joins of one to three of them.
	codeWords = []string{
		"get", "set", "parse", "node", "buffer", "stream", "token", "handler", "config", "cache",
		"emit", "listener", "path", "file", "resolve", "map", "list", "item", "schema", "format",
		"encode", "decode", "byte", "value", "key", "options", "state", "event", "error", "result",
		"create", "update", "delete", "read", "write", "open", "close", "source", "target", "module",
		"request", "response", "header", "body", "query", "params", "context", "store", "entry", "index",
		"visit", "walk", "tree", "scope", "binding", "plugin", "loader", "compile", "transform", "render",
		"element", "component", "props", "child", "parent", "range", "offset", "length", "size", "count",
		"match", "pattern", "regex", "string", "number", "array", "object", "function", "promise", "async",
		"queue", "task", "worker", "timer", "retry", "limit", "flag", "mode", "type", "kind",
		"name", "id", "hash", "digest", "sign", "verify", "check", "assert", "normalize", "merge",
	}
	// jsWords are the identifiers every JavaScript file uses.
	jsWords = []string{
		"this", "exports", "module", "require", "undefined", "null", "true", "false", "Object", "Array",
		"String", "Number", "Promise", "Symbol", "Error", "TypeError", "JSON", "Math", "console", "process",
		"length", "prototype", "push", "call", "apply", "bind", "keys", "forEach", "map", "filter",
		"options", "callback", "err", "result", "value", "key", "index", "data", "args", "self",
	}
	locals = []string{"a", "b", "c", "e", "t", "n", "r", "i", "o", "s", "u", "l", "cb", "fn", "el", "ctx"}
	// proseWords make comments, READMEs and descriptions.
	proseWords = []string{
		"the", "a", "of", "to", "and", "is", "in", "that", "for", "it", "with", "as", "be", "on", "not",
		"this", "are", "by", "or", "from", "an", "if", "can", "when", "which", "will", "returns", "value",
		"function", "object", "string", "array", "default", "option", "options", "callback", "error",
		"used", "use", "should", "must", "may", "all", "each", "new", "file", "path", "module", "package",
		"install", "version", "support", "node", "browser", "config", "set", "get", "true", "false",
		"example", "note", "see", "also", "only", "otherwise", "given", "input", "output", "first", "last",
		"number", "stream", "data", "event", "listener", "handler", "method", "property", "instance",
		"create", "creates", "called", "passed", "argument", "arguments", "type", "types", "list", "map",
	}
	jsTypes   = []string{"string", "number", "boolean", "void", "any", "unknown", "never", "object", "Buffer", "Date"}
	b64       = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	minIdents = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$"
)

// textGen appends generated text to out. One textGen serves one goroutine;
// it is re-seeded for every segment of every file.
type textGen struct {
	pcg       *rand.PCG
	vocab     []string // the identifiers of one package
	vocabSeed uint64
	hasVocab  bool
	out       []byte
	depth     int
}

func newTextGen() *textGen {
	return &textGen{pcg: rand.NewPCG(0, 0)}
}

// seed resets the generator for one segment of one file of one package.
func (g *textGen) seed(vocab, file, segment uint64) {
	g.setVocab(vocab)
	g.pcg.Seed(file, segment^0x9e3779b97f4a7c15)
	g.out = g.out[:0]
	g.depth = 0
}

// setVocab makes the identifiers a package uses throughout its files, so
// that they repeat across a package as they do in real code.
func (g *textGen) setVocab(seed uint64) {
	if g.hasVocab && g.vocabSeed == seed {
		return
	}
	g.pcg.Seed(seed, 0x7ab)
	n := 40 + g.intn(60)
	g.vocab = g.vocab[:0]
	for range n {
		var id []byte
		parts := 1 + g.intn(3)
		for p := range parts {
			w := codeWords[g.intn(len(codeWords))]
			if p > 0 || g.intn(8) == 0 {
				id = append(id, w[0]-'a'+'A')
				id = append(id, w[1:]...)
			} else {
				id = append(id, w...)
			}
		}
		if g.intn(10) == 0 {
			id = append([]byte{'_'}, id...)
		}
		g.vocab = append(g.vocab, string(id))
	}
	g.vocabSeed, g.hasVocab = seed, true
}

// skew picks an index below n, small ones far more often (a rough Zipf).
func (g *textGen) skew(n int) int {
	u := float64(g.pcg.Uint64()>>11) / (1 << 53)
	return int(float64(n) * u * u * u)
}

// intn returns a number in [0, n); it calls the PCG directly, which is
// several times faster than going through rand.Rand.
func (g *textGen) intn(n int) int {
	return int((g.pcg.Uint64() >> 32) * uint64(n) >> 32)
}

func (g *textGen) word(list []string) { g.out = append(g.out, list[g.skew(len(list))]...) }

func (g *textGen) ident() {
	switch k := g.intn(20); {
	case k < 10:
		g.word(g.vocab)
	case k < 15:
		g.word(jsWords)
	default:
		g.word(locals)
	case k < 19:
		g.word(locals)
	case g.intn(3) == 0: // a fresh name: real code is not all repetition
		n := 3 + g.intn(8)
		for range n {
			g.out = append(g.out, minIdents[g.intn(26)])
		}
	}
}

func (g *textGen) str() {
	g.out = append(g.out, '\'')
	if g.intn(3) == 0 {
		g.word(g.vocab)
	} else {
		g.sentence(1 + g.intn(5))
	}
	g.out = append(g.out, '\'')
}

func (g *textGen) num() {
	switch g.intn(4) {
	case 0:
		g.out = strconv.AppendInt(g.out, int64(g.intn(10)), 10)
	case 1:
		g.out = strconv.AppendInt(g.out, int64(g.intn(100000)), 10)
	case 2:
		if g.intn(4) != 0 {
			g.out = append(g.out, '0')
			break
		}
		g.out = append(g.out, "0x"...)
		g.out = strconv.AppendUint(g.out, uint64(uint32(g.pcg.Uint64())), 16)
	default:
		g.out = strconv.AppendInt(g.out, int64(g.intn(256)), 10)
	}
}

func (g *textGen) expr() {
	switch g.intn(8) {
	case 0:
		g.str()
	case 1:
		g.num()
	case 2, 3:
		g.ident()
		g.out = append(g.out, '.')
		g.ident()
	case 4:
		g.ident()
		g.out = append(g.out, '(')
		g.ident()
		g.out = append(g.out, ", "...)
		g.expr()
		g.out = append(g.out, ')')
	default:
		g.ident()
	}
}

func (g *textGen) sentence(n int) {
	for i := range n {
		if i > 0 {
			g.out = append(g.out, ' ')
		}
		if g.intn(12) == 0 {
			g.word(g.vocab)
		} else {
			g.word(proseWords)
		}
	}
}

func (g *textGen) indent() {
	for range g.depth {
		g.out = append(g.out, "  "...)
	}
}

func (g *textGen) args() {
	n := g.intn(4)
	for i := range n {
		if i > 0 {
			g.out = append(g.out, ", "...)
		}
		g.ident()
	}
}

// js appends readable JavaScript until out holds at least limit bytes.
func (g *textGen) js(limit int) {
	for len(g.out) < limit {
		g.jsStatement()
	}
}

// jsIdioms are lines that real JavaScript repeats everywhere.
var jsIdioms = []string{
	"if (err) return cb(err);",
	"return this;",
	"'use strict';",
	"if (typeof options === 'function') {",
	"return new Promise(function (resolve, reject) {",
	"Object.defineProperty(exports, \"__esModule\", { value: true });",
	"var _this = this;",
	"module.exports = exports.default;",
	"return result;",
	"});",
	"}",
	"} catch (err) {",
	"try {",
	"options = options || {};",
	"const self = this;",
	"callback(null, result);",
	"throw err;",
	"return Promise.resolve();",
	"var __importDefault = (this && this.__importDefault) || function (mod) {",
	"exports.default = void 0;",
	"return false;",
	"return true;",
	"break;",
	"default:",
	"if (!Array.isArray(value)) {",
	"for (const key of Object.keys(obj)) {",
	"return value;",
	"if (value === undefined) {",
	"var hasOwnProperty = Object.prototype.hasOwnProperty;",
	"return typeof value === 'string';",
}

func (g *textGen) jsStatement() {
	g.indent()
	if g.intn(4) == 0 {
		g.word(jsIdioms)
		g.out = append(g.out, '\n')
		return
	}
	switch k := g.intn(22); k {
	case 0:
		g.out = append(g.out, "// "...)
		g.sentence(3 + g.intn(10))
	case 1:
		g.out = append(g.out, "/**\n"...)
		g.indent()
		g.out = append(g.out, " * "...)
		g.sentence(5 + g.intn(12))
		g.out = append(g.out, '\n')
		g.indent()
		g.out = append(g.out, " * @param {"...)
		g.word(jsTypes)
		g.out = append(g.out, "} "...)
		g.ident()
		g.out = append(g.out, '\n')
		g.indent()
		g.out = append(g.out, " */"...)
	case 2, 3:
		g.out = append(g.out, "const "...)
		g.ident()
		if g.depth == 0 {
			g.out = append(g.out, " = require('"...)
			g.word(g.vocab)
			g.out = append(g.out, "');"...)
		} else {
			g.out = append(g.out, " = "...)
			g.expr()
			g.out = append(g.out, ';')
		}
	case 4, 5:
		if g.depth > 3 {
			g.out = append(g.out, "return "...)
			g.expr()
			g.out = append(g.out, ';')
			break
		}
		g.out = append(g.out, "function "...)
		g.ident()
		g.out = append(g.out, '(')
		g.args()
		g.out = append(g.out, ") {"...)
		g.depth++
	case 6:
		if g.depth > 4 {
			g.out = append(g.out, "break;"...)
			break
		}
		g.out = append(g.out, "if ("...)
		g.expr()
		g.out = append(g.out, [...]string{" === ", " !== ", " == null || ", " && "}[g.intn(4)]...)
		g.expr()
		g.out = append(g.out, ") {"...)
		g.depth++
	case 7, 8:
		if g.depth > 0 {
			g.depth--
			g.out = g.out[:len(g.out)-2]
			g.out = append(g.out, '}')
		}
	case 9, 10:
		if g.intn(2) == 0 {
			g.out = append(g.out, "this."...)
		}
		g.ident()
		g.out = append(g.out, '.')
		g.ident()
		g.out = append(g.out, " = "...)
		g.expr()
		g.out = append(g.out, ';')
	case 11:
		g.out = append(g.out, "return "...)
		g.expr()
		g.out = append(g.out, ';')
	case 12:
		g.out = append(g.out, "var "...)
		g.ident()
		g.out = append(g.out, " = { "...)
		g.ident()
		g.out = append(g.out, ": "...)
		g.expr()
		g.out = append(g.out, ", "...)
		g.ident()
		g.out = append(g.out, ": "...)
		g.expr()
		g.out = append(g.out, " };"...)
	case 13:
		if g.depth > 4 {
			g.out = append(g.out, "continue;"...)
			break
		}
		g.out = append(g.out, "for (let i = 0; i < "...)
		g.ident()
		g.out = append(g.out, ".length; i++) {"...)
		g.depth++
	case 14:
		g.ident()
		g.out = append(g.out, ".push("...)
		g.expr()
		g.out = append(g.out, ");"...)
	case 15:
		g.out = append(g.out, "throw new TypeError("...)
		g.str()
		g.out = append(g.out, ");"...)
	case 16:
		if g.depth == 0 {
			g.out = append(g.out, "module.exports."...)
		} else {
			g.out = append(g.out, "exports."...)
		}
		g.ident()
		g.out = append(g.out, " = "...)
		g.ident()
		g.out = append(g.out, ';')
	case 17:
		if g.depth > 3 {
			g.out = append(g.out, "return;"...)
			break
		}
		g.ident()
		g.out = append(g.out, ".prototype."...)
		g.ident()
		g.out = append(g.out, " = function ("...)
		g.args()
		g.out = append(g.out, ") {"...)
		g.depth++
	case 18:
		if g.depth > 0 {
			g.out = g.out[:len(g.out)-2]
			g.out = append(g.out, "} else {"...)
		} else {
			g.out = append(g.out, "'use strict';"...)
		}
	default:
		g.ident()
		g.out = append(g.out, [...]string{" = ", " += ", " = !", " = await "}[g.intn(4)]...)
		g.expr()
		g.out = append(g.out, [...]string{" + ", " * ", " || ", " - "}[g.intn(4)]...)
		g.expr()
		g.out = append(g.out, ';')
	}
	g.out = append(g.out, '\n')
}

// minIdioms are the fragments minifiers emit over and over.
var minIdioms = []string{
	"function(e,t,n){", "function(e){", "return ", "void 0", "null", ".prototype.", "Object.defineProperty(",
	"!0", "!1", "typeof ", "===", "&&", "||", "}),", "});", "})", "this.", "arguments", "new Error(",
	".length", ".call(this,", "e.exports=", "__esModule", "Symbol.iterator", "Array.isArray(",
	"Object.keys(", ".apply(", "instanceof ", "try{", "}catch(e){", ".then(function(",
}

// minjs appends minified JavaScript: short names, no whitespace.
func (g *textGen) minjs(limit int) {
	for len(g.out) < limit {
		if g.intn(3) == 0 {
			g.word(minIdioms)
			continue
		}
		switch g.intn(10) {
		case 0:
			g.out = append(g.out, "function("...)
			g.minArgs()
			g.out = append(g.out, "){"...)
		case 1:
			g.out = append(g.out, "}"...)
		case 2:
			g.out = append(g.out, "var "...)
			g.minIdent()
			g.out = append(g.out, '=')
			g.minExpr()
			g.out = append(g.out, ';')
		case 3:
			g.out = append(g.out, "return "...)
			g.minExpr()
			g.out = append(g.out, ';')
		case 4:
			g.out = append(g.out, "if("...)
			g.minExpr()
			g.out = append(g.out, [...]string{"===", "!==", "&&", "||", "<"}[g.intn(5)]...)
			g.minExpr()
			g.out = append(g.out, ')')
		case 5:
			g.str()
			g.out = append(g.out, ',')
		default:
			g.minExpr()
			g.out = append(g.out, [...]string{";", ",", ";", "}"}[g.intn(4)]...)
		}
	}
}

func (g *textGen) minIdent() {
	g.out = append(g.out, minIdents[g.skew(len(minIdents))])
	if g.intn(3) == 0 {
		g.out = append(g.out, minIdents[g.skew(len(minIdents))])
	}
}

func (g *textGen) minArgs() {
	n := g.intn(4)
	for i := range n {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.minIdent()
	}
}

func (g *textGen) minExpr() {
	switch g.intn(6) {
	case 0:
		g.minIdent()
		g.out = append(g.out, '.')
		g.word(g.vocab)
	case 1:
		g.minIdent()
		g.out = append(g.out, '(')
		g.minArgs()
		g.out = append(g.out, ')')
	case 2:
		g.num()
	case 3:
		g.minIdent()
		g.out = append(g.out, '.')
		g.word(jsWords)
	default:
		g.minIdent()
	}
}

// dts appends TypeScript declarations.
func (g *textGen) dts(limit int) {
	for len(g.out) < limit {
		switch g.intn(6) {
		case 0:
			g.out = append(g.out, "/**\n * "...)
			g.sentence(4 + g.intn(12))
			g.out = append(g.out, "\n */\n"...)
		case 1, 2:
			g.out = append(g.out, "export declare function "...)
			g.ident()
			g.out = append(g.out, '(')
			n := g.intn(4)
			for i := range n {
				if i > 0 {
					g.out = append(g.out, ", "...)
				}
				g.ident()
				g.out = append(g.out, ": "...)
				g.word(jsTypes)
			}
			g.out = append(g.out, "): "...)
			g.word(jsTypes)
			g.out = append(g.out, ";\n"...)
		case 3, 4:
			g.out = append(g.out, "export interface "...)
			g.word(g.vocab)
			g.out = append(g.out, " {\n"...)
			n := 1 + g.intn(6)
			for range n {
				g.out = append(g.out, "    "...)
				g.ident()
				if g.intn(3) == 0 {
					g.out = append(g.out, '?')
				}
				g.out = append(g.out, ": "...)
				g.word(jsTypes)
				g.out = append(g.out, ";\n"...)
			}
			g.out = append(g.out, "}\n"...)
		default:
			g.out = append(g.out, "export type "...)
			g.word(g.vocab)
			g.out = append(g.out, " = "...)
			g.word(jsTypes)
			g.out = append(g.out, " | "...)
			g.word(jsTypes)
			g.out = append(g.out, ";\n"...)
		}
	}
}

// sourceMap appends a source map: a JSON head, VLQ mappings (which compress
// poorly) and the embedded sources (which compress well).
func (g *textGen) sourceMap(limit int) {
	g.out = append(g.out, `{"version":3,"file":"`...)
	g.word(g.vocab)
	g.out = append(g.out, `.js","sources":["../src/`...)
	g.word(g.vocab)
	g.out = append(g.out, `.ts"],"names":[`...)
	for i := range 8 {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.out = append(g.out, '"')
		g.ident()
		g.out = append(g.out, '"')
	}
	g.out = append(g.out, `],"mappings":"`...)
	mappingsEnd := len(g.out) + (limit-len(g.out))*2/5
	for len(g.out) < mappingsEnd {
		n := [...]int{1, 4, 4, 4, 5}[g.intn(5)]
		for range n {
			g.out = append(g.out, b64[g.skew(len(b64))])
		}
		g.out = append(g.out, ",,,,,,;"[g.intn(7)])
	}
	g.out = append(g.out, `","sourcesContent":["`...)
	for len(g.out) < limit {
		g.jsStatement()
		g.out = g.out[:len(g.out)-1] // escape the newline, as JSON does
		g.out = append(g.out, `\n`...)
	}
	g.out = append(g.out, `"]}`...)
}

// markdown appends a README-like document.
func (g *textGen) markdown(limit int) {
	g.out = append(g.out, "# "...)
	g.word(g.vocab)
	g.out = append(g.out, "\n\n"...)
	for len(g.out) < limit {
		switch g.intn(8) {
		case 0:
			g.out = append(g.out, "## "...)
			g.sentence(1 + g.intn(4))
			g.out = append(g.out, "\n\n"...)
		case 1:
			g.out = append(g.out, "```js\n"...)
			for range 2 + g.intn(6) {
				g.jsStatement()
			}
			g.depth = 0
			g.out = append(g.out, "```\n\n"...)
		case 2:
			for range 2 + g.intn(4) {
				g.out = append(g.out, "- `"...)
				g.word(g.vocab)
				g.out = append(g.out, "` "...)
				g.sentence(3 + g.intn(8))
				g.out = append(g.out, '\n')
			}
			g.out = append(g.out, '\n')
		default:
			for range 2 + g.intn(4) {
				g.sentence(6 + g.intn(14))
				g.out = append(g.out, ". "...)
			}
			g.out = append(g.out, "\n\n"...)
		}
	}
}

// json appends a package.json-like object.
func (g *textGen) json(limit int) {
	g.out = append(g.out, "{\n  \"name\": \""...)
	g.word(g.vocab)
	g.out = append(g.out, "\",\n  \"version\": \""...)
	g.version()
	g.out = append(g.out, "\",\n  \"description\": \""...)
	g.sentence(4 + g.intn(10))
	g.out = append(g.out, "\",\n  \"main\": \"lib/index.js\",\n  \"license\": \"MIT\",\n"...)
	for len(g.out) < limit {
		g.out = append(g.out, "  \""...)
		g.word(g.vocab)
		g.out = append(g.out, "\": {\n"...)
		for i := range 1 + g.intn(8) {
			if i > 0 {
				g.out = append(g.out, ",\n"...)
			}
			g.out = append(g.out, "    \""...)
			g.ident()
			g.out = append(g.out, "\": \""...)
			if g.intn(2) == 0 {
				g.out = append(g.out, '^')
				g.version()
			} else {
				g.sentence(1 + g.intn(4))
			}
			g.out = append(g.out, '"')
		}
		g.out = append(g.out, "\n  },\n"...)
	}
	g.out = append(g.out, "}\n"...)
}

func (g *textGen) version() {
	g.out = strconv.AppendInt(g.out, int64(g.skew(12)), 10)
	g.out = append(g.out, '.')
	g.out = strconv.AppendInt(g.out, int64(g.skew(30)), 10)
	g.out = append(g.out, '.')
	g.out = strconv.AppendInt(g.out, int64(g.skew(20)), 10)
}

// random appends incompressible bytes.
func (g *textGen) random(limit int) {
	for len(g.out) < limit {
		g.out = binary.LittleEndian.AppendUint64(g.out, g.pcg.Uint64())
	}
}

var licenseAuthors = []string{
	"Sindre Sorhus <sindresorhus@gmail.com> (sindresorhus.com)", "TJ Holowaychuk", "Jon Schlinkert",
	"Isaac Z. Schlueter and Contributors", "Feross Aboukhadijeh", "Mathias Bynens", "JS Foundation and other contributors",
	"Facebook, Inc. and its affiliates.", "Microsoft Corporation.", "Denis Malinochkin", "Kat Marchán", "Ben Newman",
	"Douglas Christopher Wilson", "Roman Shtylman", "Jordan Harband", "Luke Edwards",
}

const mitText = `MIT License

Copyright (c) %d %s

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

const iscText = `The ISC License

Copyright (c) %d %s

Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR
IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
`

// license returns one of few license texts, so that most LICENSE files of
// a tree are byte-identical to some other.
func license(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x11c))
	tmpl := mitText
	if r.IntN(4) == 0 {
		tmpl = iscText
	}
	year := 2014 + r.IntN(3)*3
	author := licenseAuthors[r.IntN(len(licenseAuthors))]
	return fmt.Appendf(nil, tmpl, year, author)
}
