// service-metrics dashboard: plain JavaScript, no build step, no external
// network. Data: the WebSocket (/ws: instant_metrics, range_metrics,
// range_update, alerts, incident), the incidents REST API and /ready.
"use strict";

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (sel) => document.querySelector(sel);

function fmtNum(v) {
  if (v == null || Number.isNaN(v)) return "–";
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (Number.isInteger(v)) return String(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return String(+v.toFixed(2));
  return String(+v.toPrecision(3));
}

function fmtDur(s) {
  if (s == null || !isFinite(s)) return "–";
  if (s < 1 && s > 0) return Math.round(s * 1000) + "ms";
  s = Math.round(s);
  const two = (a, ua, b, ub) => a + ua + (b ? " " + b + ub : "");
  if (s < 60) return s + "s";
  if (s < 3600) return two(Math.floor(s / 60), "m", s % 60, "s");
  if (s < 86400) return two(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "m");
  return two(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
}

// fmtDurTick formats a tick of a duration axis with the precision its step
// needs: ticks 0.5 ms apart read 10ms, 10.5ms, 11ms, not 10ms, 11ms, 11ms.
function fmtDurTick(s, step) {
  if (!(step < 1) || s === 0) return fmtDur(s);
  const digits = (unitStep) => { // decimals that write the step exactly
    let d = 0;
    while (d < 6 && Math.abs(Math.round(unitStep * 10 ** d) - unitStep * 10 ** d) > 1e-6) d++;
    return d;
  };
  if (Math.abs(s) < 1) return +(s * 1000).toFixed(digits(step * 1000)) + "ms";
  return +s.toFixed(digits(step)) + "s";
}

function fmtPct(r) { return r == null || !isFinite(r) ? "–" : Math.round(r * 1000) / 10 + "%"; }

// unitOf reads a metric's unit from its name's suffix (Prometheus naming
// conventions): bytes, percent, ratio (shown as %), seconds; else none.
function unitOf(name) {
  name = String(name || "");
  if (/_bytes(_total)?$/.test(name)) return "bytes";
  if (/_percent$/.test(name)) return "percent";
  if (/_ratio$/.test(name)) return "ratio";
  if (/_seconds(_total)?$/.test(name)) return "seconds";
  return "";
}

// fmtValue returns [number text, unit text] for a value in a unit.
function fmtValue(v, unit) {
  if (v == null || Number.isNaN(v)) return ["–", ""];
  switch (unit) {
    case "bytes": {
      const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
      let i = 0, x = v;
      while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
      return [i === 0 ? fmtNum(x) : String(+x.toPrecision(3)), units[i]];
    }
    case "percent": return [fmtNum(v), "%"];
    case "ratio": return [fmtNum(v * 100), "%"];
    case "seconds": {
      const a = Math.abs(v);
      if (a > 0 && a < 1) return [fmtNum(v * 1000), "ms"];
      if (a < 120) return [fmtNum(v), "s"];
      if (a < 7200) return [fmtNum(v / 60), "min"];
      return [fmtNum(v / 3600), "h"];
    }
  }
  return [fmtNum(v), ""];
}
const valueText = (v, unit) => fmtValue(v, unit).filter(Boolean).join(" ");

function labelText(m) {
  const parts = Object.entries(m || {}).filter(([k]) => k !== "__name__").map(([k, v]) => k + "=" + v);
  return parts.join(", ") || (m && m.__name__) || "(no labels)";
}
// splitLabels returns the labels all the metrics share (but __name__) and,
// for each metric, the others: a legend names series by what tells them
// apart.
function splitLabels(metrics) {
  const common = {};
  if (metrics.length > 1) {
    for (const [k, v] of Object.entries(metrics[0] || {})) {
      if (k !== "__name__" && metrics.every((m) => m && m[k] === v)) common[k] = v;
    }
  }
  const own = metrics.map((m) => Object.fromEntries(Object.entries(m || {}).filter(([k]) => !(k in common))));
  return { common, own };
}
function seriesKey(m) {
  return JSON.stringify(Object.entries(m || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// shortError turns a raw error text into a short, plain reason; the raw
// text goes to a title attribute only.
function shortError(msg) {
  const s = String(msg || "").toLowerCase();
  if (/refused|unreachable|no such host|dial|eof|reset|connect/.test(s)) return "Prometheus unreachable";
  if (/timeout|timed out|deadline/.test(s)) return "query timed out";
  if (/bad_data|parse error|invalid/.test(s)) return "invalid query";
  if (/503|unavailable/.test(s)) return "Prometheus unavailable";
  return "query failed";
}

const PALETTE = ["#58a6ff", "#f0883e", "#3fb950", "#d2a8ff", "#ff7b72", "#e3b341", "#39c5cf", "#f778ba"];
const THRESHOLD_COLOR = "#ff4d4d";

// ---------------------------------------------------------------- charts

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000];

function fmtTime(t, step) {
  const d = new Date(t * 1000);
  if (step >= 86400) return d.toLocaleDateString([], { month: "short", day: "numeric" });
  if (step >= 60) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

// drawChart draws lines on a canvas with a value axis (in unit) and a time
// axis. spec: {series:[{color, points:[[t,v]...]}], unit, thresholds:
// [{value, label}], duration: true for a duration axis}. It returns how
// many series it drew and the thresholds' rows (CSS pixels).
function drawChart(canvas, spec) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 140;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const series = spec.series.filter((s) => s.points.some(([, v]) => isFinite(v)));
  const ts = series.flatMap((s) => s.points.map(([t]) => t));
  const vs = series.flatMap((s) => s.points.map(([, v]) => v)).filter(isFinite);
  const thr = (spec.thresholds || []).filter((x) => isFinite(x.value));
  ctx.font = "11px system-ui, sans-serif";
  if (vs.length === 0) {
    ctx.fillStyle = "#93a3b1"; ctx.fillText("no data", 8, h / 2);
    return { drawn: 0, thresholdRows: [] };
  }
  let lo = Math.min(...vs, ...thr.map((x) => x.value)), hi = Math.max(...vs, ...thr.map((x) => x.value));
  if (lo >= 0 && lo < hi * 0.3) lo = 0;
  if (hi === lo) { const d = Math.abs(hi) * 0.1 || 1; lo -= d; hi += d; }
  const pad = (hi - lo) * 0.08; hi += pad; if (lo !== 0) lo -= pad;
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (spec.t0 != null) t0 = Math.min(t0, spec.t0);
  if (t1 === t0) { t0 -= 30; t1 += 30; }

  const yCount = Math.max(2, Math.floor(h / 40));
  // A duration axis steps by round durations (1 min, 15 min, 1 h...).
  const yStep = spec.duration && hi - lo >= 60
    ? TIME_STEPS.find((st) => (hi - lo) / st <= yCount) || niceStep(hi - lo, yCount)
    : niceStep(hi - lo, yCount);
  const yTicks = [];
  for (let v = Math.ceil(lo / yStep) * yStep; v <= hi + yStep * 1e-9; v += yStep) yTicks.push(+v.toPrecision(12));
  const fmtY = spec.duration ? (v) => fmtDurTick(v, yStep) : (v) => valueText(v, spec.unit);
  canvas.dataset.yLabels = yTicks.map(fmtY).join("|"); // read by the browser tests
  const left = Math.min(70, Math.max(...yTicks.map((v) => ctx.measureText(fmtY(v)).width)) + 10);
  const right = 8, top = 6, bottom = 18;
  const pw = Math.max(10, w - left - right), ph = Math.max(10, h - top - bottom);
  const X = (t) => left + ((t - t0) / (t1 - t0)) * pw;
  const Y = (v) => top + ph - ((v - lo) / (hi - lo)) * ph;

  // Axes and grid.
  ctx.strokeStyle = "#2a3642"; ctx.fillStyle = "#93a3b1"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of yTicks) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    ctx.fillText(fmtY(v), left - 4, y);
  }
  const maxLabels = Math.max(2, Math.floor(pw / 70));
  const tStep = TIME_STEPS.find((s) => (t1 - t0) / s <= maxLabels) || TIME_STEPS[TIME_STEPS.length - 1];
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) {
    const x = Math.round(X(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, top + ph); ctx.lineTo(x, top + ph + 4); ctx.stroke();
    const label = fmtTime(t, tStep), half = ctx.measureText(label).width / 2;
    ctx.fillText(label, Math.min(Math.max(x, half + 1), w - half - 1), top + ph + 5); // kept inside the canvas
  }
  ctx.beginPath(); ctx.moveTo(left + 0.5, top); ctx.lineTo(left + 0.5, top + ph); ctx.lineTo(left + pw, top + ph + 0.5); ctx.stroke();

  // One line per series; a gap where a point is missing.
  let drawn = 0;
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = 1.8;
    ctx.beginPath();
    let pen = false, n = 0;
    for (const [t, v] of s.points) {
      if (!isFinite(v)) { pen = false; continue; }
      const x = X(t), y = Y(v);
      pen ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      pen = true; n++;
    }
    ctx.stroke();
    if (n === 1) { const [t, v] = s.points.find(([, v]) => isFinite(v)); ctx.beginPath(); ctx.arc(X(t), Y(v), 2.5, 0, 7); ctx.fill(); }
    drawn++;
  }

  // Thresholds: dashed lines with their rule.
  const rows = [];
  ctx.setLineDash([6, 4]); ctx.strokeStyle = THRESHOLD_COLOR; ctx.lineWidth = 2;
  // Labels on the left: the newest points, on the right, stay visible.
  ctx.textAlign = "left"; ctx.fillStyle = THRESHOLD_COLOR;
  for (const x of thr) {
    const y = Math.round(Y(x.value));
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    // Above the line, or below it when the line is at the top.
    ctx.textBaseline = y - top > 14 ? "bottom" : "top";
    ctx.fillText(x.label, left + 4, y - top > 14 ? y - 2 : y + 3);
    rows.push(y);
  }
  ctx.setLineDash([]);
  return { drawn, thresholdRows: rows };
}

// ---------------------------------------------------------------- state

const state = {
  ws: "connecting", // connecting | open | reconnecting
  everOpen: false,
  ready: null,      // the last /ready answer, or {unreachable:true}
  queryErrors: 0, queryCount: 0,
  alertsError: "",
};
const instant = new Map();  // query name -> Prometheus data or {error}
const history = new Map();  // query name -> Map(key -> {metric, values}) built from instant results
const windows = new Map();  // query name -> {seconds, series: Map(id -> {metric, values:[[t,v]]})}
const tiles = new Map();    // query name -> tile elements
let alertsData = { alerts: [], thresholds: [], pending: 0 };
let lastInstant = null;

// ---------------------------------------------------------------- badge

function updateBadge() {
  const reasons = [];
  const r = state.ready;
  if (r) {
    if (r.unreachable) reasons.push("service-metrics unreachable");
    else {
      const down = (c) => c && c.status !== "up";
      if (down(r.prometheus)) reasons.push("Prometheus down");
      if (down(r.postgres)) reasons.push(r.postgres.error === "connecting" ? "PostgreSQL connecting" : "PostgreSQL down");
      else if (r.postgres && r.postgres.mode === "read-only") reasons.push("PostgreSQL read-only");
      if (down(r.alertmanager)) reasons.push("Alertmanager down");
    }
  }
  if (state.queryErrors > 0 && !reasons.includes("Prometheus down")) {
    const all = state.queryErrors === state.queryCount;
    reasons.push(all && state.queryError === "Prometheus unreachable" ? "Prometheus unreachable"
      : all ? "Prometheus queries failing" : state.queryErrors + " of " + state.queryCount + " queries failing");
  }
  if (state.ws === "reconnecting") reasons.unshift("live updates reconnecting");
  const conn = $("#conn"), why = $("#conn-reason");
  if (state.ws === "connecting" && !state.everOpen) {
    conn.textContent = "connecting…"; conn.className = "badge down";
  } else if (reasons.length === 0) {
    conn.textContent = "live"; conn.className = "badge up";
  } else {
    conn.textContent = "degraded"; conn.className = "badge degraded";
  }
  why.textContent = reasons.join(" · ");
  conn.title = reasons.join("; ");
  conn.dataset.reason = reasons.join("; ");
}

async function pollReady() {
  try {
    const r = await fetch("/ready", { headers: { Accept: "application/json" }, cache: "no-store" });
    state.ready = await r.json();
  } catch (e) {
    state.ready = { unreachable: true };
  }
  updateBadge();
}

// ---------------------------------------------------------------- metrics

function thresholdsFor(name, seriesMetrics) {
  return (alertsData.thresholds || []).filter((th) => {
    const names = seriesMetrics.map((m) => m && m.__name__).filter(Boolean);
    if (th.metric !== name && !names.includes(th.metric)) return false;
    const eq = Object.entries(th.matchers || {});
    if (eq.length === 0) return true;
    return seriesMetrics.some((m) => eq.every(([k, v]) => m && m[k] === v));
  });
}

// seriesOf returns a query's series for its chart: the range window kept
// from range_metrics and range_update, else what instant results brought.
function seriesOf(name) {
  const w = windows.get(name);
  const out = [];
  if (w) {
    for (const [id, s] of w.series) out.push({ id, metric: s.metric, key: seriesKey(s.metric), points: s.values.map(([t, v]) => [Number(t), parseFloat(v)]) });
  } else {
    let i = 0;
    for (const [key, s] of history.get(name) || []) out.push({ id: i++, metric: s.metric, key, points: s.values });
  }
  out.sort((a, b) => a.id - b.id);
  return out;
}

function ensureTile(name) {
  let t = tiles.get(name);
  if (t) return t;
  const root = el("article", { class: "tile", "data-query": name, "aria-label": "metric " + name });
  const value = el("span", { class: "value" }), unit = el("span", { class: "unit" });
  const sub = el("p", { class: "sub" });
  const common = el("p", { class: "common" });
  const canvas = el("canvas", { role: "img", "aria-label": "chart of " + name + " over time" });
  const legend = el("ul", { class: "legend", "aria-label": "series of " + name });
  root.append(el("h3", {}, name), el("div", { class: "current" }, value, unit), sub, common, canvas, legend);
  t = { root, value, unit, sub, common, canvas, legend };
  tiles.set(name, t);
  return t;
}

function renderTile(name) {
  const t = ensureTile(name);
  const res = instant.get(name);
  const series = seriesOf(name);
  const current = new Map(); // key -> value now
  if (res && res.resultType === "vector") for (const s of res.result || []) current.set(seriesKey(s.metric), parseFloat(s.value && s.value[1]));
  if (res && res.resultType === "scalar") current.set(seriesKey({}), parseFloat(res.result[1]));
  const metricName = (series[0] && series[0].metric && series[0].metric.__name__) || name;
  const unit = unitOf(name) || unitOf(metricName);
  t.root.dataset.unit = unit;

  if (res && res.error) {
    t.root.classList.add("error");
    t.value.textContent = shortError(res.error);
    t.value.title = String(res.error).slice(0, 500);
    t.unit.textContent = "";
    t.sub.textContent = series.some((x) => x.points.length) ? "showing the last values received" : "no earlier values";
  } else {
    t.root.classList.remove("error");
    t.value.removeAttribute("title");
  }
  // Legend: every series with its current value (the instant result's,
  // else the last point of its window).
  const rows = series.map((s, i) => {
    let v = current.get(s.key);
    if (v == null || Number.isNaN(v)) { const last = s.points[s.points.length - 1]; v = last ? last[1] : NaN; }
    return { ...s, color: PALETTE[s.id % PALETTE.length], now: v };
  });
  if (rows.length === 0 && current.size > 0) {
    for (const [key, v] of current) rows.push({ id: rows.length, key, metric: JSON.parse(key).reduce((m, [k, x]) => ((m[k] = x), m), {}), points: [], color: PALETTE[rows.length % PALETTE.length], now: v });
  }
  const split = splitLabels(rows.map((r) => r.metric));
  rows.forEach((r, i) => { r.name = labelText(split.own[i]); });
  const commonText = Object.keys(split.common).length ? "all series: " + labelText(split.common) : "";
  t.common.textContent = commonText; t.common.title = commonText;
  if (!(res && res.error)) {
    if (rows.length === 0) { t.value.textContent = "–"; t.unit.textContent = ""; t.sub.textContent = res ? "no series" : "waiting for data"; }
    else if (rows.length === 1) {
      const [num, u] = fmtValue(rows[0].now, unit);
      t.value.textContent = num; t.unit.textContent = u; t.sub.textContent = labelText(rows[0].metric);
    } else {
      const top = rows.reduce((a, b) => (b.now > a.now ? b : a));
      const [num, u] = fmtValue(top.now, unit);
      t.value.textContent = num; t.unit.textContent = u;
      t.sub.textContent = "highest of " + rows.length + " series: " + top.name;
    }
  }
  const ths = thresholdsFor(name, rows.map((r) => r.metric));
  t.legend.replaceChildren(
    ...rows.map((r) => el("li", { "data-series-id": r.id }, el("span", { class: "swatch", style: "background:" + r.color }), el("span", { class: "lbl", title: labelText(r.metric) }, r.name), el("span", { class: "v" }, valueText(r.now, unit)))),
    ...ths.map((th) => el("li", { class: "threshold" }, el("span", { class: "swatch dashed" }), el("span", { class: "lbl", title: th.expr }, "alert " + th.alert + " when " + th.op + " " + valueText(th.value, unit)), el("span", { class: "v" }, ""))));
  const w = windows.get(name);
  const now = Date.now() / 1000;
  const out = drawChart(t.canvas, {
    series: rows, unit,
    thresholds: ths.map((th) => ({ value: th.value, label: th.alert + " " + th.op + " " + valueText(th.value, unit) })),
    t0: w && w.seconds ? now - w.seconds : null,
  });
  t.root.dataset.series = String(out.drawn);
  t.root.dataset.points = String(Math.max(0, ...rows.map((r) => r.points.length)));
  if (ths.length) {
    t.root.dataset.threshold = ths.map((th) => th.value).join(",");
    t.root.dataset.thresholdRows = out.thresholdRows.join(",");
    t.root.dataset.thresholdDrawn = out.thresholdRows.length > 0 ? "true" : "false";
  } else {
    delete t.root.dataset.threshold; delete t.root.dataset.thresholdRows; delete t.root.dataset.thresholdDrawn;
  }
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderTiles(); });
}
function renderTiles() {
  const names = new Set([...instant.keys(), ...windows.keys()]);
  const box = $("#tiles");
  const empty = box.querySelector(".empty"); if (empty && names.size) empty.remove();
  for (const name of [...names].sort()) {
    renderTile(name);
  }
  // Keep tiles in name order.
  const order = [...names].sort().map((n) => tiles.get(n).root);
  order.forEach((node, i) => { if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null); });
}

