package promflowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RuleTestFailure is one failing case that promtool test rules reported.
type RuleTestFailure struct {
	File  string // the test file
	Group string // the test group's name, "" when it has none
	// Case is promtool's text for the case: "alertname: X, time: 3s" or
	// "expr: ..., time: ..." with the expected and the actual result, or
	// the file's error when promtool could not run its tests.
	Case string
}

// String renders the failure as RuleTest reports it: file, group, case.
func (f RuleTestFailure) String() string {
	if f.Group != "" {
		return fmt.Sprintf("%s: group %q: %s", f.File, f.Group, f.Case)
	}
	return fmt.Sprintf("%s: %s", f.File, f.Case)
}

// RuleTest runs `promtool test rules` (Debian package prometheus) on each
// unit test file (rule_files in them are relative to the file) and reports
// every failing case as an error of t, with what promtool expected and got.
// It returns the failures. Without promtool the test skips (fails when CI
// is set).
func RuleTest(t testing.TB, files ...string) []RuleTestFailure {
	t.Helper()
	promtool, err := LookBinary("promtool", "prometheus")
	if err != nil {
		SkipOrFail(t, "%v", err)
		return nil
	}
	if len(files) == 0 {
		t.Errorf("promflowtest: RuleTest needs at least one test file")
		return nil
	}
	var all []RuleTestFailure
	for _, f := range files {
		failures, err := runRuleTest(promtool, f)
		if err != nil {
			t.Errorf("promflowtest: %v", err)
			continue
		}
		for _, fail := range failures {
			t.Errorf("promtool test rules: %s", fail)
		}
		all = append(all, failures...)
	}
	return all
}

// runRuleTest runs promtool on one file; an error means promtool did not run.
func runRuleTest(promtool, file string) ([]RuleTestFailure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, promtool, "test", "rules", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil, nil
	case !errors.As(err, &exit):
		return nil, fmt.Errorf("run promtool test rules %s: %w", file, err)
	}
	failures := ParseRuleTestOutput(file, stderr.String())
	if len(failures) == 0 {
		out := strings.TrimSpace(stdout.String() + "\n" + stderr.String())
		failures = []RuleTestFailure{{File: file, Case: fmt.Sprintf("promtool failed (%v): %s", err, out)}}
	}
	return failures, nil
}

// ParseRuleTestOutput splits what `promtool test rules` wrote to stderr for
// one file into its failing cases: each "FAILED:" block is a test group
// (its "name:" line names it) holding one case per "alertname:" or "expr:"
// line with the indented lines after it. A block without cases (a file
// promtool could not load) is one failure carrying the block's text.
func ParseRuleTestOutput(file, stderr string) []RuleTestFailure {
	var out []RuleTestFailure
	for _, block := range strings.Split(stderr, "FAILED:")[1:] {
		var group string
		var cases []string
		var cur *strings.Builder
		for _, line := range strings.Split(block, "\n") {
			trimmed := strings.TrimSpace(line)
			switch {
			case trimmed == "":
			case strings.HasPrefix(trimmed, "name: ") && cur == nil:
				group = strings.TrimSuffix(strings.TrimPrefix(trimmed, "name: "), ",")
			case strings.HasPrefix(trimmed, "alertname: ") || strings.HasPrefix(trimmed, "expr: "):
				if cur != nil {
					cases = append(cases, cur.String())
				}
				cur = &strings.Builder{}
				cur.WriteString(strings.TrimSuffix(trimmed, ","))
			case cur != nil:
				cur.WriteString("\n" + strings.TrimRight(line, " "))
			default:
				// Text outside a case: a load or parse error of the file.
				cases = append(cases, trimmed)
			}
		}
		if cur != nil {
			cases = append(cases, cur.String())
		}
		for _, c := range cases {
			out = append(out, RuleTestFailure{File: file, Group: group, Case: c})
		}
		if len(cases) == 0 {
			out = append(out, RuleTestFailure{File: file, Group: group, Case: strings.TrimSpace(block)})
		}
	}
	return out
}
