package promflowtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsMessage is a message from service-metrics' WebSocket.
type wsMessage struct {
	Type      string                     `json:"type"`
	Message   string                     `json:"message"`
	Timestamp string                     `json:"timestamp"`
	Data      map[string]json.RawMessage `json:"data"`
	at        time.Time
}

// wsFeed reads one WebSocket connection in a goroutine of its own until
// close.
type wsFeed struct {
	conn   *websocket.Conn
	msgs   chan wsMessage
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	err     error       // why reading stopped
	instant []time.Time // receipt times of instant_metrics messages
}

func dialFeed(ctx context.Context, u string) (*wsFeed, error) {
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("WebSocket %s: %w", u, err)
	}
	conn.SetReadLimit(8 << 20)
	rctx, cancel := context.WithCancel(context.Background())
	f := &wsFeed{conn: conn, msgs: make(chan wsMessage, 1024), cancel: cancel, done: make(chan struct{})}
	go f.read(rctx)
	return f, nil
}

func (f *wsFeed) read(ctx context.Context) {
	defer close(f.done)
	defer close(f.msgs)
	for {
		_, b, err := f.conn.Read(ctx)
		if err != nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
			return
		}
		var m wsMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		m.at = time.Now()
		if m.Type == "instant_metrics" {
			f.mu.Lock()
			f.instant = append(f.instant, m.at)
			f.mu.Unlock()
			// Snapshots are many and only the newest matters: drop one
			// rather than stall the connection when nobody reads.
			select {
			case f.msgs <- m:
			default:
			}
			continue
		}
		select {
		case f.msgs <- m:
		case <-ctx.Done():
			return
		}
	}
}

// next returns the next message that match accepts, skipping others.
func (f *wsFeed) next(ctx context.Context, match func(wsMessage) bool) (wsMessage, error) {
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				f.mu.Lock()
				err := f.err
				f.mu.Unlock()
				return wsMessage{}, fmt.Errorf("WebSocket fermé: %w", err)
			}
			if match(m) {
				return m, nil
			}
		case <-ctx.Done():
			return wsMessage{}, ctx.Err()
		}
	}
}

// interval is the median gap between instant_metrics messages (0 with
// fewer than two).
func (f *wsFeed) interval() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(f.instant); i++ {
		gaps = append(gaps, f.instant[i].Sub(f.instant[i-1]))
	}
	if len(gaps) == 0 {
		return 0
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	return gaps[len(gaps)/2].Round(100 * time.Millisecond)
}

func (f *wsFeed) close() {
	f.cancel()
	<-f.done
	_ = f.conn.CloseNow()
}

var errNoWebSocket = errors.New("pas de connexion WebSocket")

// webSocketStage is stage 4: the connection message, then an
// instant_metrics message.
func (s *seedRun) webSocketStage(ctx context.Context) {
	to := s.t.CheckTimeout
	s.check(ctx, StageWebSocket, "Connection Established", to, func(ctx context.Context) (string, error) {
		f, err := dialFeed(ctx, s.t.WebSocketURL)
		if err != nil {
			return "", err
		}
		s.ws = f
		m, err := f.next(ctx, func(wsMessage) bool { return true })
		if err != nil {
			return "aucun message", err
		}
		d := fmt.Sprintf("Message: %q", shorten(m.Message, 80))
		if m.Type != "connection" || m.Message != "Connected to service-metrics" {
			return fmt.Sprintf("premier message de type %q, %s", m.Type, d), errCheck
		}
		return d, nil
	})
	s.check(ctx, StageWebSocket, "Receive Instant Metrics", to, func(ctx context.Context) (string, error) {
		if s.ws == nil {
			return "", errNoWebSocket
		}
		m, err := s.ws.next(ctx, func(m wsMessage) bool { return m.Type == "instant_metrics" })
		if err != nil {
			return "aucun message instant_metrics", err
		}
		s.instant = &m
		for k := range m.Data {
			s.r.WebSocketKeys = append(s.r.WebSocketKeys, k)
		}
		sort.Strings(s.r.WebSocketKeys)
		s.r.WebSocketSample = m.Timestamp
		if len(m.Data) == 0 {
			return "message instant_metrics sans données", errCheck
		}
		return fmt.Sprintf("Données Prometheus reçues (%d requêtes)", len(m.Data)), nil
	})
}

