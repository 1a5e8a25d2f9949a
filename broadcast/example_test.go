package broadcast_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/promflow/promflow/broadcast"
	"github.com/promflow/promflow/promquery"
)

// A hub mounted on "/" next to a page, as the service-metrics example does:
// WebSocket upgrades go to the hub, other requests get the page.
func ExampleNewHub() {
	hub := broadcast.NewHub(broadcast.HubOptions{})
	defer hub.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if broadcast.IsWebSocketUpgrade(r) {
			hub.ServeHTTP(w, r)
			return
		}
		fmt.Fprintln(w, "<!doctype html><title>dashboard</title>")
	})
	mux.Handle("/ws", hub)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A browser would do this in JavaScript.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	_, msg, _ := c.Read(ctx)
	fmt.Println(strings.Contains(string(msg), `"type":"connection"`))

	// Incidents are events: every client gets each one, in order.
	if err := hub.Publish(broadcast.TopicIncident, map[string]any{"type": "incident", "id": 7, "status": "open"}); err != nil {
		log.Fatal(err)
	}
	_, msg, _ = c.Read(ctx)
	fmt.Println(string(msg))
	// Output:
	// true
	// {"id":7,"status":"open","type":"incident"}
}

// A poller publishing the default instant queries of a Prometheus server to
// a hub every 10 s until interrupted.
func ExampleNewPoller() {
	hub := broadcast.NewHub(broadcast.HubOptions{})
	prom, err := promquery.New("http://localhost:9090", promquery.Options{})
	if err != nil {
		log.Fatal(err)
	}
	poller, err := broadcast.NewPoller(prom, hub, broadcast.PollerOptions{
		Interval: 10 * time.Second,
		Instant:  broadcast.DefaultInstantQueries(),
		Range: []broadcast.RangeQuery{
			{Name: "memory_1h", Query: "mock_high_memory_usage_bytes", Window: time.Hour, Step: time.Minute},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go http.ListenAndServe("localhost:8080", hub) //nolint:errcheck // example
	_ = poller.Run(ctx)
	_ = hub.Shutdown(context.Background())
}
