// The point annotator: one click per object, autosaved to the points CSV after every change.
// Points are 0-based pixel centres: a click at continuous image position u is stored as u - 0.5.
"use strict";
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const A = {
  images: [], index: 0, name: null, img: null, size: [1, 1], points: [], undo: [],
  view: { z: 1, ox: 0, oy: 0 }, mouse: null, drag: null, saving: Promise.resolve(),
  pending: 0, ready: false, hintAvailable: false, showHint: false, hint: null, hintFor: null,
};
window.annotator = A; // for the browser tests

function pathUrl(prefix, name) {
  return prefix + name.split("/").map(encodeURIComponent).join("/");
}

function resize() {
  const r = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(r.width));
  canvas.height = Math.max(1, Math.round(r.height));
}

function fit() {
  const [w, h] = A.size;
  const z = Math.min(canvas.width / w, canvas.height / h);
  A.view = { z, ox: (canvas.width - w * z) / 2, oy: (canvas.height - h * z) / 2 };
  draw();
}

function toImage(sx, sy) {  // canvas pixels -> pixel-centre image coordinates
  return [(sx - A.view.ox) / A.view.z - 0.5, (sy - A.view.oy) / A.view.z - 0.5];
}

function toScreen([x, y]) {
  return [(x + 0.5) * A.view.z + A.view.ox, (y + 0.5) * A.view.z + A.view.oy];
}

function canvasPos(ev) {
  const r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width,
          (ev.clientY - r.top) * canvas.height / r.height];
}

function draw() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!A.img) return;
  ctx.imageSmoothingEnabled = A.view.z < 2;
  ctx.drawImage(A.img, A.view.ox, A.view.oy, A.size[0] * A.view.z, A.size[1] * A.view.z);
  if (A.showHint && A.hint && A.hintFor === A.name) {
    ctx.globalAlpha = 0.45;
    ctx.drawImage(A.hint, A.view.ox, A.view.oy, A.size[0] * A.view.z, A.size[1] * A.view.z);
    ctx.globalAlpha = 1;
  }
  ctx.lineWidth = 2;
  for (const p of A.points) {
    const [x, y] = toScreen(p);
    ctx.strokeStyle = "#000";
    ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.stroke();
    ctx.fillStyle = "#ff1744";
    ctx.beginPath(); ctx.arc(x, y, 3.5, 0, 2 * Math.PI); ctx.fill();
  }
  document.getElementById("count").textContent = String(A.points.length);
}

async function loadHint() {
  const name = A.name;
  if (!A.showHint || !A.hintAvailable || A.hintFor === name) { draw(); return; }
  const r = await fetch(pathUrl("/api/hint/", name), { cache: "no-store" });
  if (!r.ok || A.name !== name) return;
  const model = Number(r.headers.get("X-Count"));
  const img = new Image();
  img.onload = () => {
    A.hint = img;
    A.hintFor = name;
    document.getElementById("hint-count").textContent = "model: ~" + model.toFixed(1);
    draw();
  };
  img.src = URL.createObjectURL(await r.blob());
}

function toggleHint() {
  if (!A.hintAvailable) { setStatus("no hint: start annotate with --model", "error"); return; }
  A.showHint = !A.showHint;
  document.getElementById("hint-count").textContent = "";
  loadHint();
}

function setStatus(text, kind) {
  const el = document.getElementById("saved");
  el.textContent = text;
  el.className = "msg " + (kind || "");
}

function change(points) {
  A.undo.push(A.points);
  A.points = points;
  draw();
  save();
}

function save() {
  const name = A.name, body = JSON.stringify({ points: A.points });
  A.pending++;
  setStatus("saving…", "");
  // one request at a time, in order: the CSV always ends with the last change
  A.saving = A.saving.then(async () => {
    try {
      const r = await fetch(pathUrl("/api/points/", name), {
        method: "PUT", headers: { "Content-Type": "application/json" }, body,
      });
      const data = await r.json();
      if (!r.ok) throw new Error(data.error || r.statusText);
      const item = A.images.find((i) => i.name === name);
      if (item) { item.points = data.points; item.done = true; }
      setStatus("saved", "ok");
    } catch (e) {
      setStatus("NOT saved: " + e.message, "error");
    } finally {
      A.pending--;
      renderList();
    }
  });
}

function nearest(sx, sy, px = 12) {
  let best = -1, bd = px;
  A.points.forEach((p, i) => {
    const [x, y] = toScreen(p);
    const d = Math.hypot(x - sx, y - sy);
    if (d <= bd) { bd = d; best = i; }
  });
  return best;
}

function removeAt(sx, sy) {
  const i = nearest(sx, sy);
  if (i >= 0) change(A.points.filter((_, k) => k !== i));
}

function renderList() {
  const ul = document.getElementById("list");
  ul.replaceChildren();
  let total = 0, done = 0;
  A.images.forEach((item, i) => {
    total += item.points;
    done += item.done ? 1 : 0;
    const li = document.createElement("li");
    li.textContent = (item.done ? "✓ " : "· ") + item.name + " (" + item.points + ")";
    if (i === A.index) li.className = "current";
    li.addEventListener("click", () => go(i));
    ul.appendChild(li);
  });
  document.getElementById("total").textContent =
    total + " points on " + done + " of " + A.images.length + " frames";
}

