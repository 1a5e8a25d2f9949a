package promquery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// scanBufSize is the initial size of the scanner's read buffer. It only grows
// when a single token (or a captured raw value) is bigger than the buffer.
const scanBufSize = 64 << 10

// maxDepth bounds nesting in skipped values so hostile input cannot exhaust
// the stack.
const maxDepth = 256

// scanner is a strict, streaming JSON tokenizer over an io.Reader with one
// reusable buffer. Byte slices it returns point into the buffer (or into
// scratch) and are valid only until the next call.
type scanner struct {
	r       io.Reader
	buf     []byte
	pos     int   // next unread byte
	end     int   // end of valid data in buf
	mark    int   // start of a raw capture, or -1
	base    int64 // stream offset of buf[0]
	eof     bool
	rerr    error // read error other than io.EOF
	scratch []byte
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, scanBufSize), mark: -1}
}

// fill reads more data, keeping unread bytes (and a raw capture) in the
// buffer. It reports whether new bytes arrived.
func (s *scanner) fill() bool {
	if s.eof || s.rerr != nil {
		return false
	}
	keep := s.pos
	if s.mark >= 0 && s.mark < keep {
		keep = s.mark
	}
	if keep > 0 {
		n := copy(s.buf, s.buf[keep:s.end])
		s.base += int64(keep)
		s.pos -= keep
		if s.mark >= 0 {
			s.mark -= keep
		}
		s.end = n
	}
	if s.end == len(s.buf) {
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range 100 {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.eof = true
			} else {
				s.rerr = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	s.rerr = io.ErrNoProgress
	return false
}

// fail returns the error to report at the current position: the read error
// if there was one, else a syntax error.
func (s *scanner) fail(format string, args ...any) error {
	if s.rerr != nil {
		return s.rerr
	}
	if s.pos >= s.end && s.eof {
		return fmt.Errorf("%w: unexpected end of body at offset %d: %w", ErrBadResponse, s.base+int64(s.pos), io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: offset %d: %s", ErrBadResponse, s.base+int64(s.pos), fmt.Sprintf(format, args...))
}

// peek skips white space and returns the next byte without consuming it, or
// 0 at the end of input.
func (s *scanner) peek() byte {
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				return c
			}
			s.pos++
		}
		if !s.fill() {
			return 0
		}
	}
}

// expect consumes c (after white space) or fails.
func (s *scanner) expect(c byte) error {
	if s.peek() != c || s.pos >= s.end {
		return s.fail("expected %q", c)
	}
	s.pos++
	return nil
}

// more is called after an element of an array or object: it consumes a ','
// and reports true, or consumes the closing byte and reports false.
func (s *scanner) more(closing byte) (bool, error) {
	switch s.peek() {
	case ',':
		s.pos++
		return true, nil
	case closing:
		if s.pos < s.end {
			s.pos++
			return false, nil
		}
	}
	return false, s.fail("expected ',' or %q", closing)
}

// open consumes an opening byte and reports whether the container is
// non-empty (an immediately following closing byte is consumed).
func (s *scanner) open(opening, closing byte) (bool, error) {
	if err := s.expect(opening); err != nil {
		return false, err
	}
	if s.peek() == closing && s.pos < s.end {
		s.pos++
		return false, nil
	}
	return true, nil
}

// str reads a JSON string and returns its decoded bytes.
func (s *scanner) str() ([]byte, error) {
	if s.peek() != '"' || s.pos >= s.end {
		return nil, s.fail("expected string")
	}
	s.pos++
	for {
		i := s.pos
		ascii := true
		buf := s.buf[:s.end]
		for i < len(buf) {
			c := buf[i]
			if c == '"' {
				b := buf[s.pos:i]
				if !ascii && !utf8.Valid(b) {
					return s.strSlow()
				}
				s.pos = i + 1
				return b, nil
			}
			if c == '\\' || c < 0x20 {
				return s.strSlow()
			}
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
		if !s.fill() {
			return nil, s.fail("unterminated string")
		}
	}
}

// ensure makes at least n unread bytes available, if the input has them.
func (s *scanner) ensure(n int) bool {
	for s.end-s.pos < n {
		if !s.fill() {
			return false
		}
	}
	return true
}

// strSlow decodes a string with escapes or invalid UTF-8 into scratch, with
// the semantics of encoding/json (invalid UTF-8 and lone surrogates become
// U+FFFD).
func (s *scanner) strSlow() ([]byte, error) {
	out := s.scratch[:0]
	for {
		if s.pos >= s.end && !s.fill() {
			return nil, s.fail("unterminated string")
		}
		c := s.buf[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.scratch = out
			return out, nil
		case c < 0x20:
			return nil, s.fail("control character in string")
		case c == '\\':
			if !s.ensure(2) {
				return nil, s.fail("unterminated escape")
			}
			e := s.buf[s.pos+1]
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4(2)
				if !ok {
					return nil, s.fail("bad \\u escape")
				}
				s.pos += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if s.ensure(6) && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
						if v, ok := s.hex4(2); ok {
							r2 = v
						}
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						s.pos += 6
						r = d
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, s.fail("bad escape \\%c", e)
			}
			s.pos += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.pos++
		default:
			s.ensure(utf8.UTFMax)
			r, size := utf8.DecodeRune(s.buf[s.pos:s.end])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s.buf[s.pos:s.pos+size]...)
			}
			s.pos += size
		}
	}
}