function onInstant(msg) {
  lastInstant = msg;
  let errs = 0, n = 0, first = "";
  const ts = Date.parse(msg.timestamp) / 1000;
  for (const [name, res] of Object.entries(msg.data || {})) {
    n++;
    if (res && res.error) { errs++; first = first || shortError(res.error); }
    instant.set(name, res);
    if (res && res.resultType === "vector") {
      const h = history.get(name) || new Map();
      for (const s of res.result || []) {
        const key = seriesKey(s.metric);
        const e = h.get(key) || { metric: s.metric, values: [] };
        e.values.push([ts, parseFloat(s.value[1])]);
        while (e.values.length > 60) e.values.shift();
        h.set(key, e);
      }
      history.set(name, h);
    }
  }
  // A change of health is checked against /ready at once, not at its
  // next poll.
  if ((errs > 0) !== (state.queryErrors > 0)) pollReady();
  state.queryErrors = errs; state.queryCount = n; state.queryError = first;
  updateBadge();
  $("#updated").textContent = "updated " + new Date(msg.timestamp).toLocaleTimeString();
  scheduleRender();
}

// Range windows as the server keeps them: range_metrics brings them whole
// (with "seq"), each range_update the next change, applied by series id. A
// gap in the sequence (a missed update) asks for a resync.
let rangeSeq = -1;
function onRange(msg) {
  rangeSeq = msg.seq ?? -1;
  for (const [name, res] of Object.entries(msg.data || {})) {
    if (!res || res.error || res.resultType !== "matrix") continue;
    const series = new Map();
    for (const s of res.result || []) series.set(s.id, { metric: s.metric, values: s.values || [] });
    windows.set(name, { seconds: res.window_seconds, series });
  }
  scheduleRender();
}
function onRangeUpdate(ws, msg) {
  if (msg.seq <= rangeSeq) return; // already in the last full window
  if (rangeSeq < 0 || msg.seq !== rangeSeq + 1) { ws.send(JSON.stringify({ type: "resync" })); rangeSeq = msg.seq; return; }
  rangeSeq = msg.seq;
  for (const [name, ch] of Object.entries(msg.data || {})) {
    const w = windows.get(name); if (!w || !ch || ch.error) continue;
    for (const a of ch.added || []) w.series.set(a.id, { metric: a.metric, values: [] });
    for (const [id, v] of ch.points || []) { const s = w.series.get(id); if (s) s.values.push([ch.t, v]); }
    for (const id of ch.removed || []) w.series.delete(id);
    if (w.seconds) {
      const oldest = ch.t - w.seconds;
      for (const s of w.series.values()) while (s.values.length && Number(s.values[0][0]) < oldest) s.values.shift();
    }
  }
  scheduleRender();
}

