// The zone editor: polygons and the ROI on a frame of the source; saved through PUT /api/zones.
"use strict";
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const COLOURS = ["#00e5ff", "#ffea00", "#ff40ff", "#76ff03", "#ffffff"];
const state = {
  frame: null, size: null, scale: 1, shapes: [], selected: -1,
  drawing: null, drag: null, extra: {},
};
window.zoneEditor = state; // for the browser tests

function message(text, kind) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = "msg " + (kind || "");
}

function toFrame(ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) / state.scale, (ev.clientY - r.top) / state.scale];
}

function uniqueName() {
  const names = new Set(state.shapes.map((s) => s.name));
  for (let i = 1; ; i++) if (!names.has("zone" + i)) return "zone" + i;
}

async function loadFrame(id) {
  const img = new Image();
  const url = "/api/frame/" + encodeURIComponent(id);
  await new Promise((ok) => {
    img.onload = ok;
    img.onerror = () => { img.onerror = () => ok(); img.src = url + "?t=" + Date.now(); };
    img.src = url + "?raw=1&t=" + Date.now();
  });
  if (!img.naturalWidth) {
    message("no frame from this source yet; retrying", "error");
    setTimeout(() => loadFrame(id), 1000);
    return;
  }
  state.frame = img;
  state.size = [img.naturalWidth, img.naturalHeight];
  const room = Math.max(320, window.innerWidth - 420);
  state.scale = Math.min(1.5, room / img.naturalWidth);
  canvas.width = Math.round(img.naturalWidth * state.scale);
  canvas.height = Math.round(img.naturalHeight * state.scale);
  draw();
}

