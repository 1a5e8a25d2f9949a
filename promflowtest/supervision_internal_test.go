package promflowtest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/promflow/promflow/internal/supervise"
)

// TestChildThatCannotRestartIsReported: a child whose address stays taken
// after it crashed cannot be started again; after the supervisor's
// attempts Err reports it (the pipeline's only exit besides a signal).
func TestChildThatCannotRestartIsReported(t *testing.T) {
	saved := childSupervision
	// The first restart waits 250 ms: time for the test to take the address.
	childSupervision = supervise.Options{MinBackoff: 250 * time.Millisecond, MaxBackoff: 250 * time.Millisecond, MaxFailures: 3}
	t.Cleanup(func() { childSupervision = saved })
	p := Pipeline(t, PipelineOptions{})
	prom := p.Process("prometheus")
	if prom == nil {
		t.Fatal("no prometheus process")
	}
	if err := prom.Kill(); err != nil {
		t.Fatal(err)
	}
	hold, err := net.Listen("tcp", prom.Addr)
	if err != nil {
		t.Fatalf("restarted before the test could hold %s: %v", prom.Addr, err)
	}
	defer hold.Close()
	select {
	case err := <-p.Err():
		for _, want := range []string{"gave up", "prometheus", "after 3 attempts", "address already in use"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Err() = %v; want it to say %q", err, want)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no error on Err() for a child that cannot be restarted")
	}
	if p.Process("prometheus") != nil {
		t.Error("Process reports a running prometheus")
	}
	if n := p.Restarts("prometheus"); n != 0 {
		t.Errorf("Restarts = %d, want 0", n)
	}
}