// ---------------------------------------------------------------- alerts

function shortID(id) { return String(id).slice(0, 8); }

function onAlerts(msg) {
  alertsData = msg.data || { alerts: [], thresholds: [] };
  state.alertsError = alertsData.error || "";
  renderAlerts();
  scheduleRender(); // thresholds may have changed
}

function renderAlerts() {
  const ul = $("#alerts");
  const d = alertsData;
  const alerts = d.alerts || [];
  $("#alerts-count").textContent = "(" + alerts.length + (d.pending ? ", " + d.pending + " pending" : "") + ")";
  $("#alerts-section").dataset.count = String(alerts.length);
  const items = [];
  if (d.error) items.push(el("li", { class: "alerts-error", role: "alert" }, "Alerts unavailable: " + d.error));
  if (d.link_error) items.push(el("li", { class: "alerts-error" }, "Incident links unavailable: " + d.link_error));
  const old = new Map([...ul.querySelectorAll("li.alert")].map((li) => [li.dataset.sig, li]));
  for (const a of alerts) {
    // An unchanged alert keeps its node (and a click on its buttons).
    const sig = JSON.stringify(a);
    if (old.has(sig)) { items.push(old.get(sig)); continue; }
    const sev = (a.labels && a.labels.severity) || "";
    const inc = a.incident;
    const labels = Object.entries(a.labels || {}).filter(([k]) => k !== "alertname" && k !== "severity").map(([k, v]) => k + "=" + v).join(" · ");
    const summary = (a.annotations && (a.annotations.summary || a.annotations.description)) || "";
    const foot = [el("span", {}, "value " + a.value)];
    if (inc) {
      foot.push(el("a", { href: "#incident-" + inc.id, class: "inc-link", "data-incident-id": inc.id }, "incident " + shortID(inc.id) + " · ", el("span", { class: "st-" + inc.status }, inc.status)));
      foot.push(...actionButtons(inc.id, inc.status, a.name));
    } else {
      foot.push(el("span", { class: "empty" }, "no incident yet"));
    }
    items.push(el("li", { class: "alert sev-" + sev, "data-sig": sig, "data-alertname": a.name, "data-fingerprint": a.fingerprint, "data-incident-id": inc ? inc.id : null },
      el("div", { class: "a-head" }, el("b", {}, a.name), sev ? el("span", { class: "a-sev" }, sev) : null,
        el("span", { class: "a-since" }, "since " + new Date(a.active_at).toLocaleString())),
      summary ? el("div", { class: "a-summary" }, summary) : null,
      labels ? el("div", { class: "a-labels" }, labels) : null,
      el("div", { class: "a-foot" }, foot)));
  }
  if (!d.error && alerts.length === 0) items.push(el("li", { class: "empty" }, "No alerts firing."));
  const keep = new Set(items);
  for (const li of [...ul.children]) if (!keep.has(li)) li.remove();
  items.forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
}

