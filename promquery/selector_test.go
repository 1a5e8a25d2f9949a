package promquery_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/promflow/promflow/promquery"
)

func TestSelectorString(t *testing.T) {
	for _, tc := range []struct {
		sel  promquery.Selector
		want string
	}{
		{promquery.Select("up"), `up`},
		{promquery.Select("up", promquery.Eq("job", "a")), `up{job="a"}`},
		{promquery.Select("", promquery.Eq("job", "a"), promquery.Neq("x", "")), `{job="a",x!=""}`},
		{promquery.Select("ns:metric:rate5m", promquery.Nre("a", "b.*")), `ns:metric:rate5m{a!~"b.*"}`},
		{promquery.Select("sum"), `{__name__="sum"}`},
		{promquery.Select("Inf", promquery.Eq("a", "b")), `{__name__="Inf",a="b"}`},
		{promquery.Select("1abc"), `{__name__="1abc"}`},
		{promquery.Select("a b", promquery.Eq("service.name", "x")), `{__name__="a b","service.name"="x"}`},
		{promquery.Select("up", promquery.Eq("label", "new\nline\t\"q\" \\ ✓ \x00")), `up{label="new\nline\t\"q\" \\ ✓ \x00"}`},
		{promquery.Select("up", promquery.Eq("l", "\xff")), `up{l="\xff"}`},
		{promquery.Select("up", promquery.Matcher{Type: 9, Name: "job", Value: "a"}), `up{job="\x00invalid matcher type MatchType(9)"}`},
		{promquery.Select(""), `{}`},
	} {
		assert.Equal(t, tc.want, tc.sel.String())
	}
	// A Matcher rendered alone is as safe as inside a selector.
	assert.Equal(t, `job="\x00invalid matcher type MatchType(9)"`, promquery.Matcher{Type: 9, Name: "job", Value: "a"}.String())
	assert.Equal(t, `job!~"a.*"`, promquery.Nre("job", "a.*").String())
}

func TestNewRejectsBadAddresses(t *testing.T) {
	for _, addr := range []string{"http://[::1", "ftp://host", "http://", "localhost:9090"} {
		_, err := promquery.New(addr, promquery.Options{})
		assert.ErrorIs(t, err, promquery.ErrInvalidArgument, addr)
	}
}

func TestSelectorWhereCopies(t *testing.T) {
	base := promquery.Select("up", promquery.Eq("job", "a"))
	a := base.Where(promquery.Eq("x", "1"))
	b := base.Where(promquery.Eq("x", "2"))
	assert.Equal(t, `up{job="a"}`, base.String())
	assert.Equal(t, `up{job="a",x="1"}`, a.String())
	assert.Equal(t, `up{job="a",x="2"}`, b.String())
	assert.Equal(t, "up", a.Metric())
	ms := a.Matchers()
	ms[0].Value = "changed"
	assert.Equal(t, `up{job="a",x="1"}`, a.String())
	assert.Equal(t, `up{job="a"}[1h30m]`, base.Range(90*time.Minute))
	assert.Equal(t, "=~", promquery.MatchRegexp.String())
	assert.Equal(t, `job!~"a"`, promquery.Nre("job", "a").String())
}

func TestLiteralRegex(t *testing.T) {
	assert.Equal(t, `a\.b\*\(c\)\|d`, promquery.LiteralRegex("a.b*(c)|d"))
	assert.Equal(t, `a|b\|c|`, promquery.AnyOf("a", "b|c", ""))
	assert.Equal(t, ``, promquery.AnyOf())
}
