package promquery

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/prometheus/common/model"
)

// Meta is what an answer carries besides its result. Warnings and infos are
// never dropped.
type Meta struct {
	Warnings []string
	Infos    []string
	// Stats is the "stats" member of the answer's data, present only when
	// asked for with [WithStats] from Prometheus. (VictoriaMetrics ignores
	// the parameter; its later versions send their own statistics beside
	// data, which are not kept.)
	Stats json.RawMessage
	// Partial is true when the server said the answer is incomplete:
	// VictoriaMetrics cluster's "isPartial" when a storage node did not
	// answer (unless vmselect runs with -search.denyPartialResponse).
	// Prometheus never sets it.
	Partial bool
}

// queryResult is a decoded query answer.
type queryResult struct {
	typ    model.ValueType
	vector model.Vector
	matrix model.Matrix
	scalar model.Scalar
	str    model.String
	meta   Meta
}

// Limits of the decoder's per-answer caches and slabs.
const (
	maxIntern  = 1 << 16
	sampleSlab = 256
	streamSlab = 64
)

// decoder turns a query answer into model types, streaming over the body.
type decoder struct {
	s        *scanner
	onSeries func(*model.SampleStream) error // matrix series go here when set
	intern   map[string]string
	pairs    []model.SamplePair // scratch for one series' values
	names    []string           // scratch for one label set
	lbl      []byte
	offs     []int
	samples  []model.Sample // slab the vector's samples point into
	streams  []model.SampleStream
	res      queryResult
	kind     model.ValueType // kind of the result seen so far (inferred)
	haveData bool

	// scalar or string result, kept until resultType says which.
	pairSeen bool
	pairTS   model.Time
	pairVal  string
}

// decodeQuery decodes a /api/v1/query or /api/v1/query_range answer. When
// onSeries is set, matrix series are handed to it one at a time instead of
// being collected.
func decodeQuery(r io.Reader, onSeries func(*model.SampleStream) error) (*queryResult, error) {
	d := &decoder{s: newScanner(r), onSeries: onSeries, intern: make(map[string]string)}
	return d.decode()
}

func (d *decoder) decode() (*queryResult, error) {
	s := d.s
	var status, errType, errMsg string
	more, err := s.open('{', '}')
	for err == nil && more {
		var key []byte
		if key, err = s.str(); err != nil {
			break
		}
		k := string(key) // keys are few and short
		if err = s.expect(':'); err != nil {
			break
		}
		switch k {
		case "status":
			status, err = d.string()
		case "errorType":
			errType, err = d.string()
		case "error":
			errMsg, err = d.string()
		case "warnings":
			d.res.meta.Warnings, err = s.strings()
		case "infos":
			d.res.meta.Infos, err = s.strings()
		case "data":
			err = d.data()
		case "isPartial":
			d.res.meta.Partial, err = d.bool()
		default:
			err = s.skip(0)
		}
		if err == nil {
			more, err = s.more('}')
		}
	}
	if err == nil {
		err = s.finish()
	}
	if err != nil {
		return nil, err
	}
	switch status {
	case "success":
	case "error":
		return nil, &APIError{Type: ErrorType(errType), Message: errMsg, Warnings: d.res.meta.Warnings, Infos: d.res.meta.Infos}
	default:
		return nil, fmt.Errorf("%w: status %q", ErrBadResponse, status)
	}
	if !d.haveData {
		return nil, fmt.Errorf("%w: no data", ErrBadResponse)
	}
	return &d.res, d.resolve()
}

