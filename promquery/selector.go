package promquery

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// MatchType is the operator of a label [Matcher].
type MatchType int

// The four PromQL label matching operators.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

// String returns the operator as written in PromQL.
func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return "MatchType(" + strconv.Itoa(int(t)) + ")"
}

// Matcher is one label matcher of a [Selector]. Name and Value may hold any
// text, including quotes, braces and newlines: rendering quotes them.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
}

// Eq matches series whose label name equals value exactly.
func Eq(name, value string) Matcher { return Matcher{MatchEqual, name, value} }

// Neq matches series whose label name differs from value.
func Neq(name, value string) Matcher { return Matcher{MatchNotEqual, name, value} }

// Re matches series whose label name fully matches the RE2 regular
// expression re. To match a user-supplied value literally, pass it through
// [LiteralRegex].
func Re(name, re string) Matcher { return Matcher{MatchRegexp, name, re} }

// Nre matches series whose label name does not fully match re.
func Nre(name, re string) Matcher { return Matcher{MatchNotRegexp, name, re} }

// String renders the matcher, e.g. job="api" or "service.name"=~"a|b". A
// matcher with an unknown operator renders as an equality on an impossible
// value, so that it selects nothing.
func (m Matcher) String() string {
	var b strings.Builder
	m.appendTo(&b)
	return b.String()
}

func (m Matcher) appendTo(b *strings.Builder) {
	if m.Type < MatchEqual || m.Type > MatchNotRegexp {
		// An unknown operator selects nothing rather than something
		// unintended: an equality on a value no label has.
		m = Matcher{Type: MatchEqual, Name: m.Name, Value: "\x00invalid matcher type " + m.Type.String()}
	}
	if isLegacyLabelName(m.Name) {
		b.WriteString(m.Name)
	} else {
		b.WriteString(strconv.Quote(m.Name))
	}
	b.WriteString(m.Type.String())
	b.WriteString(strconv.Quote(m.Value))
}

// LiteralRegex returns a regular expression that matches exactly s (every
// metacharacter escaped), for use with [Re] and [Nre], e.g. to build an
// alternation of user-supplied values.
func LiteralRegex(s string) string { return regexp.QuoteMeta(s) }

// AnyOf returns a regular expression matching exactly one of values, each
// taken literally. With no values it matches only the empty string.
func AnyOf(values ...string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(q, "|")
}

// Selector is an instant-vector selector built from a metric name and label
// matchers. Its String is always a single, well-formed selector: values are
// quoted with Go string-literal rules (which PromQL shares), and names
// outside the legacy character set are quoted, so no value can change the
// shape of the query.
type Selector struct {
	metric   string
	matchers []Matcher
}

// Select returns a selector for metric (may be empty) with matchers.
func Select(metric string, matchers ...Matcher) Selector {
	return Selector{metric: metric, matchers: append([]Matcher(nil), matchers...)}
}

// Where returns a copy of s with more matchers.
func (s Selector) Where(matchers ...Matcher) Selector {
	out := Selector{metric: s.metric, matchers: make([]Matcher, 0, len(s.matchers)+len(matchers))}
	out.matchers = append(append(out.matchers, s.matchers...), matchers...)
	return out
}

// Metric returns the selector's metric name.
func (s Selector) Metric() string { return s.metric }

// Matchers returns a copy of the selector's label matchers.
func (s Selector) Matchers() []Matcher { return append([]Matcher(nil), s.matchers...) }

// String renders the selector, e.g. up{job="api",instance!="a\"b"}. A
// metric name that is not a plain identifier, or that PromQL would read as
// a keyword, is rendered as a __name__ matcher. A matcher with an unknown
// operator is rendered as an equality on an impossible value so that the
// query selects nothing rather than something unintended.
func (s Selector) String() string {
	var b strings.Builder
	inner := s.matchers
	if s.metric != "" {
		if isLegacyMetricName(s.metric) && !promqlKeywords[strings.ToLower(s.metric)] {
			b.WriteString(s.metric)
		} else {
			inner = append([]Matcher{Eq(model.MetricNameLabel, s.metric)}, inner...)
		}
	}
	if len(inner) == 0 && s.metric != "" && b.Len() > 0 {
		return b.String()
	}
	b.WriteByte('{')
	for i, m := range inner {
		if i > 0 {
			b.WriteByte(',')
		}
		m.appendTo(&b)
	}
	b.WriteByte('}')
	return b.String()
}

// Range renders s as a range-vector selector over d, e.g. up{job="a"}[5m].
func (s Selector) Range(d time.Duration) string {
	return s.String() + "[" + model.Duration(d).String() + "]"
}

// promqlKeywords are identifiers the PromQL lexer does not read as a metric
// name when written bare.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "bool": true,
	"offset": true, "start": true, "end": true, "step": true, "inf": true, "nan": true,
	"sum": true, "avg": true, "count": true, "min": true, "max": true, "group": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "count_values": true,
	"quantile": true, "limitk": true, "limit_ratio": true,
}

func isLegacyMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func isLegacyLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
