package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the effective configuration from, lowest precedence first, the
// built-in defaults, the YAML file at path (none when path is "") and the
// environment given as os.Environ-style "KEY=value" entries (pass os.Environ()).
//
// In the file, ${VAR} in a value is replaced by the variable's value and
// ${VAR:-default} by default when VAR is unset or empty; $${ stands for a
// literal ${. An unset ${VAR} without a default is a problem, so that a missing
// secret is never silently empty. Expansion happens in scalar values after the
// YAML is parsed, so an environment value can never change the file's
// structure, comments are never expanded and line numbers stay exact; keys are
// not expanded.
//
// The file is decoded strictly: unknown keys, duplicate keys and values of the
// wrong type are problems, each with its YAML path and line.
//
// The environment variables of the original gateway override global settings
// only: GATEWAY_PORT (server.listen; a bare port is accepted), LOG_LEVEL,
// TRUSTED_PROXIES (comma-separated), LOAD_BALANCING_ALGO,
// HEALTH_CHECK_INTERVAL, CONNECTION_TIMEOUT, MAX_IDLE_CONNS, IDLE_CONN_TIMEOUT,
// CIRCUIT_BREAKER_MAX, CIRCUIT_BREAKER_TIMEOUT, JWT_SECRET (auth.jwt.secret),
// ADMIN_TOKEN (admin.token), CORS_ALLOWED_ORIGINS (cors.allowed_origins, a
// JSON array of strings), MAX_REQUESTS_PER_SECOND and MAX_BURST_SIZE
// (edge.rate_limit), DDOS_THRESHOLD and BLOCK_DURATION (edge.ddos). API_KEYS
// (comma-separated "name:key" or bare "key" entries, the bare ones named key-1,
// key-2, ...) appends to auth.api_keys.keys; its problems are reported per
// entry, as API_KEYS[0], and never quote a key. A value written explicitly on
// a specific upstream or route in the file stays as written; only what that
// upstream or route leaves unset is inherited from the (overridden) defaults.
// Durations take Go syntax ("30s", "10m") or a bare integer meaning seconds. An
// empty variable counts as unset.
//
// SERVICE_ROUTES (a JSON array of {"prefix", "target_url", "strip_prefix",
// "require_auth", "weight", "timeout_secs"}) and ROUTE_<NAME>_PREFIX /
// ROUTE_<NAME>_URL pairs add prefix routes. SERVICE_ROUTES entries sharing a
// prefix form one route whose pool holds all their target_urls with their
// weights; the route is named after the prefix ("/api/studio" → "api-studio",
// "/" → "root") and takes strip_prefix, require_auth and timeout_secs from the
// group's first entry (a conflicting value in the group is a problem). A
// ROUTE_<NAME> pair is a route named <NAME> in lower case with "_" → "-", with
// one backend; half a pair is a problem. An environment route whose name equals
// a route in the file replaces it in place; the others are appended, in that
// order (pairs sorted by name).
//
// After merging, Load applies defaults (ApplyDefaults), validates, and then
// normalizes: each route's inline backends become an upstream named after the
// route, which the route then refers to by name; methods are upper-cased, hosts
// lower-cased, and the listen addresses are host:port. Config.Line still answers
// for the paths of the file as written.
//
// On any problem Load returns a nil config and a Problems error listing every
// problem found, from decoding, the environment and validation. Problems from
// an environment variable carry its name as Path and no line. An unreadable file
// is not a Problems error but the wrapped *fs.PathError.
func Load(path string, environ []string) (*Config, error) {
	env := parseEnviron(environ)
	c := &Config{lines: make(map[string]int)}
	var ps Problems
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		var fatal bool
		ps, fatal = decodeYAML(data, env, c)
		if fatal {
			return nil, ps.sorted()
		}
	}
	srcs := make([]routeSource, len(c.Routes))
	for i := range srcs {
		srcs[i] = routeSource{base: routePath(i)}
	}
	ps = append(ps, applyEnv(c, env, &srcs)...)
	c.ApplyDefaults()

	// A value that could not be decoded is left zero and so defaulted; do not
	// report it a second time from validation.
	reported := make(map[string]bool, len(ps))
	for _, p := range ps {
		reported[p.Path] = true
	}
	for _, p := range c.validate(srcs) {
		if !reported[p.Path] {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		return nil, ps.sorted()
	}
	c.normalize(srcs)
	c.Source = path
	if path == "" {
		c.Source = "environment"
	}
	return c, nil
}

