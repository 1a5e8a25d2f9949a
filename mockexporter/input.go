package mockexporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// checkJSONText refuses what encoding/json would silently replace with
// U+FFFD: invalid UTF-8, and \u escapes of a lone surrogate (a high
// surrogate not followed by an escaped low one, or a low one alone).
func checkJSONText(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("body is not valid UTF-8")
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // the escaped byte; outside strings a backslash is a syntax error anyway
		if i >= len(data) || data[i] != 'u' {
			continue
		}
		c, ok := hex4(data, i+1)
		if !ok {
			continue // the decoder reports the bad escape
		}
		switch {
		case c >= 0xdc00 && c <= 0xdfff:
			return fmt.Errorf(`lone surrogate \u%04x at byte %d`, c, i-1)
		case c >= 0xd800 && c <= 0xdbff:
			lo, ok := hex4(data, i+7)
			if !ok || data[i+5] != '\\' || data[i+6] != 'u' || lo < 0xdc00 || lo > 0xdfff {
				return fmt.Errorf(`lone surrogate \u%04x at byte %d`, c, i-1)
			}
			i += 10 // past the low surrogate's escape
		default:
			i += 4
		}
	}
	return nil
}

// hex4 reads four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	var c rune
	for _, b := range data[i : i+4] {
		switch {
		case b >= '0' && b <= '9':
			c = c<<4 | rune(b-'0')
		case b >= 'a' && b <= 'f':
			c = c<<4 | rune(b-'a'+10)
		case b >= 'A' && b <= 'F':
			c = c<<4 | rune(b-'A'+10)
		default:
			return 0, false
		}
	}
	return c, true
}

// decodeYAMLStrict decodes one YAML document into v: unknown fields, a
// second document and numbers that are not decimal (0x10, 0o17, 1_000,
// .inf, .nan, which YAML resolves as numbers) are errors.
func decodeYAMLStrict(data []byte, v any) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the YAML document")
	}
	if err := checkYAMLNumbers(&doc, 0); err != nil {
		return err
	}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func checkYAMLNumbers(n *yaml.Node, depth int) error {
	if depth > 100 {
		return errors.New("document nested too deeply")
	}
	if n.Kind == yaml.ScalarNode {
		if tag := n.ShortTag(); (tag == "!!int" || tag == "!!float") && !isDecimal(n.Value) {
			return fmt.Errorf("line %d: %q is not a finite decimal number", n.Line, truncate(n.Value))
		}
	}
	for _, c := range n.Content {
		if err := checkYAMLNumbers(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}