// ---------------------------------------------------------------- actions

const TOKEN_KEY = "promflow.writeToken";
const ACTIONS = { acknowledge: "Acknowledge", resolve: "Resolve", reopen: "Reopen", close: "Close" };
const PAST = { acknowledge: "acknowledged", resolve: "resolved", reopen: "reopened", close: "closed" };

function actionsFor(status) {
  switch (status) {
    case "open": return ["acknowledge", "resolve"];
    case "acknowledged": return ["resolve"];
    case "resolved": return ["reopen", "close"];
    case "closed": return ["reopen"];
  }
  return [];
}

function actionButtons(id, status, title) {
  return actionsFor(status).map((action) => el("button", {
    type: "button", class: "act", "data-action": action, "data-incident-id": id,
    "aria-label": ACTIONS[action] + " incident " + (title ? "“" + title + "”" : shortID(id)),
  }, ACTIONS[action]));
}

let toastTimer = null;
function toast(text, isError) {
  const t = $("#toast");
  t.textContent = text; t.className = "toast" + (isError ? " error" : ""); t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 10000 : 4000);
}

// act posts a lifecycle action; on 401 it asks for the write token once
// and retries.
async function act(id, action, btn) {
  const buttons = document.querySelectorAll('button.act[data-incident-id="' + CSS.escape(id) + '"]');
  buttons.forEach((b) => (b.disabled = true));
  try {
    let r = await postAction(id, action);
    if (r.status === 401) {
      const token = await askToken(r.body.error);
      if (token == null) { toast("Not " + PAST[action] + ": a write token is needed (" + (r.body.error || "401 Unauthorized") + ")", true); return; }
      r = await postAction(id, action);
    }
    if (!r.ok) {
      const msg = "Could not " + action + " incident " + shortID(id) + ": " + (r.body.error || r.statusText) + " (HTTP " + r.status + ")";
      if (r.status === 401) sessionStorage.removeItem(TOKEN_KEY);
      toast(msg, true); rowMessage(id, msg);
      return;
    }
    const inc = r.body.data || {};
    applyIncident(inc);
    toast("Incident " + shortID(id) + (inc.title ? " “" + inc.title + "”" : "") + " " + PAST[action]);
    scheduleRefresh();
  } catch (e) {
    const msg = "Could not " + action + " incident " + shortID(id) + ": " + (e && e.message ? e.message : "network error");
    toast(msg, true); rowMessage(id, msg);
  } finally {
    document.querySelectorAll('button.act[data-incident-id="' + CSS.escape(id) + '"]').forEach((b) => (b.disabled = false));
  }
}