// decodeYAML decodes data into c, recording the line of every key in c.lines.
// fatal reports a problem that stopped decoding (a syntax error), after which c
// holds nothing useful.
func decodeYAML(data []byte, env map[string]string, c *Config) (ps Problems, fatal bool) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false // an empty file is the empty config
		}
		return Problems{yamlProblem(err)}, true
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return Problems{yamlProblem(err)}, true
	default:
		return Problems{{Line: extra.Line, Msg: "the file holds more than one YAML document; want one"}}, true
	}

	w := &yamlWalker{env: env, lines: c.lines, byLine: make(map[int][]lineEntry)}
	w.walk(&doc, "")
	ps = w.problems

	var te *yaml.TypeError
	if err := doc.Decode(c); err != nil {
		if !errors.As(err, &te) {
			return append(ps, yamlProblem(err)), true
		}
		for _, m := range te.Errors {
			ps = append(ps, w.typeProblem(m))
		}
	}

	// Node.Decode cannot reject unknown keys, so decode the original text once
	// more, strictly, into a throwaway value and keep only the unknown-key
	// errors. Keys are never expanded, so the text has the same keys as doc; its
	// unexpanded values may not type-check, and those errors were already
	// reported (or not) above.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var throwaway Config
	if err := strict.Decode(&throwaway); errors.As(err, &te) {
		for _, m := range te.Errors {
			if strings.Contains(m, " not found in type ") {
				ps = append(ps, w.typeProblem(m))
			}
		}
	}
	return ps, false
}

// yamlProblem turns a yaml error ("yaml: line 3: did not find expected key")
// into a Problem.
func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, rest := splitLine(msg)
	return Problem{Line: line, Msg: rest}
}

// splitLine splits "line 12: msg" into 12 and "msg"; without that prefix it
// returns 0 and s.
func splitLine(s string) (int, string) {
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return 0, s
	}
	num, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return 0, s
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, s
	}
	return n, msg
}

// lineEntry is a node that starts on some line, with the path of the key it
// is the value of (or of the sequence item it is).
type lineEntry struct {
	path string
	key  string // the mapping key, when this entry is for a key's line
	node *yaml.Node
}

// yamlWalker records lines and expands ${VAR} in one pass over the node tree.
// It never follows aliases: an anchored node is visited once, where it is
// defined, which both expands it once for every alias and keeps a document
// full of aliases from costing exponential time.
type yamlWalker struct {
	env      map[string]string
	lines    map[string]int
	byLine   map[int][]lineEntry
	problems Problems
}

func (w *yamlWalker) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, ch := range n.Content {
			w.walk(ch, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, dup := w.lines[p]; !dup {
				w.lines[p] = k.Line
			}
			w.byLine[k.Line] = append(w.byLine[k.Line], lineEntry{path: p, key: k.Value, node: v})
			if v.Line != k.Line {
				w.byLine[v.Line] = append(w.byLine[v.Line], lineEntry{path: p, node: v})
			}
			w.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, it := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			w.lines[p] = it.Line
			w.byLine[it.Line] = append(w.byLine[it.Line], lineEntry{path: p, node: it})
			w.walk(it, p)
		}
	case yaml.ScalarNode:
		w.expand(n, path)
	}
}

