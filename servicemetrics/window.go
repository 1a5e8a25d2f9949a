package servicemetrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// window is the poller's copy of one range query's result over its Window:
// the full matrix that range_metrics carries, kept up to date from one new
// point per series each poll, so that each poll sends only what changed
// (range_update) and a client that connects or resyncs gets the whole
// window at once. Only the poller's goroutine touches it.
type window struct {
	q      RangeQuery
	primed bool   // the full history has been loaded
	err    string // the last query error, until a query succeeds
	series map[string]*seriesWindow
	order  []*seriesWindow // in order of appearance
	nextID int
}

// seriesWindow is one series of a window.
type seriesWindow struct {
	id     int
	metric json.RawMessage // the label set as Prometheus rendered it
	points []point
}

// point is one sample: its time as Prometheus wrote it (Unix seconds) and
// its value (a string, as in the API).
type point struct {
	t  float64
	tr json.RawMessage
	v  json.RawMessage
}

// change is what one poll changed in a window.
type change struct {
	err     string
	added   []*seriesWindow
	removed []int
	points  []idPoint
}

type idPoint struct {
	id int
	v  json.RawMessage
}

// matrix is the part of a range query's "data" the window reads.
type matrix struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric json.RawMessage      `json:"metric"`
		Values [][2]json.RawMessage `json:"values"`
	} `json:"result"`
}

func newWindow(q RangeQuery) *window {
	return &window{q: q, series: map[string]*seriesWindow{}}
}

// apply folds a query answer (data, or err) taken at now into the window.
// A full answer (the first, priming the window) replaces every point; a
// later one appends its points. Series with no point left inside the
// window are removed.
func (w *window) apply(now time.Time, data json.RawMessage, qerr error) change {
	if qerr == nil {
		var m matrix
		if err := json.Unmarshal(data, &m); err != nil || m.ResultType != "matrix" {
			qerr = errors.New("range query answer is not a matrix")
		} else {
			w.err = ""
			return w.merge(now, &m)
		}
	}
	w.err = qerr.Error()
	return change{err: w.err}
}

func (w *window) merge(now time.Time, m *matrix) change {
	var ch change
	full := !w.primed
	w.primed = true
	for _, r := range m.Result {
		key := string(r.Metric)
		s := w.series[key]
		if s == nil {
			s = &seriesWindow{id: w.nextID, metric: r.Metric}
			w.nextID++
			w.series[key] = s
			w.order = append(w.order, s)
			ch.added = append(ch.added, s)
		}
		for _, v := range r.Values {
			t, err := strconv.ParseFloat(string(v[0]), 64)
			if err != nil || (len(s.points) > 0 && t <= s.points[len(s.points)-1].t) {
				continue // not a time, or not newer than what the window has
			}
			s.points = append(s.points, point{t: t, tr: v[0], v: v[1]})
			if !full {
				ch.points = append(ch.points, idPoint{id: s.id, v: v[1]})
			}
		}
	}
	ch.removed = w.trim(now)
	return ch
}

// trim drops points older than the window and the series left without
// any, and returns the removed series' ids.
func (w *window) trim(now time.Time) []int {
	oldest := float64(now.Add(-w.q.Window).UnixMilli()) / 1000
	var removed []int
	kept := w.order[:0]
	for _, s := range w.order {
		i := 0
		for i < len(s.points) && s.points[i].t < oldest {
			i++
		}
		s.points = s.points[i:]
		if len(s.points) == 0 {
			removed = append(removed, s.id)
			delete(w.series, string(s.metric))
			continue
		}
		kept = append(kept, s)
	}
	clear(w.order[len(kept):])
	w.order = kept
	return removed
}

// encodeFull writes the window as the Prometheus API's matrix (each series
// also carries its "id", which range_update refers to), or {"error":...}
// while no query has succeeded.
func (w *window) encodeFull(b *bytes.Buffer) {
	if !w.primed {
		writeError(b, w.err)
		return
	}
	b.WriteString(`{"resultType":"matrix","window_seconds":`)
	b.WriteString(strconv.FormatFloat(w.q.Window.Seconds(), 'f', -1, 64))
	b.WriteString(`,"result":[`)
	for i, s := range w.order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":`)
		b.WriteString(strconv.Itoa(s.id))
		b.WriteString(`,"metric":`)
		b.Write(s.metric)
		b.WriteString(`,"values":[`)
		for j, p := range s.points {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			b.Write(p.tr)
			b.WriteByte(',')
			b.Write(p.v)
			b.WriteByte(']')
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
}

// encodeChange writes one poll's change of the window for range_update:
// {"t":T,"added":[{"id":..,"metric":..}],"removed":[ids],"points":[[id,"v"],...]}
// with empty members left out, or {"error":...}.
func encodeChange(b *bytes.Buffer, ch change, t json.RawMessage) {
	if ch.err != "" {
		writeError(b, ch.err)
		return
	}
	b.WriteString(`{"t":`)
	b.Write(t)
	if len(ch.added) > 0 {
		b.WriteString(`,"added":[`)
		for i, s := range ch.added {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"id":`)
			b.WriteString(strconv.Itoa(s.id))
			b.WriteString(`,"metric":`)
			b.Write(s.metric)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	if len(ch.removed) > 0 {
		b.WriteString(`,"removed":[`)
		for i, id := range ch.removed {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(id))
		}
		b.WriteByte(']')
	}
	if len(ch.points) > 0 {
		b.WriteString(`,"points":[`)
		for i, p := range ch.points {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(p.id))
			b.WriteByte(',')
			b.Write(p.v)
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

func writeError(b *bytes.Buffer, msg string) {
	e, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	b.Write(e)
}
