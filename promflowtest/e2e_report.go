package promflowtest

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// stageText is a stage's section heading and objective, in the seed
// report's words.
type stageText struct{ heading, objective string }

func (r *SeedReport) stageText(s SeedStage) stageText {
	switch s {
	case StageMockMetrics:
		return stageText{"📋 Stage 1: Mock-Metrics Service (Port " + port(r.Targets.MockURL) + ")",
			"Vérifier que le service mock-metrics génère et expose correctement les métriques simulées."}
	case StagePrometheus:
		return stageText{"🔥 Stage 2: Prometheus (Port " + port(r.Targets.PrometheusURL) + ")",
			"Vérifier que Prometheus scrape correctement les métriques de mock-metrics et les stocke."}
	case StageServiceMetrics:
		return stageText{"📡 Stage 3: Service-Metrics (Port " + port(r.Targets.ServiceURL) + ")",
			"Vérifier que service-metrics expose les données via REST API et se connecte à Prometheus."}
	case StageWebSocket:
		return stageText{"🔌 Stage 4: WebSocket Real-Time",
			"Vérifier la connexion WebSocket et la réception des métriques en temps réel."}
	case StageFlow:
		return stageText{"🔗 Stage 5: Validation E2E du Flux Complet",
			"Valider que les données circulent correctement à travers tout le pipeline."}
	case StageAlertLoop:
		return stageText{"🚨 Stage 6: Boucle Alerte → Incident → WebSocket",
			"Vérifier qu'une alerte Prometheus (HighMemoryUsage, seuil 90) ouvre un incident visible en REST et par WebSocket, puis qu'il est résolu au retour à la normale."}
	}
	return stageText{s.String(), ""}
}

// stages returns the stages that have checks, in order.
func (r *SeedReport) stages() []SeedStage {
	var out []SeedStage
	for _, c := range r.Checks {
		if len(out) == 0 || out[len(out)-1] != c.Stage {
			out = append(out, c.Stage)
		}
	}
	return out
}

// stageTotals returns the checks of stage s and how many passed.
func (r *SeedReport) stageTotals(s SeedStage) (total, passed int) {
	for _, c := range r.Checks {
		if c.Stage == s {
			total++
			if c.Passed {
				passed++
			}
		}
	}
	return total, passed
}

func (r *SeedReport) stagePassed(s SeedStage) bool {
	total, passed := r.stageTotals(s)
	return total > 0 && total == passed
}

// WriteMarkdown writes the report in the form of the seed's
// E2E_TEST_REPORT.md: title, date, totals and success rate, the
// architecture, one table per stage, the flow of values, the by-service
// data and the conclusion. It returns the first write error.
func (r *SeedReport) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	r.writeHeader(bw)
	r.writeArchitecture(bw)
	for _, s := range r.stages() {
		r.writeStage(bw, s)
	}
	r.writeDatabase(bw)
	r.writeConclusion(bw)
	return bw.Flush()
}

func (r *SeedReport) writeHeader(w io.Writer) {
	total, passed, failed := r.Totals()
	rate := "0"
	if total > 0 {
		rate = strconv.FormatFloat(float64(int(float64(passed)*1000/float64(total)+0.5))/10, 'f', -1, 64)
	}
	mark := "✅"
	if !r.Passed() {
		mark = "❌"
	}
	fmt.Fprintf(w, "# 🔗 Rapport E2E: Flux Mock-Metrics → Prometheus → Service-Metrics\n\n")
	fmt.Fprintf(w, "**Date:** %s  \n**Type de test:** End-to-End (E2E)  \n**Durée totale:** ~%.1f secondes\n\n---\n\n", frenchDate(r.Started), r.Duration.Seconds())
	fmt.Fprintf(w, "## 📊 Résumé Global\n\n")
	writeTable(w, []string{"Métrique", "Valeur"}, [][]string{
		{"**Tests totaux**", strconv.Itoa(total)},
		{"**Tests réussis**", strconv.Itoa(passed)},
		{"**Tests échoués**", strconv.Itoa(failed)},
		{"**Taux de réussite**", mark + " **" + rate + "%**"},
	})
	fmt.Fprintf(w, "\n---\n\n")
}

var frenchMonths = [...]string{"Janvier", "Février", "Mars", "Avril", "Mai", "Juin", "Juillet", "Août", "Septembre", "Octobre", "Novembre", "Décembre"}