// resolve checks the result against its resultType.
func (d *decoder) resolve() error {
	switch d.res.typ {
	case model.ValVector, model.ValMatrix:
		if d.pairSeen || d.kind != model.ValNone && d.kind != d.res.typ {
			return fmt.Errorf("%w: result does not match resultType %q", ErrBadResponse, d.res.typ)
		}
		if d.res.typ == model.ValVector && d.res.vector == nil {
			d.res.vector = model.Vector{}
		}
		if d.res.typ == model.ValMatrix && d.res.matrix == nil && d.onSeries == nil {
			d.res.matrix = model.Matrix{}
		}
	case model.ValScalar:
		if !d.pairSeen {
			return fmt.Errorf("%w: scalar result missing", ErrBadResponse)
		}
		v, ok := parseValue([]byte(d.pairVal))
		if !ok {
			return fmt.Errorf("%w: bad scalar value %q", ErrBadResponse, d.pairVal)
		}
		d.res.scalar = model.Scalar{Value: model.SampleValue(v), Timestamp: d.pairTS}
	case model.ValString:
		if !d.pairSeen {
			return fmt.Errorf("%w: string result missing", ErrBadResponse)
		}
		d.res.str = model.String{Value: d.pairVal, Timestamp: d.pairTS}
	default:
		return fmt.Errorf("%w: missing resultType", ErrBadResponse)
	}
	return nil
}

// bool reads a JSON boolean.
func (d *decoder) bool() (bool, error) {
	if d.s.peek() == 't' {
		return true, d.s.literal("true")
	}
	return false, d.s.literal("false")
}

func (d *decoder) string() (string, error) {
	b, err := d.s.str()
	return string(b), err
}

func (d *decoder) data() error {
	s := d.s
	if s.peek() == 'n' {
		return s.literal("null")
	}
	d.haveData = true
	more, err := s.open('{', '}')
	for err == nil && more {
		var key []byte
		if key, err = s.str(); err != nil {
			return err
		}
		k := string(key)
		if err = s.expect(':'); err != nil {
			return err
		}
		switch k {
		case "resultType":
			var t string
			if t, err = d.string(); err == nil {
				if d.res.typ = valueType(t); d.res.typ == model.ValNone {
					err = fmt.Errorf("%w: unknown resultType %q", ErrBadResponse, t)
				}
			}
		case "result":
			err = d.result()
		case "stats":
			d.res.meta.Stats, err = s.raw()
		default:
			err = s.skip(0)
		}
		if err == nil {
			more, err = s.more('}')
		}
	}
	return err
}

func (d *decoder) result() error {
	s := d.s
	if s.peek() == 'n' {
		return s.literal("null")
	}
	more, err := s.open('[', ']')
	if err != nil || !more {
		return err
	}
	if s.peek() != '{' {
		// A scalar or string: [ts, "value"].
		ts, val, err := d.pair()
		if err != nil {
			return err
		}
		d.pairSeen, d.pairTS, d.pairVal = true, ts, string(val)
		return s.expect(']')
	}
	for err == nil && more {
		if err = d.series(); err == nil {
			more, err = s.more(']')
		}
	}
	return err
}

// pair reads the rest of a [ts, "value"] pair after its '[' and returns the
// value bytes (valid until the next scanner call).
func (d *decoder) pair() (model.Time, []byte, error) {
	s := d.s
	nb, err := s.number()
	if err != nil {
		return 0, nil, err
	}
	ts, ok := parseTimestamp(nb)
	if !ok {
		return 0, nil, s.fail("bad timestamp")
	}
	if err := s.expect(','); err != nil {
		return 0, nil, err
	}
	v, err := s.str()
	return model.Time(ts), v, err
}

// samplePair reads a whole [ts, "value"] pair.
func (d *decoder) samplePair() (model.SamplePair, error) {
	s := d.s
	if err := s.expect('['); err != nil {
		return model.SamplePair{}, err
	}
	ts, vb, err := d.pair()
	if err != nil {
		return model.SamplePair{}, err
	}
	v, ok := parseValue(vb)
	if !ok {
		return model.SamplePair{}, s.fail("bad sample value %q", vb)
	}
	return model.SamplePair{Timestamp: ts, Value: model.SampleValue(v)}, s.expect(']')
}

