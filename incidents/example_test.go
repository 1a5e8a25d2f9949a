package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/promflow/promflow/incidents"
)

// This is how a service composes the package: migrate, build a store, mount
// its REST API (including the Alertmanager webhook), register its collector
// and forward the change feed. (The examples of this package need a
// PostgreSQL server at DATABASE_URL, so they are compiled, not run; the
// package's tests run the same calls against a real database.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := incidents.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	store := incidents.NewStore(pool, incidents.Options{})

	mux := http.NewServeMux()
	mux.Handle("/api/", store.Handler())
	prometheus.MustRegister(incidents.NewCollector(store, incidents.CollectorOptions{}))

	sub, err := store.Subscribe(ctx, incidents.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	go func() {
		for ev := range sub.Events() {
			b, _ := json.Marshal(ev) // {"kind":"acknowledged","id":"...","incident":{...}}
			fmt.Println(string(b))   // e.g. hub.Publish("incidents", b)
		}
	}()
	log.Fatal(http.ListenAndServe("127.0.0.1:0", mux))
}

// MTTA of one service over all time. (Needs PostgreSQL: compiled, not run.)
func ExampleStore_Stats() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store := incidents.NewStore(pool, incidents.Options{})
	st, err := store.Stats(ctx, incidents.StatsQuery{Service: "checkout"})
	if err != nil {
		log.Fatal(err)
	}
	if st.Overall.MTTA != nil {
		fmt.Printf("MTTA %.0fs (p90 %.0fs) over %d acknowledged incidents\n",
			st.Overall.MTTA.Mean, st.Overall.MTTA.P90, st.Overall.MTTA.Count)
	}
}

// Acknowledge fails with a *StateError, naming the status that forbids it,
// when the incident is no longer open. (Needs PostgreSQL: compiled, not run.)
func ExampleStore_Acknowledge() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store := incidents.NewStore(pool, incidents.Options{})
	in, err := store.Open(ctx, incidents.NewIncident{Title: "Disk almost full", Source: "db", Severity: "critical"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Acknowledge(ctx, in.ID); err != nil {
		var se *incidents.StateError
		if errors.As(err, &se) {
			fmt.Println("already", se.From)
			return
		}
		log.Fatal(err)
	}
}
