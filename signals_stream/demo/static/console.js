// The console's live parts: entity lookup (polled), the interventions feed (SSE), stream health.
"use strict";
const $ = (s) => document.querySelector(s);
const series = { rate: [], lag: [], bad: [] };
let previous = null;
let watched = null;
let lastValues = {};

function cell(text, tag = "td") {
  const c = document.createElement(tag);
  c.textContent = text;
  return c;
}

function draw(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${i * (120 / 59)},${30 - (v / max) * 28}`).join(" ");
  svg.innerHTML = `<polyline points="${points}"></polyline>`;
}

function push(name, value) {
  series[name].push(value);
  if (series[name].length > 60) series[name].shift();
}

async function health() {
  const answer = await fetch("/console/api/health", { credentials: "same-origin" });
  if (!answer.ok) return;
  const h = await answer.json();
  const now = Date.now();
  const applied = h.worker ? h.worker.good : 0;
  const bad = Object.values(h.bad_by_reason).reduce((a, b) => a + b, 0);
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    push("rate", Math.max(0, (applied - previous.applied) / seconds));
    push("bad", Math.max(0, (bad - previous.bad) / seconds));
  }
  previous = { at: now, applied, bad };
  const lag = Object.values(h.lag).reduce((a, b) => a + b, 0);
  push("lag", lag);
  $("#rate").textContent = (series.rate.at(-1) || 0).toFixed(1);
  $("#lag").textContent = lag;
  $("#bad-rate").textContent = (series.bad.at(-1) || 0).toFixed(1);
  draw("#rate-chart", series.rate);
  draw("#lag-chart", series.lag);
  draw("#bad-chart", series.bad);
  const reasons = $("#bad-reasons");
  reasons.replaceChildren(...Object.entries(h.bad_by_reason).map(([reason, n]) => {
    const row = document.createElement("tr");
    row.append(cell(reason), cell(n));
    return row;
  }));
  $("#dead-letters").replaceChildren(...h.recent_bad.map((d) => {
    const row = document.createElement("tr");
    row.append(cell(new Date(d.failed_at_ms).toLocaleTimeString()), cell(d.reason), cell(d.source || ""), cell(d.detail));
    return row;
  }));
}

async function lookup() {
  if (!watched) return;
  const query = new URLSearchParams(watched);
  const answer = await fetch(`/console/api/entity?${query}`, { credentials: "same-origin" });
  if (!answer.ok) return;
  const found = await answer.json();
  const box = $("#entity");
  const tables = [];
  for (const [group, answer] of Object.entries(found.groups)) {
    const values = answer ? answer.attributes : null;
    const table = document.createElement("table");
    table.dataset.group = group;
    const head = document.createElement("tr");
    head.append(cell(group, "th"), cell(values ? "" : "no state yet", "th"));
    table.append(head);
    for (const [name, value] of Object.entries(values || {})) {
      const row = document.createElement("tr");
      row.dataset.attribute = name;
      const text = JSON.stringify(value);
      const key = `${group}/${name}`;
      if (key in lastValues && lastValues[key] !== text) row.className = "changed";
      lastValues[key] = text;
      row.append(cell(name), cell(text));
      table.append(row);
    }
    tables.push(table);
  }
  box.replaceChildren(...tables);
}

function feed() {
  const source = new EventSource("/console/api/interventions");
  source.addEventListener("message", (message) => {
    const i = JSON.parse(message.data);
    const item = document.createElement("li");
    const target = i.target_attribute_key || {};
    item.dataset.intervention = i.name;
    item.dataset.target = target.id || "";
    item.textContent = `${new Date().toLocaleTimeString()} ${i.name} v${i.version} -> ${target.name}=${target.id} ${JSON.stringify(i.attributes)}`;
    $("#interventions").prepend(item);
  });
}

$("#entity-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  watched = { key: form.get("key"), id: form.get("id").trim() };
  lastValues = {};
  lookup();
});
const initial = new URLSearchParams(location.search);
if (initial.get("id")) {
  $("#entity-form").elements.id.value = initial.get("id");
  if (initial.get("key")) $("#entity-form").elements.key.value = initial.get("key");
  watched = { key: initial.get("key") || "domain_userid", id: initial.get("id") };
}
feed();
health();
lookup();
setInterval(health, 2000);
setInterval(lookup, 1000);
