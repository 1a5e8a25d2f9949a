package mockexporter

import (
	"hash/fnv"
	"math"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Exemplars: see the package documentation.

// exemplarLineBytes bounds what an exemplar adds to a line of the
// OpenMetrics exposition: ` # {trace_id="<32>"} <value> <timestamp>`.
const exemplarLineBytes = len(` # {trace_id=""} `) + 32 + maxSampleValueLen + 1 + 24

type exemplar struct {
	v   float64
	at  time.Time
	set bool
}

// initExemplars allocates the exemplar slots of a new series.
func (s *series) initExemplars() {
	if !s.fam.opts.Exemplars {
		return
	}
	switch s.fam.opts.Type {
	case Counter:
		s.ex = make([]exemplar, 1)
	case Histogram:
		s.ex = make([]exemplar, len(s.fam.opts.Buckets)+1)
	}
}

// recordExemplar keeps v at instant at as the latest exemplar of its slot
// (the counter's, or the histogram bucket holding v).
func (s *series) recordExemplar(v float64, at time.Time) {
	if s.seriesExtra == nil || s.ex == nil {
		return
	}
	i := 0
	if s.fam.opts.Type == Histogram {
		i = bucketIndex(s.fam.opts.Buckets, v)
	}
	s.ex[i] = exemplar{v: v, at: at, set: true}
}

// traceID is the exemplar's trace_id: 32 hex digits.
func (s *series) traceID(at time.Time) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s.fam.opts.Name + "\xfe" + seriesKey(s.values)))
	base := mix64(uint64(s.fam.opts.ExemplarSeed), h.Sum64())
	a := mix64(base, uint64(at.UnixNano()))
	b := mix64(a, 0x7472616365)
	out := make([]byte, 0, 32)
	for _, x := range []uint64{a, b} {
		hex := strconv.FormatUint(x, 16)
		for range 16 - len(hex) {
			out = append(out, '0')
		}
		out = append(out, hex...)
	}
	return string(out)
}

// dtoExemplar renders slot i, nil when it has none.
func (s *series) dtoExemplar(i int) *dto.Exemplar {
	if s.seriesExtra == nil || s.ex == nil || !s.ex[i].set {
		return nil
	}
	e := s.ex[i]
	name, id, v := "trace_id", s.traceID(e.at), e.v
	return &dto.Exemplar{
		Label:     []*dto.LabelPair{{Name: &name, Value: &id}},
		Value:     &v,
		Timestamp: timestamppb.New(e.at),
	}
}

// attachExemplars puts the histogram's exemplars on its classic buckets
// (the +Inf bucket's only into the list) and, with native buckets, into
// h.Exemplars.
func (s *series) attachExemplars(h *dto.Histogram) {
	if s.seriesExtra == nil || s.ex == nil {
		return
	}
	for i := range s.ex {
		e := s.dtoExemplar(i)
		if e == nil {
			continue
		}
		if i < len(h.Bucket) {
			h.Bucket[i].Exemplar = e
		} else {
			// As client_golang does: an explicit +Inf bucket carries it.
			inf, count := math.Inf(1), h.GetSampleCount()
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &inf, CumulativeCount: &count, Exemplar: e})
		}
		if s.native != nil {
			h.Exemplars = append(h.Exemplars, e)
		}
	}
}