func frenchDate(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %s %d, %s UTC", t.Day(), frenchMonths[t.Month()-1], t.Year(), t.Format("15:04:05"))
}

func (r *SeedReport) writeArchitecture(w io.Writer) {
	names := []string{"MOCK-METRICS", "PROMETHEUS", "SERVICE-METRICS"}
	hosts := []string{host(r.Targets.MockURL), host(r.Targets.PrometheusURL), host(r.Targets.ServiceURL)}
	width := 21
	for _, h := range hosts {
		width = max(width, utf8.RuneCountInString(h)+4)
	}
	dash := strings.Repeat("─", width)
	box := func(left, fill, right string, cells []string, sep string) string {
		var parts []string
		for _, c := range cells {
			parts = append(parts, left+center(c, width, fill)+right)
		}
		return strings.Join(parts, sep)
	}
	scrape := "Scrape périodique"
	if r.ScrapeInterval != "" {
		scrape = "Scrape toutes les " + r.ScrapeInterval
	}
	col := func(texts ...string) string {
		var b strings.Builder
		for _, t := range texts {
			b.WriteString(pad("         │ "+t, width+10))
		}
		return strings.TrimRight(b.String(), " ")
	}
	fmt.Fprintf(w, "## 🏗️ Architecture du Pipeline Testé\n\n```\n")
	fmt.Fprintln(w, strings.Repeat("┌"+dash+"┐        ", 2)+"┌"+dash+"┐")
	fmt.Fprintln(w, box("│", " ", "│", names, "  ───▶  "))
	fmt.Fprintln(w, box("│", " ", "│", hosts, "        "))
	fmt.Fprintln(w, strings.Repeat("└"+dash+"┘        ", 2)+"└"+dash+"┘")
	fmt.Fprintln(w, col("", "", ""))
	fmt.Fprintln(w, col("Expose métriques", scrape, "REST API"))
	fmt.Fprintln(w, col("mock_* metrics", "Stocke time-series", "WebSocket broadcast"))
	fmt.Fprintln(w, col("", "", ""))
	line := strings.Repeat("─", width+9)
	fmt.Fprintf(w, "         └%s┴%s┴───────▶ Frontend\n```\n\n---\n\n", line, line)
}

// writeStage writes one stage's section: heading, objective, the table of
// checks and what the stage observed.
func (r *SeedReport) writeStage(w io.Writer, s SeedStage) {
	txt := r.stageText(s)
	fmt.Fprintf(w, "## %s\n\n**Objectif:** %s\n\n", txt.heading, txt.objective)
	var rows [][]string
	for _, c := range r.Checks {
		if c.Stage != s {
			continue
		}
		result := "✅ PASSED"
		if !c.Passed {
			result = "❌ FAILED"
		}
		rows = append(rows, []string{c.Name, result, c.Details})
	}
	writeTable(w, []string{"Test", "Résultat", "Détails"}, rows)
	fmt.Fprintln(w)
	switch s {
	case StageMockMetrics:
		r.writeMetricSample(w)
	case StagePrometheus:
		r.writeScrapeConfig(w)
	case StageServiceMetrics:
		fmt.Fprintf(w, "**Endpoints REST testés:**\n\n- `GET /health` → Status du service\n- `GET /metrics` → Métriques Prometheus natives\n- `GET /api/metrics/incidents/by-service` → Agrégation par service\n- `GET /api/metrics/incidents/details` → Détails avec MTTA/MTTR\n\n")
	case StageWebSocket:
		r.writeWebSocketSample(w)
	case StageFlow:
		r.writeFlow(w)
	}
	fmt.Fprintf(w, "---\n\n")
}

func (r *SeedReport) writeMetricSample(w io.Writer) {
	if len(r.MetricSample) == 0 {
		return
	}
	fmt.Fprintf(w, "**Métriques exposées (échantillon):**\n\n")
	for _, name := range r.MetricSample {
		fmt.Fprintf(w, "- `%s`\n", name)
	}
	fmt.Fprintln(w)
}

func (r *SeedReport) writeScrapeConfig(w io.Writer) {
	target := host(r.Targets.MockURL)
	path := "/metrics"
	if u, err := url.Parse(r.ScrapeURL); err == nil && u.Host != "" {
		target, path = u.Host, u.Path
	}
	fmt.Fprintf(w, "**Configuration scraping:**\n\n```yaml\n- job_name: %q\n  metrics_path: %s\n  static_configs:\n    - targets: [%q]\n```\n\n", r.Targets.MockJob, path, target)
}

