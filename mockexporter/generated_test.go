package mockexporter_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promflow/promflow/mockexporter"
)

func emptyRegistry(t testing.TB, c *fakeClock, opts mockexporter.Options) *mockexporter.Registry {
	t.Helper()
	opts.Empty, opts.Now, opts.Logger = true, c.Now, discardLogger()
	return mockexporter.New(opts)
}

// labelSets lists the series of metric as sorted label strings, in the
// registry's order.
func labelSets(t testing.TB, r *mockexporter.Registry, metric string) []string {
	t.Helper()
	list, err := r.Series(metric)
	require.NoError(t, err)
	out := make([]string, len(list))
	for i, si := range list {
		out[i] = sortedMap(si.Labels)
	}
	return out
}

func TestParseLabelTemplate(t *testing.T) {
	lt, err := mockexporter.ParseLabelTemplate("pod=pod-{0..999}")
	require.NoError(t, err)
	assert.Equal(t, mockexporter.LabelTemplate{Name: "pod", Prefix: "pod-", From: 0, To: 999, Ranged: true}, lt)
	assert.EqualValues(t, 1000, lt.Count())
	assert.Equal(t, "pod=pod-{0..999}", lt.String())
	lt, err = mockexporter.ParseLabelTemplate("job=api")
	require.NoError(t, err)
	assert.EqualValues(t, 1, lt.Count())
	for _, bad := range []string{"pod", "__x=1", "pod=p{3..1}", "pod=p{a..b}", "pod=p{0..1}{0..1}", "pod=p{0..1", "pod=p}", "pod=p{-1..3}", "pod=p{0..99999999}"} {
		_, err := mockexporter.ParseLabelTemplate(bad)
		assert.ErrorIs(t, err, mockexporter.ErrInvalid, bad)
	}
}

func TestGeneratedFamilyLabelSets(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{})
	require.NoError(t, r.DeclareFamily(mockexporter.FamilyTemplate{
		Name: "gen_product", Labels: []string{"pod=pod-{0..2}", "zone=z{1..2}", "job=api"}, Seed: 1,
	}))
	assert.Equal(t, []string{
		`{job="api",pod="pod-0",zone="z1",}`, `{job="api",pod="pod-0",zone="z2",}`,
		`{job="api",pod="pod-1",zone="z1",}`, `{job="api",pod="pod-1",zone="z2",}`,
		`{job="api",pod="pod-2",zone="z1",}`, `{job="api",pod="pod-2",zone="z2",}`,
	}, labelSets(t, r, "gen_product"))
	require.NoError(t, r.DeclareFamily(mockexporter.FamilyTemplate{
		Name: "gen_zip", Labels: []string{"pod=pod-{0..2}", "node=n{10..12}"}, Zip: true,
	}))
	assert.Equal(t, []string{`{node="n10",pod="pod-0",}`, `{node="n11",pod="pod-1",}`, `{node="n12",pod="pod-2",}`},
		labelSets(t, r, "gen_zip"))
	err := r.DeclareFamily(mockexporter.FamilyTemplate{Name: "gen_bad_zip", Labels: []string{"a={0..2}", "b={0..3}"}, Zip: true})
	assert.ErrorIs(t, err, mockexporter.ErrInvalid)

	// A generated family's series come from its templates only.
	assert.ErrorIs(t, r.SetValue("gen_zip", mockexporter.Labels{"pod": "pod-9", "node": "n1"}, 1), mockexporter.ErrUnknownSeries)
	assert.ErrorIs(t, r.Delete("gen_zip", mockexporter.Labels{"pod": "pod-0", "node": "n10"}), mockexporter.ErrWrongType)
	require.NoError(t, r.SetValue("gen_zip", mockexporter.Labels{"pod": "pod-0", "node": "n10"}, 7))
	v, err := r.Value("gen_zip", mockexporter.Labels{"pod": "pod-0", "node": "n10"})
	require.NoError(t, err)
	assert.Equal(t, 7.0, v)
	assert.Equal(t, 9, r.Usage().Series)
}

func TestGeneratedFamilyChurn(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{})
	require.NoError(t, r.DeclareFamily(mockexporter.FamilyTemplate{
		Name: "gen_churn", Labels: []string{"pod=pod-{0..999}"}, Seed: 42,
		Churn: &mockexporter.Churn{Share: 0.1, Interval: mockexporter.Duration(time.Minute)},
	}))
	// Align on an interval boundary.
	c.Advance(time.Minute - time.Duration(c.Now().UnixNano()%int64(time.Minute)))
	before := labelSets(t, r, "gen_churn")
	usage := r.Usage()
	c.Advance(59 * time.Second)
	assert.Equal(t, before, labelSets(t, r, "gen_churn"), "no churn within an interval")
	c.Advance(time.Second)
	after := labelSets(t, r, "gen_churn")
	require.Len(t, after, 1000)
	assert.Equal(t, 100, countChanged(before, after), "10 % of the series replaced per interval")
	assert.Equal(t, usage, r.Usage(), "churn keeps the series and the budget use constant")
	assert.Len(t, distinct(after), 1000)

	// Ten intervals replace every series once: no label set survives.
	c.Advance(9 * time.Minute)
	later := labelSets(t, r, "gen_churn")
	assert.Equal(t, 1000, countChanged(before, later))
	for _, ls := range later {
		assert.NotContains(t, distinct(before), ls)
	}
	// The clock going back brings the old label sets back.
	c.Advance(-10 * time.Minute)
	assert.Equal(t, before, labelSets(t, r, "gen_churn"))
}