async function postAction(id, action) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch("/api/incidents/" + encodeURIComponent(id) + "/" + action, { method: "POST", headers, body: "{}" });
  let body = {};
  try { body = await r.json(); } catch { body = { error: r.statusText }; }
  return { ok: r.ok && body.status !== "error", status: r.status, statusText: r.statusText, body };
}

function askToken(why) {
  const dlg = $("#token-dialog"), input = $("#token-input");
  $("#token-why").textContent = "This service needs a write token to change incidents" + (why ? " (it answered: " + why + ")" : "") + ".";
  input.value = "";
  return new Promise((done) => {
    const finish = (v) => { dlg.removeEventListener("close", onClose); $("#token-cancel").onclick = null; done(v); };
    const onClose = () => {
      if (dlg.returnValue === "save" && input.value.trim()) { sessionStorage.setItem(TOKEN_KEY, input.value.trim()); finish(input.value.trim()); }
      else finish(null);
    };
    dlg.addEventListener("close", onClose);
    $("#token-cancel").onclick = () => { dlg.returnValue = "cancel"; dlg.close(); };
    dlg.returnValue = "";
    dlg.showModal();
    input.focus();
  });
}

function rowMessage(id, msg) {
  const row = document.getElementById("incident-" + id);
  if (!row) return;
  const cell = row.querySelector("td.actions");
  let m = cell.querySelector(".row-msg");
  if (!m) { m = el("span", { class: "row-msg", role: "alert" }); cell.append(m); }
  m.textContent = msg;
}