func (r *SeedReport) writeWebSocketSample(w io.Writer) {
	if len(r.WebSocketKeys) == 0 {
		return
	}
	fmt.Fprintf(w, "**Données WebSocket reçues:**\n\n```json\n{\n  \"type\": \"instant_metrics\",\n  \"timestamp\": %q,\n  \"data\": {\n", r.WebSocketSample)
	for i, k := range r.WebSocketKeys {
		comma := ","
		if i == len(r.WebSocketKeys)-1 {
			comma = ""
		}
		fmt.Fprintf(w, "    %q: { ... }%s\n", k, comma)
	}
	fmt.Fprintf(w, "  }\n}\n```\n\n")
}

// writeFlow writes the seed's "Validation du flux" diagram with the value
// of each simulated metric at each step.
func (r *SeedReport) writeFlow(w io.Writer) {
	mark := func(ok bool) string {
		if ok {
			return "✅"
		}
		return "❌"
	}
	values := func(get func(SeedValue) (float64, bool)) {
		for _, v := range r.Values {
			val, ok := get(v)
			s := "—"
			if ok {
				s = formatValue(val)
			}
			fmt.Fprintf(w, "   │   - %s = %s\n", v.Metric, s)
		}
	}
	fmt.Fprintf(w, "### Validation du flux:\n\n```\n%s Mock-Metrics (%s)\n   │\n   │ Métriques simulées:\n", mark(r.stagePassed(StageMockMetrics)), port(r.Targets.MockURL))
	values(func(v SeedValue) (float64, bool) { return v.Simulated, true })
	fmt.Fprintf(w, "   │\n   ▼\n%s Prometheus (%s)\n   │\n   │ Valeurs interrogées:\n", mark(r.stagePassed(StagePrometheus)), port(r.Targets.PrometheusURL))
	values(func(v SeedValue) (float64, bool) { return v.Prometheus, v.PrometheusSeen })
	if r.ScrapeURL != "" {
		fmt.Fprintf(w, "   │ Target health: UP\n   │ Last scrape: %s\n", r.LastScrape.UTC().Format("2006-01-02T15:04:05"))
	}
	fmt.Fprintf(w, "   │\n   ▼\n%s Service-Metrics (%s)\n   │\n   │ Query Prometheus API, expose via REST + WebSocket\n   │ Valeurs diffusées (instant_metrics):\n", mark(r.stagePassed(StageServiceMetrics)), port(r.Targets.ServiceURL))
	values(func(v SeedValue) (float64, bool) { return v.Service, v.ServiceSeen })
	every := ""
	if r.BroadcastInterval > 0 {
		every = " toutes les " + formatDuration(r.BroadcastInterval)
	}
	fmt.Fprintf(w, "   │\n   ▼\n%s WebSocket Clients\n   │\n   │ Reçoivent instant_metrics%s\n   └──▶ Frontend UI\n```\n\n", mark(r.stagePassed(StageWebSocket)), every)
}

func (r *SeedReport) writeDatabase(w io.Writer) {
	fmt.Fprintf(w, "## 📈 Données de la Base PostgreSQL\n\nLes endpoints REST retournent des données réelles de la base:\n\n**Incidents par Service:**\n\n")
	if len(r.Services) == 0 {
		fmt.Fprintf(w, "_Aucun incident en base._\n\n---\n\n")
		return
	}
	var rows [][]string
	for _, s := range r.Services {
		rows = append(rows, []string{s.Service, strconv.FormatInt(s.Total, 10), strconv.FormatInt(s.Open, 10),
			strconv.FormatInt(s.Acknowledged, 10), strconv.FormatInt(s.Resolved, 10)})
	}
	writeTable(w, []string{"Service", "Total", "Open", "Acknowledged", "Resolved"}, rows)
	fmt.Fprintf(w, "\n---\n\n")
}

