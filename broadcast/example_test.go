package broadcast_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/promflow/promflow/broadcast"
)

// A hub mounted on "/" next to a page, as service-metrics does:
// WebSocket upgrades go to the hub, other requests get the page.
func ExampleNewHub() {
	hub, err := broadcast.NewHub(broadcast.HubOptions{
		ConnectMessage: "welcome",
		Topics:         []broadcast.Topic{{Name: "news", Kind: broadcast.EventTopic}},
	})
	if err != nil {
		log.Fatal(err)
	}
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

	// An event topic: every client gets each message, in order.
	if err := hub.Publish("news", map[string]any{"type": "news", "id": 7, "title": "hello"}); err != nil {
		log.Fatal(err)
	}
	_, msg, _ = c.Read(ctx)
	fmt.Println(string(msg))
	// Output:
	// true
	// {"id":7,"title":"hello","type":"news"}
}