// applyIncident shows an incident's new state at once: in the details
// table and in the alerts linked to it.
function applyIncident(inc) {
  if (!inc || inc.id == null) return;
  const row = document.getElementById("incident-" + inc.id);
  if (row && inc.status && row.dataset.status !== inc.status) {
    const cell = row.querySelector("td.status");
    cell.textContent = inc.status; cell.className = "status st-" + inc.status;
    row.dataset.status = inc.status;
    if (inc.acknowledged_at) row.querySelector("td.mtta").textContent = fmtDur((Date.parse(inc.acknowledged_at) - Date.parse(inc.created_at)) / 1000);
    row.querySelector("td.mttr").textContent = inc.resolved_at ? fmtDur((Date.parse(inc.resolved_at) - Date.parse(inc.created_at)) / 1000) : "–";
    const actions = row.querySelector("td.actions");
    actions.replaceChildren(...actionButtons(inc.id, inc.status, inc.title));
    row.classList.add("flash"); setTimeout(() => row.classList.remove("flash"), 800);
  }
  let changed = false;
  for (const a of alertsData.alerts || []) {
    if ((a.incident && a.incident.id === inc.id) || (!a.incident && inc.fingerprint && a.fingerprint === inc.fingerprint)) {
      a.incident = { id: inc.id, status: inc.status }; changed = true;
    }
  }
  if (changed) renderAlerts();
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button.act");
  if (b) act(b.dataset.incidentId, b.dataset.action, b);
});

// ---------------------------------------------------------------- incidents

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (!r.ok || !body || body.status === "error") {
    const e = new Error((body && body.error) || r.statusText || "HTTP " + r.status);
    e.status = r.status;
    throw e;
  }
  return body.data;
}

function cell(label, content, cls) { return el("td", { "data-label": label, class: cls }, content); }