async function loadZones() {
  const r = await fetch("/api/zones", { cache: "no-store" });
  const data = await r.json();
  const z = data.zones || {};
  document.getElementById("file").textContent = data.zone_file ? "saves to " + data.zone_file : "";
  const fs = z.frame_size;
  const sx = fs && state.size ? state.size[0] / fs[0] : 1;
  const sy = fs && state.size ? state.size[1] / fs[1] : 1;
  const scaled = (poly) => poly.map(([x, y]) => [x * sx, y * sy]);
  state.shapes = [];
  if (z.roi) state.shapes.push({ kind: "roi", name: "roi", polygon: scaled(z.roi), alerts: [] });
  for (const zone of z.zones || []) {
    state.shapes.push({ kind: "zone", name: zone.name, polygon: scaled(zone.polygon),
                        alerts: zone.alerts || [] });
  }
  state.selected = -1;
  renderList();
  draw();
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.frame) ctx.drawImage(state.frame, 0, 0, canvas.width, canvas.height);
  const s = state.scale;
  state.shapes.forEach((shape, i) => {
    const col = shape.kind === "roi" ? "#ff7043" : COLOURS[i % COLOURS.length];
    ctx.save();
    ctx.strokeStyle = col;
    ctx.lineWidth = i === state.selected ? 3 : 2;
    if (shape.kind === "roi") ctx.setLineDash([8, 5]);
    ctx.beginPath();
    shape.polygon.forEach(([x, y], k) => (k ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
    ctx.closePath();
    ctx.stroke();
    if (i === state.selected) {
      ctx.fillStyle = col + "33";
      ctx.fill();
      ctx.fillStyle = col;
      for (const [x, y] of shape.polygon) ctx.fillRect(x * s - 4, y * s - 4, 8, 8);
    }
    const [x0, y0] = shape.polygon[0];
    ctx.fillStyle = col;
    ctx.font = "14px sans-serif";
    ctx.fillText(shape.name, x0 * s + 4, y0 * s + 16);
    ctx.restore();
  });
  if (state.drawing) {
    const d = state.drawing;
    ctx.strokeStyle = "#4fc3f7";
    ctx.lineWidth = 2;
    ctx.beginPath();
    d.points.forEach(([x, y], k) => (k ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
    if (d.hover) ctx.lineTo(d.hover[0] * s, d.hover[1] * s);
    ctx.stroke();
    ctx.fillStyle = "#4fc3f7";
    for (const [x, y] of d.points) ctx.fillRect(x * s - 3, y * s - 3, 6, 6);
  }
}

function inside(poly, [x, y]) {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function near(a, b, px = 8) {
  return Math.hypot(a[0] - b[0], a[1] - b[1]) * state.scale <= px;
}

function startDrawing(kind) {
  state.drawing = { kind, points: [], hover: null };
  state.selected = -1;
  message(kind === "roi" ? "click the ROI's corners" : "click the zone's corners", "");
  draw();
}

function finishDrawing() {
  const d = state.drawing;
  state.drawing = null;
  if (!d || d.points.length < 3) {
    message("a polygon needs at least 3 corners", "error");
    draw();
    return;
  }
  const poly = [];
  for (const [x, y] of d.points) {  // a double-click adds its corner twice
    const q = [Math.round(x), Math.round(y)];
    const last = poly[poly.length - 1];
    if (!last || last[0] !== q[0] || last[1] !== q[1]) poly.push(q);
  }
  if (d.kind === "roi") {
    state.shapes = state.shapes.filter((s) => s.kind !== "roi");
    state.shapes.unshift({ kind: "roi", name: "roi", polygon: poly, alerts: [] });
    state.selected = 0;
  } else {
    state.shapes.push({ kind: "zone", name: uniqueName(), polygon: poly, alerts: [] });
    state.selected = state.shapes.length - 1;
  }
  message("drawn: name it, then Save & apply", "");
  renderList();
  draw();
}

canvas.addEventListener("mousedown", (ev) => {
  if (state.drawing || ev.button !== 0) return;
  const p = toFrame(ev);
  const sel = state.shapes[state.selected];
  if (sel) {
    const k = sel.polygon.findIndex((q) => near(q, p));
    if (k >= 0) { state.drag = { vertex: k, shape: state.selected }; return; }
  }
  for (let i = state.shapes.length - 1; i >= 0; i--) {
    if (inside(state.shapes[i].polygon, p)) {
      state.selected = i;
      state.drag = { shape: i, from: p, orig: state.shapes[i].polygon.map((q) => q.slice()) };
      renderList();
      draw();
      return;
    }
  }
  state.selected = -1;
  renderList();
  draw();
});

canvas.addEventListener("mousemove", (ev) => {
  const p = toFrame(ev);
  if (state.drawing) { state.drawing.hover = p; draw(); return; }
  const d = state.drag;
  if (!d) return;
  const shape = state.shapes[d.shape];
  if (d.vertex !== undefined) {
    shape.polygon[d.vertex] = [Math.round(p[0]), Math.round(p[1])];
  } else {
    const dx = p[0] - d.from[0], dy = p[1] - d.from[1];
    shape.polygon = d.orig.map(([x, y]) => [Math.round(x + dx), Math.round(y + dy)]);
  }
  draw();
});

window.addEventListener("mouseup", () => { state.drag = null; });

canvas.addEventListener("click", (ev) => {
  const d = state.drawing;
  if (!d) return;
  const p = toFrame(ev);
  if (d.points.length >= 3 && near(p, d.points[0], 10)) { finishDrawing(); return; }
  d.points.push(p);
  draw();
});

canvas.addEventListener("dblclick", () => { if (state.drawing) finishDrawing(); });

window.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
  if (ev.key === "Enter" && state.drawing) finishDrawing();
  else if (ev.key === "Escape") { state.drawing = null; draw(); message("", ""); }
  else if ((ev.key === "Delete" || ev.key === "Backspace") && state.selected >= 0) deleteSelected();
});

function deleteSelected() {
  if (state.selected < 0) return;
  state.shapes.splice(state.selected, 1);
  state.selected = -1;
  renderList();
  draw();
}

function numberInput(value, onchange, cls) {
  const input = document.createElement("input");
  input.type = "number";
  input.step = "any";
  input.className = cls;
  input.value = value === undefined || value === null ? "" : String(value);
  input.addEventListener("input", () => onchange(input.value));
  return input;
}

function renderList() {
  const box = document.getElementById("shapes");
  box.replaceChildren();
  state.shapes.forEach((shape, i) => {
    const div = document.createElement("div");
    div.className = "shape" + (i === state.selected ? " selected" : "");
    div.dataset.index = String(i);
    div.addEventListener("click", (ev) => {
      if (ev.target.tagName === "INPUT") return;
      state.selected = i; renderList(); draw();
    });
    if (shape.kind === "roi") {
      div.append("ROI (count only inside)");
    } else {
      const name = document.createElement("input");
      name.className = "name";
      name.value = shape.name;
      name.addEventListener("input", () => { shape.name = name.value; draw(); });
      const rule = shape.alerts[0] || (shape.alerts[0] = {});
      const set = (key) => (v) => {
        if (v === "") delete rule[key]; else rule[key] = Number(v);
      };
      div.append("name ", name, document.createElement("br"), "alert above ",
                 numberInput(rule.above, set("above"), "above"), " below ",
                 numberInput(rule.below, set("below"), "below"), document.createElement("br"),
                 "for ", numberInput(rule.for, set("for"), "for"), " s, clear after ",
                 numberInput(rule.clear, set("clear"), "clear"), " s");
    }
    box.appendChild(div);
  });
}

function zoneFile() {
  const out = { frame_size: state.size, zones: [] };
  for (const shape of state.shapes) {
    if (shape.kind === "roi") { out.roi = shape.polygon; continue; }
    const alerts = shape.alerts.filter((a) => a.above !== undefined || a.below !== undefined);
    const zone = { name: shape.name, polygon: shape.polygon };
    if (alerts.length) zone.alerts = alerts;
    out.zones.push(zone);
  }
  return out;
}

async function save() {
  try {
    const r = await fetch("/api/zones", {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(zoneFile()),
    });
    const data = await r.json();
    if (!r.ok) { message(data.error || r.statusText, "error"); return; }
    message("saved" + (data.saved ? " to " + data.saved : "") + " and applied", "ok");
  } catch (e) {
    message("could not save: " + e.message, "error");
  }
}

document.getElementById("new-zone").addEventListener("click", () => startDrawing("zone"));
document.getElementById("new-roi").addEventListener("click", () => startDrawing("roi"));
document.getElementById("delete").addEventListener("click", deleteSelected);
document.getElementById("save").addEventListener("click", save);
document.getElementById("source").addEventListener("change", async (ev) => {
  await loadFrame(ev.target.value);
  draw();
});

async function start() {
  const r = await fetch("/api/status?history=0", { cache: "no-store" });
  const status = await r.json();
  const select = document.getElementById("source");
  for (const src of status.sources) {
    const opt = document.createElement("option");
    opt.value = src.id;
    opt.textContent = src.name;
    select.appendChild(opt);
  }
  if (status.sources.length) await loadFrame(status.sources[0].id);
  await loadZones();
  state.ready = true;
}
start();