// flowStage is stage 5: the values went all the way through.
func (s *seedRun) flowStage(ctx context.Context) {
	to := s.t.CheckTimeout
	s.check(ctx, StageFlow, "Metrics Reached Prometheus", to, func(context.Context) (string, error) {
		n := 0
		for _, v := range s.r.Values {
			if v.PrometheusSeen && v.Prometheus == v.Simulated {
				n++
			}
		}
		d := fmt.Sprintf("%d/%d métriques simulées présentes", n, len(s.r.Values))
		if n != len(s.r.Values) {
			return d, errCheck
		}
		return d, nil
	})
	s.check(ctx, StageFlow, "Service-Metrics Received Data", to, s.serviceReceived)
	if s.ws != nil {
		s.r.BroadcastInterval = s.ws.interval()
	}
	s.check(ctx, StageFlow, "Complete Pipeline Flow", to, func(context.Context) (string, error) {
		failed := s.r.Failed()
		if len(failed) > 0 {
			return fmt.Sprintf("Flux interrompu: %d test(s) en échec", len(failed)), errCheck
		}
		return "Flux E2E validé", nil
	})
}

// serviceReceived waits for an instant_metrics message that carries the
// simulated values. A service that does not broadcast the mock metrics at
// all (the original polls only its three Prometheus queries) passes on
// any instant_metrics message with data; one that broadcasts them must
// show the simulated values.
func (s *seedRun) serviceReceived(ctx context.Context) (string, error) {
	if s.ws == nil {
		return "", errNoWebSocket
	}
	if s.instant != nil && s.flowMatch(*s.instant) {
		return s.flowDetails(*s.instant)
	}
	m, err := s.ws.next(ctx, s.flowMatch)
	if err != nil {
		return "valeurs simulées non reçues par WebSocket", err
	}
	return s.flowDetails(m)
}

func (s *seedRun) flowMatch(m wsMessage) bool {
	if m.Type != "instant_metrics" || len(m.Data) == 0 {
		return false
	}
	present, equal := 0, 0
	for _, metric := range s.metrics {
		raw, ok := m.Data[metric.metric]
		if !ok {
			continue
		}
		present++
		if _, ok := resultValue(raw, metric.value); ok {
			equal++
		}
	}
	return present == 0 || equal == len(s.metrics)
}

func (s *seedRun) flowDetails(m wsMessage) (string, error) {
	n := 0
	for i, metric := range s.metrics {
		if v, ok := resultValue(m.Data[metric.metric], metric.value); ok {
			s.r.Values[i].Service, s.r.Values[i].ServiceSeen = v, true
			n++
		}
	}
	if n == 0 {
		return "WebSocket broadcast fonctionnel (instant_metrics sans les métriques simulées)", nil
	}
	return fmt.Sprintf("WebSocket broadcast fonctionnel: %d/%d valeurs simulées diffusées", n, len(s.metrics)), nil
}

// resultValue finds want among the samples of a vector result in the
// Prometheus API's shape; ok is false if it is not there.
func resultValue(raw json.RawMessage, want float64) (float64, bool) {
	var r struct {
		Result []struct {
			Value [2]json.RawMessage `json:"value"`
		} `json:"result"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &r) != nil {
		return 0, false
	}
	for _, smp := range r.Result {
		v, err := strconv.ParseFloat(jsonText(smp.Value[1]), 64)
		if err == nil && v == want {
			return v, true
		}
	}
	return 0, false
}