async function refreshIncidents() {
  try {
    const rows = await getJSON("/api/metrics/incidents/by-service");
    $("#byservice tbody").replaceChildren(...(rows.length ? rows.map((r) => el("tr", {},
      el("th", { scope: "row" }, r.service), el("td", { class: "num" }, r.total_incidents), el("td", { class: "num" }, r.open_count),
      el("td", { class: "num" }, r.ack_count), el("td", { class: "num" }, r.resolved_count))) : [el("tr", {}, el("td", { class: "empty", colspan: "5" }, "No incidents."))]));
  } catch (e) { tableError("#byservice", 5, e); }
  try {
    renderDetails(await getJSON("/api/metrics/incidents/details?limit=20"));
  } catch (e) { tableError("#details", 8, e); }
  try {
    const st = await getJSON("/api/metrics/incidents/stats");
    const o = st.overall || st;
    const item = (label, v) => el("div", {}, el("b", {}, v), el("span", {}, label));
    $("#stats").replaceChildren(
      item("MTTA (mean)", fmtDur(o.mtta && o.mtta.mean_seconds)), item("MTTA p90", fmtDur(o.mtta && o.mtta.p90_seconds)),
      item("MTTR (mean)", fmtDur(o.mttr && o.mttr.mean_seconds)), item("MTTR p90", fmtDur(o.mttr && o.mttr.p90_seconds)));
  } catch (e) { $("#stats").replaceChildren(); }
}

// renderDetails updates the details table in place, row by row: a row
// that did not change keeps its nodes, so that a click on one of its
// buttons is never lost to a refresh that replaced it mid-click.
function renderDetails(rows) {
  const tb = $("#details tbody");
  if (rows.length === 0) {
    tb.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "8" }, "No incidents.")));
    return;
  }
  const want = rows.map((r) => {
    let tr = document.getElementById("incident-" + r.id);
    if (!tr || tr.parentElement !== tb) {
      tr = el("tr", { id: "incident-" + r.id, "data-id": r.id },
        cell("Created", new Date(r.created_at).toLocaleString()), cell("Title", r.title, "title"), cell("Service", r.source),
        cell("Severity", r.severity), cell("Status", "", "status"), cell("MTTA", "", "num mtta"), cell("MTTR", "", "num mttr"),
        cell("Actions", null, "actions"));
    }
    setText(tr.querySelector("td.title"), r.title);
    setText(tr.querySelector("td.mtta"), fmtDur(r.mtta_seconds));
    setText(tr.querySelector("td.mttr"), fmtDur(r.mttr_seconds));
    if (tr.dataset.status !== r.status) {
      tr.dataset.status = r.status;
      const st = tr.querySelector("td.status");
      st.textContent = r.status; st.className = "status st-" + r.status;
      tr.querySelector("td.actions").replaceChildren(...actionButtons(r.id, r.status, r.title));
    }
    return tr;
  });
  const keep = new Set(want);
  for (const tr of [...tb.children]) if (!keep.has(tr)) tr.remove();
  want.forEach((tr, i) => { if (tb.children[i] !== tr) tb.insertBefore(tr, tb.children[i] || null); });
}
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

function tableError(sel, cols, e) {
  const msg = e.status === 503 ? "Incidents unavailable: the database is unreachable." : "Incidents unavailable: " + e.message;
  $(sel + " tbody").replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: String(cols) }, msg)));
}

// At most one refetch of the incident tables per second, whatever the
// event rate: events patch the details table themselves.
let refetchTimer = null, lastRefetch = 0;
function scheduleRefresh() {
  if (refetchTimer) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefetch));
  refetchTimer = setTimeout(() => { refetchTimer = null; lastRefetch = Date.now(); refreshIncidents(); }, wait);
}

function onIncident(msg) {
  const ul = $("#events");
  const first = ul.querySelector(".empty"); if (first) first.remove();
  const ev = msg.data || msg;
  const inc = ev.incident || {};
  ul.prepend(el("li", {}, el("time", {}, new Date(msg.timestamp || Date.now()).toLocaleTimeString()),
    (ev.kind || ev.type || "change") + ": " + (inc.title || inc.id || "") + (inc.source ? " [" + inc.source + "]" : "") + (inc.status ? " → " + inc.status : "")));
  while (ul.children.length > 50) ul.lastChild.remove();
  applyIncident(inc);
  scheduleRefresh();
}

// ---------------------------------------------------------------- analytics

const WINDOWS = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400 };
let analyticsWindow = "7d";
let analyticsSeq = 0;

function analyticsState(kind, text) {
  $("#analytics").dataset.state = kind;
  const p = $("#analytics-state");
  p.textContent = text; p.className = kind === "ok" ? "sr-only" : "empty " + kind;
}

async function refreshAnalytics() {
  const seq = ++analyticsSeq;
  const secs = WINDOWS[analyticsWindow];
  const to = new Date(), from = new Date(to.getTime() - secs * 1000);
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  // Week buckets, as teams report; day buckets for the windows shorter
  // than a month, which would otherwise hold one or two points.
  const bucket = secs < 30 * 86400 ? "day" : "week";
  const range = "from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
  let breakdown, trends;
  try {
    [breakdown, trends] = await Promise.all([
      getJSON("/api/metrics/incidents/breakdown?group_by=service&ack_within=5m&" + range),
      getJSON("/api/metrics/incidents/trends?bucket=" + bucket + "&tz=" + encodeURIComponent(tz) + "&ack_within=5m&" + range),
    ]);
  } catch (e) {
    if (seq !== analyticsSeq) return;
    if (e.status === 404) analyticsState("unavailable", "Analytics unavailable: this service-metrics has no analytics routes (/api/metrics/incidents/breakdown and /trends answered 404). Counts and MTTA/MTTR above still work.");
    else if (e.status === 503) analyticsState("error", "Analytics unavailable: the database is unreachable.");
    else analyticsState("error", "Analytics unavailable: " + e.message);
    return;
  }
  if (seq !== analyticsSeq) return;
  analyticsState("ok", "Analytics for the last " + analyticsWindow);
  renderBreakdown(breakdown || []);
  renderTrend(trends || [], bucket);
}

