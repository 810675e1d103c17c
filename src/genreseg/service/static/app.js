// The page of `genreseg serve`: drop files, upload them one after another to POST predict,
// show each file's genre, probability bars and timeline. Plain JavaScript, no dependencies.
"use strict";

// Tableau 10: distinguishable colours, one per genre (in the model's label order).
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const MAX_RETRIES = 3;  // when the server is busy (503), wait as it says and try again

let model = null;       // GET model: labels, limits, ...
const pending = [];     // files waiting for their turn
let running = false;
let modelReady = null;  // resolves once GET model has answered (or failed)

const $ = (sel, root = document) => root.querySelector(sel);
const mb = (bytes) => String(+(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1));
const percent = (p) => `${Math.round(100 * p)} %`;

function colour(label) {
  const i = model ? model.labels.indexOf(label) : -1;
  return i < 0 ? "#888" : PALETTE[i % PALETTE.length];
}

function clock(seconds) {
  const m = Math.floor(seconds / 60), s = Math.round(seconds - 60 * m);
  return s === 60 ? `${m + 1}:00` : `${m}:${String(s).padStart(2, "0")}`;
}

async function loadModel() {
  const info = $("#model-info");
  try {
    const response = await fetch("model");
    if (!response.ok) throw new Error(`status ${response.status}`);
    model = await response.json();
  } catch (err) {
    info.textContent = "The server did not describe its model; is it still running? (" + err.message + ")";
    info.classList.add("error");
    return;
  }
  const fm = model.frame_model;
  info.textContent = `${fm.kind.toUpperCase()} [${fm.hidden.join(", ")}] model, ` +
    `${model.labels.length} genres: ${model.labels.join(", ")}.`;
  const lim = model.limits;
  $("#limits").textContent = `Up to ${mb(lim.max_upload_bytes)} MB and ${clock(lim.max_duration_s)} ` +
    "of audio per file. Files are analysed one after another and not kept.";
}

// ------------------------------------------------------------------ files in, one at a time
function addFiles(files) {
  for (const file of files) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    $(".file", card).textContent = file.name;
    setStatus(card, "Waiting for its turn…");
    $("#results").prepend(card);
    pending.push({ file, card });
  }
  if (!running) runPending();
}

async function runPending() {
  running = true;
  await modelReady;  // colours and limits come from the model
  while (pending.length) {
    const job = pending.shift();
    await analyse(job.file, job.card);
  }
  running = false;
}

function setStatus(card, text, kind = "") {
  const status = $(".status", card);
  status.textContent = text;
  status.className = "status " + kind;
}

function fail(card, text) {
  setStatus(card, text, "error");
  $("progress", card).hidden = true;
  card.classList.add("failed");
}

async function analyse(file, card) {
  if (model && file.size > model.limits.max_upload_bytes) {
    return fail(card, `Too large: this file is ${mb(file.size)} MB; the server takes at most ` +
      `${mb(model.limits.max_upload_bytes)} MB.`);
  }
  for (let attempt = 0; ; attempt++) {
    const { status, body, retryAfter } = await upload(file, card);
    if (status === 200) return show(card, body);
    if (status === 503 && attempt < MAX_RETRIES) {
      const wait = Math.min(Math.max(retryAfter || 2, 1), 30);
      setStatus(card, `The server is busy; trying again in ${wait} s…`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * wait));
      continue;
    }
    return fail(card, explain(status, body, file));
  }
}

// POST the file with XMLHttpRequest: fetch cannot report upload progress.
function upload(file, card) {
  return new Promise((resolve) => {
    const bar = $("progress", card);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "predict");
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.value = (100 * e.loaded) / e.total;
      setStatus(card, `Uploading… ${Math.round(bar.value)} % of ${mb(file.size)} MB`);
    };
    xhr.upload.onload = () => {
      bar.removeAttribute("value");  // indeterminate while the server listens
      setStatus(card, "Analysing…");
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: explained below */ }
      resolve({ status: xhr.status, body, retryAfter: Number(xhr.getResponseHeader("Retry-After")) });
    };
    xhr.onerror = () => resolve({ status: 0, body: null });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

function explain(status, body, file) {
  const detail = body && typeof body.detail === "string" ? body.detail : null;
  switch (status) {
    case 0: return "The upload did not reach the server: the connection was lost, or the server " +
                   "refused the file before it was sent. Is the server still running?";
    case 408: return `The upload was too slow: ${detail}.`;
    case 413: return `Too large: ${detail}.`;
    case 422: return `This file cannot be analysed: ${detail}.`;
    case 503: return "The server is still busy after several tries; please try again later.";
    case 504: return `The analysis took too long: ${detail}.`;
    default: return `The server could not analyse ${file.name} (error ${status}` +
                    (detail ? `: ${detail}` : "") + ").";
  }
}