async function go(i) {
  if (!A.images.length) return;
  A.index = (i + A.images.length) % A.images.length;
  const item = A.images[A.index];
  A.ready = false;
  const r = await fetch(pathUrl("/api/points/", item.name), { cache: "no-store" });
  const data = await r.json();
  if (!r.ok) { setStatus(data.error || r.statusText, "error"); return; }
  const img = new Image();
  await new Promise((ok, fail) => {
    img.onload = ok; img.onerror = fail; img.src = pathUrl("/api/image/", item.name);
  }).catch(() => setStatus("cannot show " + item.name, "error"));
  A.name = item.name;
  A.img = img;
  A.size = [data.width, data.height];
  A.points = data.points;
  A.undo = [];
  document.getElementById("position").textContent =
    (A.index + 1) + " / " + A.images.length + ": " + item.name;
  history.replaceState(null, "", "#" + encodeURIComponent(item.name));
  renderList();
  fit();
  A.ready = true;
  document.getElementById("hint-count").textContent = "";
  loadHint();
}

canvas.addEventListener("mousedown", (ev) => {
  if (ev.button === 0 || ev.button === 1) {
    const [sx, sy] = canvasPos(ev);
    A.drag = { sx, sy, ox: A.view.ox, oy: A.view.oy, moved: ev.button === 1 };
  }
});

canvas.addEventListener("mousemove", (ev) => {
  const [sx, sy] = canvasPos(ev);
  A.mouse = [sx, sy];
  const d = A.drag;
  if (!d) return;
  if (Math.hypot(sx - d.sx, sy - d.sy) > 4) d.moved = true;
  if (d.moved) {
    A.view.ox = d.ox + sx - d.sx;
    A.view.oy = d.oy + sy - d.sy;
    draw();
  }
});

canvas.addEventListener("mouseup", (ev) => {
  const d = A.drag;
  A.drag = null;
  if (!d || d.moved || ev.button !== 0 || !A.img) return;
  const [sx, sy] = canvasPos(ev);
  const [x, y] = toImage(sx, sy);
  if (x < -0.5 || y < -0.5 || x >= A.size[0] - 0.5 || y >= A.size[1] - 0.5) return;
  change([...A.points, [Math.round(x * 100) / 100, Math.round(y * 100) / 100]]);
});

canvas.addEventListener("contextmenu", (ev) => {
  ev.preventDefault();
  const [sx, sy] = canvasPos(ev);
  removeAt(sx, sy);
});

canvas.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const [sx, sy] = canvasPos(ev);
  zoomAt(sx, sy, ev.deltaY < 0 ? 1.25 : 0.8);
}, { passive: false });

function zoomAt(sx, sy, f) {
  const z = Math.min(64, Math.max(0.05, A.view.z * f));
  const k = z / A.view.z;
  A.view = { z, ox: sx - (sx - A.view.ox) * k, oy: sy - (sy - A.view.oy) * k };
  draw();
}

function undo() {
  if (!A.undo.length) return;
  A.points = A.undo.pop();
  draw();
  save();
}

window.addEventListener("keydown", (ev) => {
  const key = ev.key;
  if ((ev.ctrlKey || ev.metaKey) && key.toLowerCase() === "z") { ev.preventDefault(); undo(); }
  else if (key === "u") undo();
  else if (key === "ArrowRight" || key === "n" || key === "PageDown") go(A.index + 1);
  else if (key === "ArrowLeft" || key === "p" || key === "PageUp") go(A.index - 1);
  else if (key === "0" || key === "f") fit();
  else if (key === "h") toggleHint();
  else if (key === "+" || key === "=") zoomAt(canvas.width / 2, canvas.height / 2, 1.25);
  else if (key === "-") zoomAt(canvas.width / 2, canvas.height / 2, 0.8);
  else if ((key === "Delete" || key === "Backspace") && A.mouse) removeAt(...A.mouse);
});

document.getElementById("prev").addEventListener("click", () => go(A.index - 1));
document.getElementById("next").addEventListener("click", () => go(A.index + 1));
document.getElementById("undo").addEventListener("click", undo);
document.getElementById("empty").addEventListener("click", () => change([]));
document.getElementById("hint").addEventListener("click", toggleHint);
window.addEventListener("resize", () => { resize(); fit(); });

async function start() {
  resize();
  const r = await fetch("/api/images", { cache: "no-store" });
  const data = await r.json();
  A.images = data.images;
  A.hintAvailable = Boolean(data.hint);
  document.getElementById("hint").disabled = !A.hintAvailable;
  document.getElementById("csv").textContent = "saving to " + data.csv;
  const wanted = decodeURIComponent(location.hash.slice(1));
  let i = A.images.findIndex((item) => item.name === wanted);
  if (i < 0) i = Math.max(0, A.images.findIndex((item) => !item.done));
  await go(i);
}
start();
