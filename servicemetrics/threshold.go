package servicemetrics

import (
	"math"
	"strconv"
	"strings"
)

// Threshold is what a simple alerting rule watches: the rule fires when
// Metric (restricted to the series with the label values of Matchers)
// compares to Value by Op. The dashboard draws it as a line on the charts
// of that metric.
type Threshold struct {
	Alert  string `json:"alert"`  // the rule's alert name
	Metric string `json:"metric"` // the metric name of the selector
	// Matchers are the selector's equality matchers (label = value);
	// other matchers (!=, =~, !~) are not kept, and Partial is true.
	Matchers map[string]string `json:"matchers,omitempty"`
	Partial  bool              `json:"partial,omitempty"`
	Op       string            `json:"op"` // >, >=, <, <=, == or !=, with the metric on the left
	Value    float64           `json:"value"`
	Expr     string            `json:"expr"` // the rule's expression as Prometheus returned it
}

// ParseThreshold reads an alerting rule's expression of the form
// `selector OP number` or `number OP selector` (the latter is turned
// around, so Op always has the metric on its left), where selector is a
// metric name with optional label matchers in braces and OP one of >, >=,
// <, <=, ==, !=. ok is false for anything else: functions, arithmetic,
// aggregations, range selectors, offset, "bool", binary operators between
// two vectors (and, or, unless), several comparisons, non-finite numbers.
// Such rules get no threshold line; ParseThreshold never guesses.
func ParseThreshold(expr string) (th Threshold, ok bool) {
	s := &exprScanner{src: expr}
	th.Expr = expr
	if v, isNum := s.number(); isNum {
		op := s.op()
		metric, m, partial, okSel := s.selector()
		if op == "" || !okSel || !s.end() {
			return Threshold{}, false
		}
		th.Metric, th.Matchers, th.Partial, th.Op, th.Value = metric, m, partial, flipOp(op), v
		return th, true
	}
	metric, m, partial, okSel := s.selector()
	if !okSel {
		return Threshold{}, false
	}
	op := s.op()
	v, isNum := s.number()
	if op == "" || !isNum || !s.end() {
		return Threshold{}, false
	}
	th.Metric, th.Matchers, th.Partial, th.Op, th.Value = metric, m, partial, op, v
	return th, true
}

func flipOp(op string) string {
	switch op {
	case ">":
		return "<"
	case ">=":
		return "<="
	case "<":
		return ">"
	case "<=":
		return ">="
	}
	return op // == and != are symmetric
}

// exprScanner reads the few tokens of a threshold expression.
type exprScanner struct {
	src string
	pos int
}

func (s *exprScanner) skip() {
	for s.pos < len(s.src) && strings.IndexByte(" \t\r\n", s.src[s.pos]) >= 0 {
		s.pos++
	}
}

func (s *exprScanner) end() bool { s.skip(); return s.pos == len(s.src) }

// op reads a comparison operator, not followed by "bool".
func (s *exprScanner) op() string {
	s.skip()
	for _, op := range []string{">=", "<=", "==", "!=", ">", "<"} {
		if strings.HasPrefix(s.src[s.pos:], op) {
			s.pos += len(op)
			save := s.pos
			if s.name(isLabelChar) == "bool" {
				return ""
			}
			s.pos = save
			return op
		}
	}
	return ""
}

// number reads a finite number literal (as strconv.ParseFloat, which
// takes exponents); on failure nothing is consumed.
func (s *exprScanner) number() (float64, bool) {
	s.skip()
	start := s.pos
	end := start
	for end < len(s.src) && strings.IndexByte("0123456789.eE+-_", s.src[end]) >= 0 {
		// A sign is part of the number only at its start or after an exponent.
		if c := s.src[end]; (c == '+' || c == '-') && end > start && !strings.ContainsRune("eE", rune(s.src[end-1])) {
			break
		}
		end++
	}
	if end == start {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s.src[start:end], "_", ""), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	s.pos = end
	return v, true
}

func isMetricChar(c byte, first bool) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
}

func isLabelChar(c byte, first bool) bool { return c != ':' && isMetricChar(c, first) }

func (s *exprScanner) name(valid func(byte, bool) bool) string {
	s.skip()
	start := s.pos
	for s.pos < len(s.src) && valid(s.src[s.pos], s.pos == start) {
		s.pos++
	}
	return s.src[start:s.pos]
}

// selector reads metric{label="value",...}.
func (s *exprScanner) selector() (metric string, eq map[string]string, partial, ok bool) {
	metric = s.name(isMetricChar)
	if metric == "" || metric == "bool" || metric == "offset" {
		return "", nil, false, false
	}
	s.skip()
	if s.pos == len(s.src) || s.src[s.pos] != '{' {
		return metric, nil, false, true
	}
	s.pos++
	for {
		s.skip()
		if s.pos < len(s.src) && s.src[s.pos] == '}' {
			s.pos++
			return metric, eq, partial, true
		}
		label := s.name(isLabelChar)
		s.skip()
		mop := ""
		for _, o := range []string{"!=", "=~", "!~", "="} {
			if strings.HasPrefix(s.src[s.pos:], o) {
				mop = o
				break
			}
		}
		if label == "" || mop == "" {
			return "", nil, false, false
		}
		s.pos += len(mop)
		val, okStr := s.str()
		if !okStr {
			return "", nil, false, false
		}
		if mop == "=" {
			if eq == nil {
				eq = map[string]string{}
			}
			eq[label] = val
		} else {
			partial = true
		}
		s.skip()
		if s.pos < len(s.src) && s.src[s.pos] == ',' {
			s.pos++
		}
	}
}

// str reads a PromQL string literal: double- or single-quoted with Go
// escapes, or a backquoted raw string.
func (s *exprScanner) str() (string, bool) {
	s.skip()
	if s.pos >= len(s.src) {
		return "", false
	}
	q := s.src[s.pos]
	if q != '"' && q != '\'' && q != '`' {
		return "", false
	}
	for end := s.pos + 1; end < len(s.src); end++ {
		switch s.src[end] {
		case '\\':
			if q != '`' {
				end++
			}
		case q:
			lit := s.src[s.pos : end+1]
			s.pos = end + 1
			if q == '\'' { // Go has no single-quoted strings: requote
				lit = `"` + strings.ReplaceAll(strings.ReplaceAll(lit[1:len(lit)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(lit)
			return v, err == nil
		}
	}
	return "", false
}
