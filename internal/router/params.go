package router

// inlineParams is how many parameters Params holds without allocating; more
// than a handful is rare in real APIs.
const inlineParams = 8

// Params holds the path parameters of a match, in pattern order. The zero
// value is empty and ready to use. It stores up to 8 parameters inline, so a
// Params on the caller's stack makes Match allocation-free; the values are
// substrings of the matched path.
type Params struct {
	n      int
	names  [inlineParams]string
	values [inlineParams]string
	more   []param // parameters beyond inlineParams
}

type param struct{ name, value string }

// Get returns the value of the parameter called name, or "" if there is none.
func (p *Params) Get(name string) string {
	for i := 0; i < p.n; i++ {
		if p.Name(i) == name {
			return p.Value(i)
		}
	}
	return ""
}

// Len returns the number of parameters.
func (p *Params) Len() int { return p.n }

// Name returns the name of parameter i, 0 <= i < Len().
func (p *Params) Name(i int) string {
	if i < inlineParams {
		return p.names[i]
	}
	return p.more[i-inlineParams].name
}

// Value returns the value of parameter i, 0 <= i < Len().
func (p *Params) Value(i int) string {
	if i < inlineParams {
		return p.values[i]
	}
	return p.more[i-inlineParams].value
}

// Reset empties p, keeping its storage for reuse.
func (p *Params) Reset() {
	p.n = 0
	p.more = p.more[:0]
}

// set records the value at position i while the trie is walked; a nil p
// records nothing, for callers that do not want parameters.
func (p *Params) set(i int, v string) {
	if p == nil {
		return
	}
	if i < inlineParams {
		p.values[i] = v
		return
	}
	i -= inlineParams
	for len(p.more) <= i {
		p.more = append(p.more, param{})
	}
	p.more[i].value = v
}

// finish attaches the names of the route that matched, which fixes Len.
func (p *Params) finish(names []string) {
	if p == nil {
		return
	}
	for i, name := range names {
		if i < inlineParams {
			p.names[i] = name
		} else {
			p.more[i-inlineParams].name = name
		}
	}
	p.n = len(names)
}