// expand replaces ${VAR} in a scalar value.
func (w *yamlWalker) expand(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	v, err := expandEnv(n.Value, w.env)
	if err != nil {
		w.problems = append(w.problems, Problem{Path: path, Line: n.Line, Msg: err.Error()})
		return
	}
	n.Value = v
	// A plain scalar's type was resolved from its text ("${PORT}" is a string);
	// clear it so the decoder resolves the expanded text ("9777" is an int), as
	// if the value had been written in the file. Quoted and explicitly tagged
	// scalars keep their type.
	if n.Style&(yaml.TaggedStyle|yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = ""
	}
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s; $${ is a literal ${.
func expandEnv(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $${ for a literal ${)")
			}
			name, def, hasDef := strings.Cut(s[2:end], ":-")
			s = s[end+1:]
			if !validEnvName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${...}", name)
			}
			v, ok := env[name]
			switch {
			case hasDef && v == "":
				v = def
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set (write ${%s:-} to allow an empty value)", name, name)
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

// validEnvName reports whether s is a POSIX shell variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// typeProblem turns one message of a yaml.TypeError into a Problem, finding
// the path from the line and the key or value the message names.
func (w *yamlWalker) typeProblem(m string) Problem {
	line, msg := splitLine(m)
	entries := w.byLine[line]
	p := Problem{Line: line, Msg: msg}

	if rest, ok := strings.CutPrefix(msg, "field "); ok {
		// "field X not found in type T" or "field X already set in type T".
		key, how, _ := strings.Cut(rest, " ")
		p.Path = keyPath(entries, key)
		switch {
		case strings.HasPrefix(how, "not found"):
			p.Msg = fmt.Sprintf("unknown key %q", key)
		case strings.HasPrefix(how, "already set"):
			p.Msg = fmt.Sprintf("duplicate key %q", key)
		}
		return p
	}
	if rest, ok := strings.CutPrefix(msg, "mapping key "); ok {
		// mapping key "x" already defined at line 3
		quoted, first, _ := strings.Cut(rest, " already defined at ")
		key, err := strconv.Unquote(quoted)
		if err != nil {
			key = quoted
		}
		p.Path = keyPath(entries, key)
		p.Msg = fmt.Sprintf("duplicate key %q (first at %s)", key, first)
		return p
	}
	if rest, ok := strings.CutPrefix(msg, "cannot unmarshal "); ok {
		// cannot unmarshal !!str `abc` into int
		desc, target, _ := strings.Cut(rest, " into ")
		tag, value, _ := strings.Cut(desc, " ")
		value = strings.Trim(value, "`")
		e, ok := valueEntry(entries, tag, value)
		if ok {
			p.Path = e.path
			if e.node.Kind == yaml.ScalarNode {
				value = e.node.Value
			}
		}
		p.Msg = typeMsg(tag, value, target)
		return p
	}
	if len(entries) > 0 {
		p.Path = entries[len(entries)-1].path
	}
	return p
}

// keyPath finds the path of key among the entries of one line.
func keyPath(entries []lineEntry, key string) string {
	for _, e := range entries {
		if e.key == key {
			return e.path
		}
	}
	return ""
}

// valueEntry finds the entry whose value the decoder could not use: for a
// list or mapping, the entry holding one; for a scalar, the last (deepest) entry
// on the line whose scalar matches value, which the decoder shortens to 7
// characters and "..." when it is long, and failing that the line's last entry.
func valueEntry(entries []lineEntry, tag, value string) (lineEntry, bool) {
	if len(entries) == 0 {
		return lineEntry{}, false
	}
	if kind, ok := map[string]yaml.Kind{"!!seq": yaml.SequenceNode, "!!map": yaml.MappingNode}[tag]; ok {
		// A collection where a scalar belongs: the entry holding that
		// collection, if it has a path (the document root has none).
		for _, e := range entries {
			if e.node.Kind == kind {
				return e, true
			}
		}
		return lineEntry{}, false
	}
	prefix, short := strings.CutSuffix(value, "...")
	for i := len(entries) - 1; i >= 0; i-- {
		n := entries[i].node
		if n.Kind != yaml.ScalarNode {
			continue
		}
		if n.Value == value || short && strings.HasPrefix(n.Value, prefix) {
			return entries[i], true
		}
	}
	return entries[len(entries)-1], true
}

// typeMsg explains a value of the wrong type, in the schema's terms.
func typeMsg(tag, value, target string) string {
	want := wantType(target)
	if len(value) > 40 {
		value = value[:37] + "..."
	}
	switch {
	case tag == "!!seq":
		return "got a list, want " + want
	case tag == "!!map":
		return "got a mapping, want " + want
	case target == "time.Duration" && (tag == "!!int" || tag == "!!float"):
		return fmt.Sprintf("invalid duration %q: want a number with a unit, such as \"30s\"", value)
	default:
		return fmt.Sprintf("invalid value %q: want %s", value, want)
	}
}

func wantType(target string) string {
	switch {
	case target == "time.Duration":
		return `a duration such as "30s"`
	case strings.HasPrefix(target, "int"), strings.HasPrefix(target, "uint"):
		return "an integer"
	case strings.HasPrefix(target, "float"):
		return "a number"
	case target == "bool":
		return "true or false"
	case target == "string":
		return "a string"
	case strings.HasPrefix(target, "[]"):
		return "a list"
	default:
		return "a mapping"
	}
}
