// The live monitor: polls /api/status, refreshes each source's JPEG, draws a small chart.
"use strict";
const POLL_MS = 1000; // figures once a second (each poll costs the browser ~0.4% of a core)
// the chart (5 minutes of history: the bulk of a status) every 5 s; the polls between ask for
// the figures only
const CHART_MS = 5000;
let chartAsked = 0;
const cards = new Map();
let pictureMs = 1000; // from the server's picture rate (status.picture_fps)

function fmt(v, digits = 1) {
  return (v === undefined || v === null) ? "–" : Number(v).toFixed(digits);
}

function makeCard(src) {
  const node = document.getElementById("card").content.firstElementChild.cloneNode(true);
  node.dataset.source = src.id;
  node.id = "source-" + src.id;
  node.querySelector(".name").textContent = src.name;
  node.querySelector(".name").title = src.name;
  document.getElementById("sources").appendChild(node);
  const img = node.querySelector("img.frame");
  const card = { node, img, loading: false, asked: 0 };
  // the next picture one picture period after the last was asked for (never sooner than
  // it loaded): no request fetches a picture the server has not yet made
  const next = () => setTimeout(() => refreshImage(src.id, card),
    Math.max(0, card.asked + pictureMs - Date.now()));
  img.addEventListener("load", next);
  img.addEventListener("error", () => setTimeout(() => refreshImage(src.id, card), 1000));
  refreshImage(src.id, card);
  cards.set(src.id, card);
  return card;
}

function refreshImage(id, card) {
  // one request at a time per source: a slow browser never queues pictures
  card.asked = Date.now();
  card.img.src = "/api/frame/" + encodeURIComponent(id) + "?t=" + Date.now();
}

function drawChart(canvas, history) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!history || history.length < 2) return;
  // the last 5 minutes, or all there is when the stream is younger
  const t1 = history[history.length - 1][0];
  const span = Math.max(10, Math.min(300, t1 - history[0][0]));
  const t0 = t1 - span;
  let hi = 1;
  for (const p of history) hi = Math.max(hi, p[1], p[2]);
  const x = (t) => (t - t0) / span * (w - 4) + 2;
  const y = (v) => h - 4 - v / hi * (h - 14);
  ctx.fillStyle = "#9aa4ae";
  ctx.font = "11px sans-serif";
  ctx.fillText(hi.toFixed(1), 4, 11);
  for (const [col, width, k] of [["#4fc3f7", 1, 1], ["#ffb74d", 2.5, 2]]) {
    ctx.strokeStyle = col;
    ctx.lineWidth = width;
    ctx.beginPath();
    history.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[k])) : ctx.moveTo(x(p[0]), y(p[k]))));
    ctx.stroke();
  }
}

function render(status) {
  document.getElementById("engine-fps").textContent = fmt(status.engine_fps);
  document.getElementById("e2e-fps").textContent = fmt(status.e2e_fps);
  document.getElementById("uptime").textContent = "up " + Math.round(status.uptime_s) + " s";
  if (status.picture_fps > 0) pictureMs = Math.max(100, 1000 / status.picture_fps);
  for (const src of status.sources) {
    const card = cards.get(src.id) || makeCard(src);
    const n = card.node;
    const count = n.querySelector(".count");
    count.textContent = fmt(src.count, 2);
    count.dataset.value = src.count === undefined ? "" : String(src.count);
    n.querySelector(".smoothed").textContent = fmt(src.smoothed, 2);
    n.querySelector(".fps").textContent = fmt(src.fps);
    n.dataset.frames = String(src.frames);
    n.querySelector(".state").textContent = (src.state || "") + " · frame " + (src.frame ?? "–")
      + (src.error ? " · " + src.error : "");
    // zones, alerts and the chart are rebuilt only when they changed: a page left open for
    // hours should cost the machine that counts as little as it can
    const zonesKey = JSON.stringify([src.zones, src.zones_smoothed]);
    if (card.zonesKey !== zonesKey) {
      card.zonesKey = zonesKey;
      renderZones(n, src);
    }
    const alertsKey = JSON.stringify(src.alerts || []);
    if (card.alertsKey !== alertsKey) {
      card.alertsKey = alertsKey;
      renderAlerts(n, src);
    }
    if (!src.history) continue; // a poll without the chart's history
    const hist = src.history;
    const chartKey = hist.length + ":" + (hist.length ? hist[hist.length - 1][0] : "");
    if (card.chartKey !== chartKey) {
      card.chartKey = chartKey;
      drawChart(n.querySelector("canvas.chart"), hist);
    }
  }
}

function renderZones(n, src) {
  const body = n.querySelector("table.zones tbody");
  body.replaceChildren();
  for (const [zone, v] of Object.entries(src.zones || {})) {
    const tr = document.createElement("tr");
    tr.dataset.zone = zone;
    const name = document.createElement("td");
    name.textContent = zone;
    const raw = document.createElement("td");
    raw.className = "num zone-count";
    raw.textContent = fmt(v, 2);
    raw.dataset.value = String(v);
    const sm = document.createElement("td");
    sm.className = "num";
    sm.textContent = fmt((src.zones_smoothed || {})[zone], 2);
    tr.append(name, raw, sm);
    body.appendChild(tr);
  }
}

function renderAlerts(n, src) {
  const ul = n.querySelector("ul.alerts");
  ul.replaceChildren();
  for (const a of (src.alerts || []).slice().reverse()) {
    const li = document.createElement("li");
    li.className = a.event;
    li.textContent = new Date(a.time * 1000).toLocaleTimeString() + "  " + a.text;
    ul.appendChild(li);
  }
}

async function poll() {
  try {
    const withChart = Date.now() - chartAsked >= CHART_MS;
    if (withChart) chartAsked = Date.now();
    const r = await fetch(withChart ? "/api/status" : "/api/status?history=0",
                          { cache: "no-store" });
    if (!r.ok) throw new Error((await r.json()).error || r.statusText);
    render(await r.json());
    document.getElementById("conn").textContent = "";
  } catch (e) {
    document.getElementById("conn").textContent = "no connection: " + e.message;
  }
  setTimeout(poll, POLL_MS);
}
poll();