// hex4 parses the four hex digits that start off bytes after s.pos. The
// position is taken after ensure, which may move the buffer's contents.
func (s *scanner) hex4(off int) (rune, bool) {
	if !s.ensure(off + 4) {
		return 0, false
	}
	i := s.pos + off
	var r rune
	for _, c := range s.buf[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number token (validated) and returns its bytes.
func (s *scanner) number() ([]byte, error) {
	s.peek()
	for {
		i := s.pos
		buf := s.buf[:s.end]
		for i < len(buf) && isNumByte(buf[i]) {
			i++
		}
		if i < len(buf) || !s.fill() {
			b := buf[s.pos:i]
			if !validNumber(b) {
				return nil, s.fail("invalid number")
			}
			s.pos = i
			return b, nil
		}
	}
}

func isNumByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// validNumber checks the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// literal consumes the literal word (true, false, null).
func (s *scanner) literal(word string) error {
	if !s.ensure(len(word)) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// skip consumes any JSON value, checking its syntax.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.fail("nesting too deep")
	}
	switch c := s.peek(); c {
	case '{':
		more, err := s.open('{', '}')
		for err == nil && more {
			if _, err = s.str(); err != nil {
				return err
			}
			if err = s.expect(':'); err != nil {
				return err
			}
			if err = s.skip(depth + 1); err != nil {
				return err
			}
			more, err = s.more('}')
		}
		return err
	case '[':
		more, err := s.open('[', ']')
		for err == nil && more {
			if err = s.skip(depth + 1); err != nil {
				return err
			}
			more, err = s.more(']')
		}
		return err
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, err := s.number()
			return err
		}
		return s.fail("unexpected character %q", c)
	}
}

// raw consumes any JSON value and returns a copy of its bytes.
func (s *scanner) raw() ([]byte, error) {
	s.peek()
	s.mark = s.pos
	err := s.skip(0)
	start := s.mark
	s.mark = -1
	if err != nil {
		return nil, err
	}
	return bytes.Clone(s.buf[start:s.pos]), nil
}

// strings reads an array of strings, or null.
func (s *scanner) strings() ([]string, error) {
	if s.peek() == 'n' {
		return nil, s.literal("null")
	}
	more, err := s.open('[', ']')
	out := []string{}
	for err == nil && more {
		var b []byte
		if b, err = s.str(); err != nil {
			return nil, err
		}
		out = append(out, string(b))
		more, err = s.more(']')
	}
	return out, err
}

// end checks that nothing but white space follows the document.
func (s *scanner) finish() error {
	if s.peek() != 0 || s.pos < s.end {
		return s.fail("data after the end of the answer")
	}
	if s.rerr != nil {
		return s.rerr
	}
	return nil
}

// bstr views b as a string without copying; only for immediate parsing.
func bstr(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// parseValue parses a sample value string ("1.5", "NaN", "+Inf").
func parseValue(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(bstr(b), 64)
	return f, err == nil
}

// parseTimestamp converts a JSON number of Unix seconds into milliseconds
// exactly (no float rounding for the usual "1435781451.781" form). It
// checks the JSON number grammar as it goes.
func parseTimestamp(b []byte) (int64, bool) {
	i, neg := 0, false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var sec int64
	if i < len(b) && b[i] == '0' {
		i++
	} else {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			sec = sec*10 + int64(b[i]-'0')
			i++
		}
	}
	if i == start {
		return 0, false
	}
	if i-start > 15 {
		return parseTimestampFloat(b)
	}
	var ms int64
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if n < 3 {
				ms = ms*10 + int64(b[i]-'0')
			}
			n++
			i++
		}
		if n == 0 {
			return 0, false
		}
		for ; n < 3; n++ {
			ms *= 10
		}
	}
	if i != len(b) {
		return parseTimestampFloat(b) // exponent form, checked there
	}
	t := sec*1000 + ms
	if neg {
		t = -t
	}
	return t, true
}

func parseTimestampFloat(b []byte) (int64, bool) {
	if !validNumber(b) {
		return 0, false
	}
	f, err := strconv.ParseFloat(bstr(b), 64)
	if err != nil || f > 9.2e15 || f < -9.2e15 {
		return 0, false
	}
	ms := f * 1000
	if ms < 0 {
		return int64(ms - 0.5), true
	}
	return int64(ms + 0.5), true
}
