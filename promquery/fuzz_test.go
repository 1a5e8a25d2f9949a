package promquery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/prometheus/common/model"
)

// FuzzDecodeQuery feeds arbitrary bodies to the query decoder: it must
// never panic, accept only valid JSON, and give the same outcome whatever
// the read sizes.
func FuzzDecodeQuery(f *testing.F) {
	for _, seed := range []string{
		string(genVector(3)),
		string(genMatrix(2, 3)),
		`{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]},"warnings":["w"],"infos":["i"]}`,
		`{"status":"success","data":{"resultType":"string","result":[1,"a\"\u00e9\ud83d\ude00"]}}`,
		`{"data":{"result":[{"metric":{"a":"b"},"values":[[1,"1"]]}],"resultType":"matrix","stats":{"x":[1,{"y":null}]}},"status":"success"}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"2","buckets":[[0,"0","1","1"]]}]}]}}`,
		`{"status":"error","errorType":"bad_data","error":"x"}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e3,"+Inf"]}]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeQuery(bytes.NewReader(body), nil)
		_, err1 := decodeQuery(iotest.OneByteReader(bytes.NewReader(body)), nil)
		_, err2 := decodeQuery(&splitReader{b: body, n: len(body) / 3}, nil)
		if (err == nil) != (err1 == nil) || (err == nil) != (err2 == nil) {
			t.Fatalf("whole read: %v; one-byte reads: %v; split read: %v", err, err1, err2)
		}
		if err != nil {
			var apiErr *APIError
			if !errors.Is(err, ErrBadResponse) && !errors.As(err, &apiErr) {
				t.Fatalf("error is neither ErrBadResponse nor *APIError: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// What was decoded encodes again with the model package.
		if _, err := json.Marshal([]any{res.vector, res.matrix, res.scalar, res.str}); err != nil {
			t.Fatalf("decoded result does not marshal: %v", err)
		}
	})
}

// FuzzSelector checks that whatever the metric name, label name and value,
// the builder renders one well-formed selector whose matchers parse back to
// exactly the input.
func FuzzSelector(f *testing.F) {
	f.Add("up", "job", `a"} or vector(1) #`, uint8(0), "instance", "x", uint8(2))
	f.Add("", "service.name", "\n\\`'\"}{=~", uint8(1), "le", "ünï", uint8(3))
	f.Add("1bad-name", "", "\xff\x00", uint8(2), "_", "", uint8(0))
	f.Add("sum", "a", "b", uint8(0), "c", "d", uint8(1))
	f.Fuzz(func(t *testing.T, metric, name1, value1 string, op1 uint8, name2, value2 string, op2 uint8) {
		in := []Matcher{
			{Type: MatchType(op1 % 4), Name: name1, Value: value1},
			{Type: MatchType(op2 % 4), Name: name2, Value: value2},
		}
		sel := Select(metric, in...)
		out := sel.String()
		gotMetric, got, err := parseSelector(out)
		if err != nil {
			t.Fatalf("rendered %q does not parse: %v", out, err)
		}
		want := in
		if metric != "" && gotMetric == "" {
			// Rendered as a __name__ matcher.
			want = append([]Matcher{Eq(model.MetricNameLabel, metric)}, in...)
		} else if gotMetric != metric {
			t.Fatalf("metric %q came back as %q from %q", metric, gotMetric, out)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("matchers %q came back as %q from %q", want, got, out)
		}
		// A literal regex of the value is itself a valid Go string literal
		// payload that parses back too.
		re := Select("m", Re("l", LiteralRegex(value1))).String()
		if _, m, err := parseSelector(re); err != nil || len(m) != 1 || m[0].Value != LiteralRegex(value1) {
			t.Fatalf("regex selector %q: %v %v", re, m, err)
		}
	})
}

// parseSelector is an independent, strict parser for the selectors the
// builder renders: [metric]{name op "value", ...}, where names are
// identifiers or double-quoted strings. It follows PromQL's lexical rules
// for these tokens.
func parseSelector(s string) (string, []Matcher, error) {
	i := 0
	ident := func(metric bool) string {
		j := i
		for j < len(s) {
			c := s[j]
			if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || j > i && '0' <= c && c <= '9' || metric && c == ':' {
				j++
				continue
			}
			break
		}
		id := s[i:j]
		i = j
		return id
	}
	quoted := func() (string, error) {
		if i >= len(s) || s[i] != '"' {
			return "", fmt.Errorf("offset %d: want a string", i)
		}
		j := i + 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' {
				j++
			} else if s[j] == '\n' {
				return "", errors.New("raw newline in string")
			}
		}
		if j >= len(s) {
			return "", errors.New("unterminated string")
		}
		v, err := strconv.Unquote(s[i : j+1])
		i = j + 1
		return v, err
	}
	metric := ident(true)
	if i == len(s) {
		if metric == "" {
			return "", nil, errors.New("empty selector")
		}
		return metric, nil, nil
	}
	if s[i] != '{' {
		return "", nil, fmt.Errorf("offset %d: want '{'", i)
	}
	i++
	var ms []Matcher
	for i < len(s) && s[i] != '}' {
		if len(ms) > 0 {
			if s[i] != ',' {
				return "", nil, fmt.Errorf("offset %d: want ','", i)
			}
			i++
		}
		var name string
		if i < len(s) && s[i] == '"' {
			var err error
			if name, err = quoted(); err != nil {
				return "", nil, err
			}
			if isLegacyLabelName(name) {
				return "", nil, fmt.Errorf("legacy name %q needlessly quoted", name)
			}
		} else if name = ident(false); name == "" {
			return "", nil, fmt.Errorf("offset %d: want a label name", i)
		}
		var typ MatchType
		switch {
		case strings.HasPrefix(s[i:], "=~"):
			typ, i = MatchRegexp, i+2
		case strings.HasPrefix(s[i:], "!~"):
			typ, i = MatchNotRegexp, i+2
		case strings.HasPrefix(s[i:], "!="):
			typ, i = MatchNotEqual, i+2
		case strings.HasPrefix(s[i:], "="):
			typ, i = MatchEqual, i+1
		default:
			return "", nil, fmt.Errorf("offset %d: want an operator", i)
		}
		v, err := quoted()
		if err != nil {
			return "", nil, err
		}
		ms = append(ms, Matcher{Type: typ, Name: name, Value: v})
	}
	if i != len(s)-1 {
		return "", nil, fmt.Errorf("offset %d: data after '}'", i)
	}
	return metric, ms, nil
}
