// The remote's page: state and thumbnails come over one WebSocket; every press or drag is sent back
// as OSC's address space in JSON ({address, args}); the show checks it and answers with a refusal
// to show here, or nothing. No library, nothing from another site.
"use strict";

const $ = (id) => document.getElementById(id);
const LOG_SLIDERS = { strength: true }; // a step size from 0.001 to 1: only a log scale is usable
const SEND_EVERY_MS = 100; // a drag sends at most this often (the socket's limit is 20 a second)
let socket = null;
let state = {};
let nextId = 1;
let messageTimer = 0;
let thumbUrl = null;
const dragging = new Set();

function send(address, args = []) {
  const message = { id: nextId++, address, args };
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message));
    return;
  }
  fetch("/api/control", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(message), credentials: "same-origin" })
    .then((r) => r.json()).then(reply).catch(() => say("the show does not answer"));
}

function reply(answer) {
  if (answer && answer.ok === false && answer.error) say(answer.error);
}

function say(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.binaryType = "blob";
  socket.onopen = () => { $("link").textContent = "live"; $("link").className = "link live"; };
  socket.onclose = () => {
    $("link").textContent = "reconnecting…";
    $("link").className = "link";
    setTimeout(connect, 1500);
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") return showThumb(event.data);
    const message = JSON.parse(event.data);
    if (message.type === "state") render(message);
    else if (message.type === "reply") reply(message);
  };
}

function showThumb(blob) {
  const url = URL.createObjectURL(blob);
  const img = $("thumb");
  img.onload = () => { if (thumbUrl) URL.revokeObjectURL(thumbUrl); thumbUrl = url; };
  img.src = url;
}

function render(next) {
  const looksChanged = JSON.stringify(next.looks) !== JSON.stringify(state.looks);
  state = next;
  const rec = state.recording ? ' · <span class="rec">● REC</span>' : "";
  const look = state.look || state.layer || "";
  $("figures").innerHTML = "";
  $("figures").append(`${(state.fps || 0).toFixed(1)} fps · ${(state.dreams_per_s || 0).toFixed(1)} dreams/s · `
    + `${state.backend || ""} · ${look}`);
  if (state.recording) $("figures").insertAdjacentHTML("beforeend", rec);
  $("record").setAttribute("aria-pressed", String(state.recording));
  $("record").textContent = state.recording ? "■ Stop" : "● Record";
  $("freeze").setAttribute("aria-pressed", String(state.frozen));
  renderKeepsakes(state.keepsake);
  if (looksChanged) buildLooks();
  for (const button of $("looks").children) {
    const current = button.dataset.look === state.look;
    button.setAttribute("aria-pressed", String(current));
  }
  renderControls();
}

function renderKeepsakes(k) {
  $("keepsake-row").hidden = !k; // only where the show takes keepsakes (--web)
  if (!k) return;
  const busy = k.countdown || k.held;
  $("keepsake").setAttribute("aria-busy", String(busy));
  $("keepsake").textContent = k.countdown ? "3 · 2 · 1 …" : "Take a keepsake";
  $("keepsakes").textContent = `Keepsakes today: ${k.taken_today}`
    + (k.showing ? " · link on screen" : "") + (k.failure ? ` · ${k.failure}` : "");
}

function buildLooks() {
  const box = $("looks");
  box.replaceChildren();
  for (const name of state.looks || []) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "look";
    button.dataset.look = name;
    button.textContent = name.replaceAll("_", " ");
    button.onclick = () => send("/dreamcam/preset", [name]);
    box.append(button);
  }
}

function toSlider(name, value, c) {
  if (!LOG_SLIDERS[name]) return value;
  const low = Math.max(c.min, 0.001);
  return (1000 * Math.log(Math.max(value, low) / low)) / Math.log(c.max / low);
}

function fromSlider(name, position, c) {
  if (!LOG_SLIDERS[name]) return c.int ? Math.round(position) : position;
  const low = Math.max(c.min, 0.001);
  return Number((low * Math.pow(c.max / low, position / 1000)).toPrecision(3));
}

function renderControls() {
  const box = $("controls");
  for (const [name, c] of Object.entries(state.controls || {})) {
    let input = $(`ctl-${name}`);
    if (!input) input = addControl(box, name, c);
    if (!dragging.has(name)) input.value = toSlider(name, c.value, c);
    if (!dragging.has(name)) $(`out-${name}`).textContent = format(c.value);
  }
}

function addControl(box, name, c) {
  const wrap = document.createElement("div");
  wrap.className = "control";
  const label = document.createElement("label");
  label.htmlFor = `ctl-${name}`;
  label.textContent = name.replaceAll("_", " ");
  const out = document.createElement("output");
  out.id = `out-${name}`;
  label.append(out);
  const input = document.createElement("input");
  input.type = "range";
  input.id = `ctl-${name}`;
  if (LOG_SLIDERS[name]) { input.min = 0; input.max = 1000; input.step = 1; }
  else { input.min = c.min; input.max = c.max; input.step = c.int ? 1 : (c.max - c.min) / 200; }
  let last = 0;
  const push = (final) => {
    const value = fromSlider(name, Number(input.value), state.controls[name]);
    out.textContent = format(value);
    const now = Date.now();
    if (final || now - last >= SEND_EVERY_MS) { last = now; send(`/dreamcam/${name}`, [value]); }
  };
  input.addEventListener("pointerdown", () => dragging.add(name));
  input.addEventListener("input", () => { dragging.add(name); push(false); });
  input.addEventListener("change", () => { push(true); setTimeout(() => dragging.delete(name), 400); });
  wrap.append(label, input);
  box.append(wrap);
  return input;
}

function format(value) {
  return Number.isInteger(value) ? String(value) : Number(value).toPrecision(3);
}

function refreshSnapshots() {
  fetch("/api/snapshots", { credentials: "same-origin" }).then((r) => r.json()).then((answer) => {
    const list = $("snapshots");
    list.replaceChildren();
    for (const name of answer.snapshots || []) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/snapshots/${encodeURIComponent(name)}`;
      link.download = name;
      link.textContent = name;
      item.append(link);
      list.append(item);
    }
    if (!list.children.length) list.innerHTML = '<li class="none">none yet</li>';
  }).catch(() => {});
}

$("keepsake").onclick = () => send("/dreamcam/keepsake");
$("prev").onclick = () => send("/dreamcam/prev");
$("next").onclick = () => send("/dreamcam/next");
$("freeze").onclick = () => send("/dreamcam/freeze", [state.frozen ? 0 : 1]);
$("record").onclick = () => send("/dreamcam/record", [state.recording ? 0 : 1]);
$("snapshot").onclick = () => {
  send("/dreamcam/snapshot");
  setTimeout(refreshSnapshots, 600);
  setTimeout(refreshSnapshots, 2000);
};
connect();
refreshSnapshots();