func countChanged(a, b []string) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func distinct(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// Two registries created at different times with the same template and
// seed expose the same series with the same values; another seed differs.
func TestGeneratedFamilySameSeedAgrees(t *testing.T) {
	tmpl := func(seed int64) mockexporter.FamilyTemplate {
		return mockexporter.FamilyTemplate{
			Name: "gen_seeded", Labels: []string{"pod=pod-{0..99}", "zone=z{0..1}"}, Seed: seed, Range: mockexporter.Percent,
			Churn:  &mockexporter.Churn{Share: 0.25, Interval: mockexporter.Duration(time.Minute), Label: "pod"},
			Source: &mockexporter.SourceSpec{Kind: "randomwalk", Base: 50, Step: 2, Min: 0, Max: 100},
		}
	}
	ca, cb := newClock(), newClock()
	a := emptyRegistry(t, ca, mockexporter.Options{})
	require.NoError(t, a.DeclareFamily(tmpl(7)))
	cb.Advance(7*time.Minute + 13*time.Second)
	b := emptyRegistry(t, cb, mockexporter.Options{})
	require.NoError(t, b.DeclareFamily(tmpl(7)))
	ca.Advance(12 * time.Minute)
	cb.Advance(12*time.Minute - 7*time.Minute - 13*time.Second)
	require.Equal(t, ca.Now(), cb.Now())
	sa, err := a.Series("gen_seeded")
	require.NoError(t, err)
	sb, err := b.Series("gen_seeded")
	require.NoError(t, err)
	require.Equal(t, sa, sb)
	values := map[float64]bool{}
	for _, si := range sa {
		values[si.Value] = true
	}
	assert.Greater(t, len(values), 150, "each series has its own seeded walk")

	co := newClock()
	co.Advance(12 * time.Minute)
	o := emptyRegistry(t, co, mockexporter.Options{})
	require.NoError(t, o.DeclareFamily(tmpl(8)))
	so, err := o.Series("gen_seeded")
	require.NoError(t, err)
	assert.NotEqual(t, sa, so)
}

func TestGeneratedFamilyBudgets(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{MaxSeries: 500})
	before := snapshot(t, r)
	var le *mockexporter.LimitError
	err := r.DeclareFamily(mockexporter.FamilyTemplate{Name: "gen_big", Labels: []string{"pod=pod-{0..999}"}})
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "MaxSeries", le.Limit)
	err = r.DeclareFamily(mockexporter.FamilyTemplate{Name: "gen_big", Labels: []string{"a={0..9999999}", "b={0..9999999}", "c={0..9999999}"}})
	require.ErrorAs(t, err, &le, "a product overflowing int64 is refused, not wrapped")
	assert.Equal(t, before, snapshot(t, r))

	// Bytes: the whole family, with its longest churned labels, is counted.
	r = emptyRegistry(t, c, mockexporter.Options{MaxBytes: 200_000})
	err = r.DeclareFamily(mockexporter.FamilyTemplate{Name: "gen_big", Labels: []string{"pod=pod-{0..499}"},
		Churn: &mockexporter.Churn{Share: 0.1, Interval: mockexporter.Duration(time.Minute)}})
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "MaxBytes", le.Limit)
	assert.Zero(t, r.Usage().Series)

	// Over HTTP: 413, nothing changed.
	r = emptyRegistry(t, c, mockexporter.Options{MaxSeries: 500})
	h := r.Handler()
	before = snapshot(t, r)
	rec := do(t, h, http.MethodPost, "/api/v1/families", `{"name":"gen_big","labels":["pod=pod-{0..999}"]}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "MaxSeries")
	assert.Equal(t, before, snapshot(t, r))
	rec = do(t, h, http.MethodPost, "/api/v1/families", `{"name":"gen_bad","labels":["pod=pod-{9..1}"]}`)
	assert.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	rec = do(t, h, http.MethodPost, "/api/v1/families", `{"name":"gen_bad","labels":["pod={0..9}"],"churn":{"share":2,"interval":"1m"}}`)
	assert.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	assert.Equal(t, before, snapshot(t, r))
}

func TestGeneratedFamilyHTTP(t *testing.T) {
	c := newClock()
	r := emptyRegistry(t, c, mockexporter.Options{DisableRuntimeCollectors: true})
	h := r.Handler()
	rec := do(t, h, http.MethodPost, "/api/v1/families",
		`{"name":"app_requests","type":"counter","labels":["pod=pod-{0..9}","zone=z{0..1}"],"seed":3,
		  "churn":{"share":0.5,"interval":"1m"},"source":{"kind":"noise","base":5,"amplitude":1}}`)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"series":20`)
	rec = do(t, h, http.MethodPost, "/api/v1/families", `{"name":"app_requests","labels":["pod={0..1}"]}`)
	assert.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	rec = do(t, h, http.MethodGet, "/api/v1/families", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"pod=pod-{0..9}"`)

	c.Advance(10 * time.Second)
	mfs := scrapeFamilies(t, h)
	mf := mfs["app_requests"] // the text format names a counter without _total
	require.NotNil(t, mf, "families: %v", mfs)
	require.Len(t, mf.GetMetric(), 20)
	for _, m := range mf.GetMetric() {
		assert.InDelta(t, 50, m.GetCounter().GetValue(), 10.001, "rate 5±1 over 10 s")
	}
	if !errors.Is(r.DeclareFamily(mockexporter.FamilyTemplate{Name: "x", Labels: []string{"le={0..1}"}, Type: mockexporter.Histogram}), mockexporter.ErrInvalid) {
		t.Error(`a histogram's "le" label template must be refused`)
	}
}