func (r *SeedReport) writeConclusion(w io.Writer) {
	state := func(s SeedStage, ok string) string {
		if r.stagePassed(s) {
			return "✅ " + ok
		}
		return "❌ En échec"
	}
	scrape, every := "—", "—"
	if r.ScrapeInterval != "" {
		scrape = r.ScrapeInterval + " interval"
	}
	if r.BroadcastInterval > 0 {
		every = formatDuration(r.BroadcastInterval) + " interval"
	}
	pipeline := "❌ **Non validé**"
	if r.Passed() {
		pipeline = "✅ **Validé**"
	}
	rows := [][]string{
		{"Mock-Metrics", state(StageMockMetrics, "Opérationnel"), r.latency(StageMockMetrics)},
		{"Prometheus Scraping", state(StagePrometheus, "Fonctionnel"), scrape},
		{"Service-Metrics REST", state(StageServiceMetrics, "Opérationnel"), r.latency(StageServiceMetrics)},
		{"WebSocket Broadcast", state(StageWebSocket, "Fonctionnel"), every},
	}
	if total, _ := r.stageTotals(StageAlertLoop); total > 0 {
		rows = append(rows, []string{"Alerte → Incident", state(StageAlertLoop, "Fonctionnel"), "~" + formatDuration(r.stageDuration(StageAlertLoop)) + " total"})
	}
	rows = append(rows, []string{"Pipeline E2E", pipeline, "~" + formatDuration(r.Duration) + " total"})
	fmt.Fprintf(w, "## ✅ Conclusion\n\n")
	writeTable(w, []string{"Composant", "État", "Latence"}, rows)
	fmt.Fprintf(w, "\n### Tests réussis par stage:\n\n")
	for _, s := range r.stages() {
		total, passed := r.stageTotals(s)
		mark := "✅"
		if passed != total {
			mark = "❌"
		}
		fmt.Fprintf(w, "- **Stage %d (%s):** %d/%d %s\n", int(s), s, passed, total, mark)
	}
	if r.Passed() {
		fmt.Fprintf(w, "\n**Le flux complet Mock-Metrics → Prometheus → Service-Metrics est entièrement fonctionnel et validé.**\n\n")
	} else {
		_, _, failed := r.Totals()
		fmt.Fprintf(w, "\n**Le flux Mock-Metrics → Prometheus → Service-Metrics n'est pas validé: %d test(s) en échec.**\n\n", failed)
	}
	fmt.Fprintf(w, "---\n\n_Rapport généré par: promflow (`promflowtest.RunSeedChecks`, `go run ./examples/pipeline -e2e-report`)_\n")
}

// latency is the slowest check of a stage, as "< N ms".
func (r *SeedReport) latency(s SeedStage) string {
	var slowest time.Duration
	for _, c := range r.Checks {
		if c.Stage == s {
			slowest = max(slowest, c.Duration)
		}
	}
	if slowest == 0 {
		return "—"
	}
	return "< " + formatDuration(slowest)
}

func (r *SeedReport) stageDuration(s SeedStage) time.Duration {
	var d time.Duration
	for _, c := range r.Checks {
		if c.Stage == s {
			d += c.Duration
		}
	}
	return d
}

// formatDuration writes durations as the seed does: "10ms", "15s", "25.5s".
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
	}
	return strconv.FormatFloat(float64(d.Round(100*time.Millisecond))/float64(time.Second), 'f', -1, 64) + "s"
}

// writeTable writes a Markdown table with aligned columns, as the seed's.
func writeTable(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = displayWidth(h)
	}
	for ri, row := range rows {
		for i := range row {
			row[i] = cell(row[i])
			widths[i] = max(widths[i], displayWidth(row[i]))
		}
		rows[ri] = row
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString("| " + pad(c, widths[i]) + " ")
		}
		fmt.Fprintln(w, b.String()+"|")
	}
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = strings.Repeat("-", widths[i])
	}
	line(seps)
	for _, row := range rows {
		line(row)
	}
}

// cell makes s safe in a table cell: one line, no bare "|".
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func pad(s string, n int) string {
	if k := displayWidth(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// displayWidth counts the columns s takes in a monospace font, where the
// report's emoji (✅, ❌) take two, so that tables line up as the seed's.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r == '✅' || r == '❌' || r >= 0x1F300 && r <= 0x1FAFF:
			n += 2
		case r == 0xFE0F: // variation selector: no width of its own
		default:
			n++
		}
	}
	return n
}

func center(s string, n int, fill string) string {
	k := utf8.RuneCountInString(s)
	if k >= n {
		return s
	}
	left := (n - k) / 2
	if left > 3 {
		left = 3
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, n-k-left)
}

func host(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

func port(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}