func (d *decoder) internStr(b []byte) string {
	if v, ok := d.intern[bstr(b)]; ok {
		return v
	}
	v := string(b)
	if len(d.intern) < maxIntern {
		d.intern[v] = v
	}
	return v
}

// metric reads a label set. Names are interned (they repeat in every
// series); the values of one series share a single string allocation.
func (d *decoder) metric() (model.Metric, error) {
	s := d.s
	d.names, d.lbl, d.offs = d.names[:0], d.lbl[:0], d.offs[:0]
	more, err := s.open('{', '}')
	for err == nil && more {
		var b []byte
		if b, err = s.str(); err != nil {
			return nil, err
		}
		d.names = append(d.names, d.internStr(b))
		if err = s.expect(':'); err != nil {
			return nil, err
		}
		if b, err = s.str(); err != nil {
			return nil, err
		}
		d.offs = append(d.offs, len(d.lbl))
		d.lbl = append(d.lbl, b...)
		more, err = s.more('}')
	}
	if err != nil {
		return nil, err
	}
	all := string(d.lbl)
	m := make(model.Metric, len(d.names))
	for i, name := range d.names {
		end := len(all)
		if i+1 < len(d.offs) {
			end = d.offs[i+1]
		}
		m[model.LabelName(name)] = model.LabelValue(all[d.offs[i]:end])
	}
	return m, nil
}

// values reads a matrix series' [[ts,"v"],...] into d.pairs.
func (d *decoder) values() error {
	s := d.s
	d.pairs = d.pairs[:0]
	if s.peek() == 'n' {
		return s.literal("null")
	}
	more, err := s.open('[', ']')
	for err == nil && more {
		if p, n, ok := fastPair(s.buf[s.pos:s.end]); ok {
			d.pairs = append(d.pairs, p)
			s.pos += n
		} else {
			var p model.SamplePair
			if p, err = d.samplePair(); err != nil {
				return err
			}
			d.pairs = append(d.pairs, p)
		}
		// Fast separator check; the general one handles white space and
		// buffer ends.
		if s.pos < s.end && s.buf[s.pos] == ',' {
			s.pos++
			continue
		}
		more, err = s.more(']')
	}
	return err
}

// fastPair parses a compact [ts,"value"] pair that lies wholly in b, as
// Prometheus writes it, and returns the bytes consumed. It reports false
// for anything else (white space, escapes, a pair cut by the buffer's
// end), which the general path then handles or rejects.
func fastPair(b []byte) (model.SamplePair, int, bool) {
	if len(b) < 6 || b[0] != '[' {
		return model.SamplePair{}, 0, false
	}
	i := 1
	for i < len(b) && b[i] != ',' {
		i++
	}
	if i >= len(b)-2 || b[i+1] != '"' {
		return model.SamplePair{}, 0, false
	}
	ts, ok := parseTimestamp(b[1:i])
	if !ok {
		return model.SamplePair{}, 0, false
	}
	j := i + 2
	start := j
	for j < len(b) && b[j] != '"' {
		if b[j] == '\\' || b[j] < 0x20 {
			return model.SamplePair{}, 0, false
		}
		j++
	}
	if j+1 >= len(b) || b[j+1] != ']' {
		return model.SamplePair{}, 0, false
	}
	v, ok := parseValue(b[start:j])
	if !ok {
		return model.SamplePair{}, 0, false
	}
	return model.SamplePair{Timestamp: model.Time(ts), Value: model.SampleValue(v)}, j + 2, true
}

func (d *decoder) setKind(k model.ValueType) error {
	if d.kind != model.ValNone && d.kind != k || d.res.typ != model.ValNone && d.res.typ != k {
		return d.s.fail("series of a %s in a %s result", k, d.res.typ)
	}
	d.kind = k
	return nil
}