// ------------------------------------------------------------------ the answer
function show(card, r) {
  $("progress", card).hidden = true;
  card.classList.add("done");
  card.dataset.genre = r.genre;
  setStatus(card, "");
  const result = $(".result", card);
  result.hidden = false;
  const genre = $(".genre", result);
  genre.textContent = r.genre;
  genre.style.color = colour(r.genre);
  $(".confidence", result).textContent = percent(r.probabilities[r.genre]);
  $(".facts", result).textContent = `${clock(r.duration_s)} of audio, analysed in ${r.analysis_s.toFixed(2)} s` +
    (r.queued_s >= 0.1 ? ` after ${r.queued_s.toFixed(1)} s in the queue` : "");
  if (r.warnings.length) {
    const note = $(".note", result);
    note.textContent = "Note: " + r.warnings.join("; ") + " (the genre of silence means little).";
    note.hidden = false;
  }

  const bars = $(".bars", result);
  const ranked = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of ranked) {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span>' +
                    '<span class="value"></span>';
    $(".label", row).textContent = label;
    $(".fill", row).style.width = `${(100 * p).toFixed(1)}%`;
    $(".fill", row).style.background = colour(label);
    $(".value", row).textContent = percent(p);
    bars.append(row);
  }

  const canvas = $("canvas", result);
  drawTimeline(canvas, r);
  const legend = $(".legend", result);
  for (const label of r.timeline.labels) {
    const item = document.createElement("span");
    item.innerHTML = '<i></i>';
    item.firstChild.style.background = colour(label);
    item.append(label);
    legend.append(item);
  }
  $(".caption", result).textContent = (r.segments.length
    ? `Top band: ${r.segments.length} genre segment(s). ` : "") +
    `Below: class posteriors over time, averaged over ${r.timeline.smoothing_s} s` +
    (r.timeline.times_s.length < r.timeline.n_frames
      ? `, ${r.timeline.times_s.length} of ${r.timeline.n_frames} frames shown.` : ".");
}

// Stacked posteriors over time (each column sums to 1), with the segments as a band on top.
function drawTimeline(canvas, r) {
  const { times_s: times, posteriors, labels } = r.timeline;
  const band = r.segments.length ? 26 : 0;
  const cssWidth = canvas.parentElement.clientWidth || 600;
  const cssHeight = 180 + band;
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);

  const left = 40, right = 18, top = 8 + band, bottom = 22;  // room for the axis labels
  const w = cssWidth - left - right, h = cssHeight - top - bottom;
  const duration = Math.max(r.duration_s, times[times.length - 1] || 0, 1e-3);
  const x = (t) => left + (w * t) / duration;
  const y = (p) => top + h * (1 - p);
  // Each point stands for the time around it: stretch the first and last to the file's ends.
  const xs = times.map(x);
  xs[0] = x(0);
  xs[xs.length - 1] = x(duration);

  const base = new Array(times.length).fill(0);
  labels.forEach((label, k) => {
    const upper = base.map((b, i) => b + posteriors[i][k]);
    ctx.beginPath();
    xs.forEach((xi, i) => (i ? ctx.lineTo(xi, y(upper[i])) : ctx.moveTo(xi, y(upper[i]))));
    for (let i = xs.length - 1; i >= 0; i--) ctx.lineTo(xs[i], y(base[i]));
    ctx.closePath();
    ctx.fillStyle = colour(label);
    ctx.fill();
    upper.forEach((u, i) => (base[i] = u));
  });

  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  for (const s of r.segments) {
    const x0 = x(s.start_s), x1 = x(s.end_s);
    ctx.fillStyle = colour(s.genre);
    ctx.fillRect(x0, 2, Math.max(x1 - x0 - 1, 1), band - 6);
    if (x1 - x0 > 40) {
      ctx.fillStyle = "#fff";
      ctx.fillText(s.genre, x0 + 4, 2 + (band - 6) / 2);
    }
  }

  ctx.strokeStyle = "#666";
  ctx.fillStyle = "#333";
  ctx.strokeRect(left, top, w, h);
  ctx.textAlign = "right";
  for (const p of [0, 0.5, 1]) ctx.fillText(percent(p), left - 4, y(p));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800].find((s) => duration / s <= 8) || 3600;
  for (let t = 0; t <= duration + 1e-6; t += step) {
    ctx.fillText(clock(t), x(t), top + h + 5);
  }
  canvas.setAttribute("aria-label", `Genre timeline of ${r.file}: ${times.length} points` +
    (r.segments.length ? `, segments ${r.segments.map((s) => s.genre).join(", ")}` : ""));
  canvas.dataset.points = String(times.length);
}

// ------------------------------------------------------------------ wiring
function setUp() {
  const drop = $("#drop");
  const picker = $("#picker");
  // A file dropped beside the zone would make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  drop.addEventListener("dragover", () => drop.classList.add("over"));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") picker.click();
  });
  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = "";  // the same file may be chosen again
  });
  modelReady = loadModel();
}

setUp();