function pair(p50, p90) { return [fmtDur(p50), fmtDur(p90)]; }

function renderBreakdown(rows) {
  $("#analytics-table tbody").replaceChildren(...(rows.length ? rows.map((r) => {
    const mttd = r.mttd_p50_seconds !== undefined || r.mttd_p90_seconds !== undefined
      ? pair(r.mttd_p50_seconds, r.mttd_p90_seconds)
      : [r.mttd_seconds == null ? "–" : "mean " + fmtDur(r.mttd_seconds), "–"];
    return el("tr", { "data-key": r.key },
      el("th", { scope: "row" }, r.key), el("td", { class: "num" }, r.total),
      el("td", { class: "num" }, fmtDur(r.mtta_p50_seconds)), el("td", { class: "num" }, fmtDur(r.mtta_p90_seconds)),
      el("td", { class: "num" }, fmtDur(r.mttr_p50_seconds)), el("td", { class: "num" }, fmtDur(r.mttr_p90_seconds)),
      el("td", { class: "num" }, mttd[0]), el("td", { class: "num" }, mttd[1]),
      el("td", { class: "num" }, fmtPct(r.ack_within_ratio)));
  }) : [el("tr", {}, el("td", { class: "empty", colspan: "9" }, "No incidents in this window."))]));
}

let lastTrend = null;
function renderTrend(rows, bucket) {
  lastTrend = { rows, bucket };
  const overall = rows.filter((r) => r.service == null || r.service === "");
  const use = overall.length ? overall : rows;
  const pts = (f) => use.map((r) => [Date.parse(r.bucket_start) / 1000, r[f] == null ? NaN : Number(r[f])]);
  const series = [
    { label: "MTTA", color: PALETTE[0], points: pts("mtta_seconds") },
    { label: "MTTR", color: PALETTE[1], points: pts("mttr_seconds") },
    { label: "MTTD", color: PALETTE[2], points: pts("mttd_seconds") },
  ];
  const opened = use.reduce((n, r) => n + (r.opened || 0), 0);
  $("#trend-caption").textContent = "Mean times per " + bucket + " (" + use.length + " buckets, " + opened + (opened === 1 ? " incident" : " incidents") + " opened)";
  const out = drawChart($("#trend"), { series, duration: true });
  $("#trend").dataset.series = String(out.drawn);
  $("#trend").dataset.buckets = String(use.length);
  const last = (s) => { const p = s.points.filter(([, v]) => isFinite(v)); return p.length ? p[p.length - 1][1] : null; };
  $("#trend-legend").replaceChildren(...series.map((s) => el("li", {}, el("span", { class: "swatch", style: "background:" + s.color }), el("span", { class: "lbl" }, s.label + " (mean)"), el("span", { class: "v" }, "latest " + fmtDur(last(s))))));
}

document.querySelectorAll("#analytics .window button").forEach((b) => b.addEventListener("click", () => {
  analyticsWindow = b.dataset.window;
  document.querySelectorAll("#analytics .window button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
  refreshAnalytics();
}));

// ---------------------------------------------------------------- socket

let backoff = 500;
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws");
  ws.onopen = () => {
    state.ws = "open"; state.everOpen = true; backoff = 500; updateBadge();
    // Speaking first brings the latest snapshots at once (the server holds
    // them back a moment for clients that only read the welcome).
    ws.send(JSON.stringify({ type: "hello" }));
  };
  ws.onmessage = (e) => {
    let msg; try { msg = JSON.parse(e.data); } catch { return; }
    switch (msg.type) {
      case "instant_metrics": onInstant(msg); break;
      case "range_metrics": onRange(msg); break;
      case "range_update": onRangeUpdate(ws, msg); break;
      case "alerts": onAlerts(msg); break;
      case "incident": onIncident(msg); break;
    }
  };
  ws.onclose = () => {
    state.ws = state.everOpen ? "reconnecting" : "connecting"; updateBadge();
    rangeSeq = -1;
    setTimeout(connect, backoff); backoff = Math.min(backoff * 2, 10000);
  };
}

// Charts are drawn for their box's size: redraw when a box changes width
// (window resized, phone rotated, layout reflowed).
let resizeTimer = null;
const widths = new WeakMap();
const resized = new ResizeObserver((entries) => {
  if (!entries.some((e) => widths.get(e.target) !== e.contentRect.width && (widths.set(e.target, e.contentRect.width), true))) return;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { scheduleRender(); if (lastTrend) renderTrend(lastTrend.rows, lastTrend.bucket); }, 100);
});
resized.observe($("#tiles"));
resized.observe($("#trend"));

connect();
refreshIncidents();
refreshAnalytics();
pollReady();
setInterval(refreshIncidents, 10000);
setInterval(pollReady, 5000);
setInterval(refreshAnalytics, 60000);