// series reads one element of a vector or matrix result.
func (d *decoder) series() error {
	s := d.s
	var (
		metric     model.Metric
		kind       model.ValueType
		haveValue  bool
		value      model.SamplePair
		histogram  *model.SampleHistogramPair
		haveValues bool
		histograms []model.SampleHistogramPair
	)
	mark := func(k model.ValueType) error {
		if kind != model.ValNone && kind != k {
			return s.fail("sample mixes value and values")
		}
		kind = k
		return nil
	}
	more, err := s.open('{', '}')
	for err == nil && more {
		var key []byte
		if key, err = s.str(); err != nil {
			return err
		}
		var field int
		switch string(key) { // no allocation: compared, never stored
		case "metric":
			field = 1
		case "value":
			field = 2
		case "values":
			field = 3
		case "histogram":
			field = 4
		case "histograms":
			field = 5
		}
		// key is invalid from here on: the next read may move the buffer.
		if err = s.expect(':'); err != nil {
			return err
		}
		switch field {
		case 1:
			metric, err = d.metric()
		case 2:
			if err = mark(model.ValVector); err == nil {
				value, err = d.samplePair()
				haveValue = true
			}
		case 3:
			if err = mark(model.ValMatrix); err == nil {
				err = d.values()
				haveValues = true
			}
		case 4:
			if err = mark(model.ValVector); err == nil {
				histogram = new(model.SampleHistogramPair)
				err = d.rawJSON(histogram)
			}
		case 5:
			if err = mark(model.ValMatrix); err == nil {
				var hs []model.SampleHistogramPair // escapes; allocated only here
				err = d.rawJSON(&hs)
				histograms = hs
			}
		default:
			err = s.skip(0)
		}
		if err == nil {
			more, err = s.more('}')
		}
	}
	if err != nil {
		return err
	}
	if kind == model.ValNone {
		kind = d.res.typ
		if kind == model.ValNone {
			kind = d.kind
		}
	}
	if err := d.setKind(kind); err != nil {
		return err
	}
	if metric == nil {
		metric = model.Metric{}
	}
	switch kind {
	case model.ValVector:
		if !haveValue && histogram == nil {
			return s.fail("vector sample without value")
		}
		if len(d.samples) == cap(d.samples) {
			d.samples = make([]model.Sample, 0, sampleSlab)
		}
		d.samples = append(d.samples, model.Sample{Metric: metric, Value: value.Value, Timestamp: value.Timestamp})
		smp := &d.samples[len(d.samples)-1]
		if histogram != nil {
			smp.Timestamp, smp.Histogram = histogram.Timestamp, histogram.Histogram
		}
		d.res.vector = append(d.res.vector, smp)
	case model.ValMatrix:
		var vals []model.SamplePair
		if haveValues && len(d.pairs) > 0 {
			vals = make([]model.SamplePair, len(d.pairs))
			copy(vals, d.pairs)
		}
		if d.onSeries != nil {
			return d.onSeries(&model.SampleStream{Metric: metric, Values: vals, Histograms: histograms})
		}
		if len(d.streams) == cap(d.streams) {
			d.streams = make([]model.SampleStream, 0, streamSlab)
		}
		d.streams = append(d.streams, model.SampleStream{Metric: metric, Values: vals, Histograms: histograms})
		d.res.matrix = append(d.res.matrix, &d.streams[len(d.streams)-1])
	default:
		return s.fail("series in a %q result", kind)
	}
	return nil
}

// rawJSON decodes a rarely used member (native histograms) with
// encoding/json and the model package's own unmarshalers.
func (d *decoder) rawJSON(v any) error {
	raw, err := d.s.raw()
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: histogram: %w", ErrBadResponse, err)
	}
	return nil
}

func valueType(s string) model.ValueType {
	switch s {
	case "vector":
		return model.ValVector
	case "matrix":
		return model.ValMatrix
	case "scalar":
		return model.ValScalar
	case "string":
		return model.ValString
	}
	return model.ValNone
}
