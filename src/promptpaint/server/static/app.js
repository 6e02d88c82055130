// promptpaint's page: a plain client of the /v1 API (the same calls any other service makes).
// The photo is uploaded once (POST /v1/images) and then referred to by its image_id, so moving a
// slider re-runs only the cheap part of segmentation on the server (the image embedding is cached).
"use strict";

const $ = (id) => document.getElementById(id);
const TINT = "rgba(255, 64, 160, 0.55)";
const BOX_COLOURS = ["#ffc400", "#00c8ff", "#78ff5a", "#ff5a5a", "#c878ff", "#ffffff"];

const state = {
  token: sessionStorage.getItem("promptpaint-token") || "",
  image: null,          // {id, width, height, name, bitmap}
  seg: null,            // last /v1/segment answer
  brushed: false,       // the mask was edited by hand since the last segment
  op: "replace",
  aspect: "16:9",
  brush: "off",
  job: null,            // id of the running job
  result: null,         // last edit answer
  variant: 0,
  urls: [],             // object URLs to revoke when a new result arrives
};
const mask = document.createElement("canvas");  // the selection: white = selected, at image size

// ------------------------------------------------------------------------------------ API
class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function api(path, options = {}) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(path, { ...options, headers });
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  if (response.status === 401) $("token-form").hidden = false;
  throw new ApiError(response.status, detail, Number(response.headers.get("Retry-After")) || 0);
}

const json = async (path, options) => (await api(path, options)).json();

function form(fields, files = {}) {
  const body = new FormData();
  for (const [key, value] of Object.entries(fields)) body.append(key, value);
  for (const [key, [blob, name]] of Object.entries(files)) body.append(key, blob, name);
  return body;
}

// ------------------------------------------------------------------------------------ status line
function say(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------ the photo
async function openFile(file) {
  if (!file || !file.type.startsWith("image/")) return say("That is not an image file.", "error");
  say(`Uploading ${file.name || "pasted image"}…`, "busy");
  try {
    const info = await json("/v1/images", { method: "POST", body: form({}, { image: [file, file.name || "image.png"] }) });
    let bitmap = await createImageBitmap(file).catch(() => null);
    if (!bitmap || bitmap.width !== info.width || bitmap.height !== info.height) {
      // Show exactly what the server decoded (EXIF rotation, CMYK, 16-bit...).
      bitmap = await createImageBitmap(await (await api(`/v1/images/${info.image_id}`)).blob());
    }
    const name = (file.name || "pasted").replace(/\.[^.]+$/, "") || "image";
    state.image = { id: info.image_id, width: info.width, height: info.height, name, bitmap };
    state.seg = null;
    state.brushed = false;
    mask.width = info.width;
    mask.height = info.height;
    $("image-meta").textContent = `${file.name || "pasted image"} · ${info.width}×${info.height}`;
    $("drop").classList.add("compact");
    $("drop-text").innerHTML = "Drop, paste or <u>choose</u> another photo";
    $("empty").hidden = true;
    $("canvas-wrap").hidden = false;
    for (const id of ["photo", "tint", "boxes"]) Object.assign($(id), { width: info.width, height: info.height });
    $("photo").getContext("2d").drawImage(bitmap, 0, 0);
    showView("select");
    fitStage();
    render();
    say("Photo ready. Type what to find, or paint a mask with the brush.");
    if ($("find").value.trim()) segmentSoon(0);
  } catch (error) {
    say(`Upload failed: ${error.message}`, "error");
  }
}

async function reupload() {
  // The server forgets old images (a small LRU); send this one again under the same id.
  const blob = await new Promise((resolve) => $("photo").toBlob(resolve, "image/png"));
  const info = await json("/v1/images", { method: "POST", body: form({}, { image: [blob, "image.png"] }) });
  state.image.id = info.image_id;
}

async function withImage(call) {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404 || !state.image) throw error;
    await reupload();
    return call();
  }
}

// ------------------------------------------------------------------------------------ drawing
function fitStage() {
  if (!state.image) return;
  const view = $("view-select");
  const style = getComputedStyle(view);
  const width = view.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const height = view.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const scale = Math.min(width / state.image.width, height / state.image.height, 4);
  const wrap = $("canvas-wrap");
  wrap.style.width = `${Math.floor(state.image.width * scale)}px`;
  wrap.style.height = `${Math.floor(state.image.height * scale)}px`;
  renderBoxes();
  fitCompare();
}

function render(fast = false) {
  renderTint(fast);
  renderBoxes();
  const legend = $("legend");
  legend.innerHTML = "";
  if (!state.image || state.op === "outpaint") return;
  const what = state.op === "keep" ? "repainted (everything but the selection)" : "selected";
  legend.innerHTML = `<span><i style="background:${TINT}"></i>${what}</span>`;
  if (state.seg && state.seg.excluded.length) legend.innerHTML += `<span><i style="background:#ff3c3c"></i>excluded</span>`;
}

function renderTint(fast) {
  const tint = $("tint").getContext("2d");
  tint.clearRect(0, 0, tint.canvas.width, tint.canvas.height);
  if (!state.image || state.op === "outpaint") return;
  // The feathered edge is drawn as a blur: a preview only; the server applies the real feather.
  const feather = Number($("feather").value);
  tint.filter = !fast && feather > 0 ? `blur(${feather / 2}px)` : "none";
  if (state.op === "keep") {
    tint.fillStyle = "#fff";
    tint.fillRect(0, 0, tint.canvas.width, tint.canvas.height);
    tint.globalCompositeOperation = "destination-out";
  }
  tint.drawImage(mask, 0, 0);
  tint.filter = "none";
  tint.globalCompositeOperation = "source-in";
  tint.fillStyle = TINT;
  tint.fillRect(0, 0, tint.canvas.width, tint.canvas.height);
  tint.globalCompositeOperation = "source-over";
}

function renderBoxes() {
  const ctx = $("boxes").getContext("2d");
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  if (!state.seg || state.op === "outpaint") return;
  // Line widths and labels in screen pixels, whatever the zoom.
  const shown = ctx.canvas.getBoundingClientRect().width;
  const scale = shown ? state.image.width / shown : 1;
  ctx.lineWidth = 2 * scale;
  ctx.font = `600 ${Math.round(12 * scale)}px system-ui, sans-serif`;
  const draw = (item, colour, dashed) => {
    const [x0, y0, x1, y1] = item.box;
    ctx.setLineDash(dashed ? [6 * scale, 4 * scale] : []);
    ctx.strokeStyle = colour;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = `${dashed ? "−" : ""}${item.label} ${item.score.toFixed(2)}`;
    const tw = ctx.measureText(text).width + 8 * scale;
    const th = 16 * scale;
    const ty = Math.max(y0, th);
    ctx.fillStyle = colour;
    ctx.fillRect(x0, ty - th, tw, th);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x0 + 4 * scale, ty - 4 * scale);
  };
  state.seg.instances.forEach((item, i) => draw(item, BOX_COLOURS[i % BOX_COLOURS.length], false));
  state.seg.excluded.forEach((item) => draw(item, "#ff3c3c", true));
}

async function loadMaskPng(base64) {
  // A grayscale PNG (255 = selected) -> the white-on-transparent selection canvas.
  const bitmap = await createImageBitmap(await (await fetch(`data:image/png;base64,${base64}`)).blob());
  const ctx = mask.getContext("2d", { willReadFrequently: true });
  ctx.clearRect(0, 0, mask.width, mask.height);
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, mask.width, mask.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    data[i + 3] = data[i];
    data[i] = data[i + 1] = data[i + 2] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

function maskBlob() {
  // The selection as an opaque black/white PNG, the format every mask reader agrees on.
  const out = document.createElement("canvas");
  Object.assign(out, { width: mask.width, height: mask.height });
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(mask, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

// ------------------------------------------------------------------------------------ segmentation
let segmentTimer = 0;
let segmentRunning = false;
let segmentAgain = false;

function segmentSoon(delay = 250) {
  clearTimeout(segmentTimer);
  segmentTimer = setTimeout(runSegment, delay);
}

function selectOptions() {
  return {
    find: $("find").value.trim(),
    exclude: $("exclude").value.trim(),
    box_threshold: Number($("box-threshold").value),
    text_threshold: Number($("text-threshold").value),
    dilate: Number($("dilate").value),
  };
}

async function runSegment() {
  if (!state.image) return say("Open a photo first.", "error");
  if (!$("find").value.trim()) return say("Type what to find first (or paint the mask with the brush).");
  if (segmentRunning) { segmentAgain = true; return; }  // one request in flight; the latest values win
  segmentRunning = true;
  segmentAgain = false;
  say("Finding…", "busy");
  const started = performance.now();
  try {
    const options = selectOptions();
    const seg = await withImage(() => json("/v1/segment", {
      method: "POST", body: form({ image_id: state.image.id, options: JSON.stringify(options) }) }));
    await loadMaskPng(seg.mask_png);
    state.seg = seg;
    state.brushed = false;
    render();
    const ms = Math.round(performance.now() - started);
    say(`${seg.instances.length} instance(s), ${seg.mask_area.toLocaleString()} px selected (${ms} ms).`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 503 && error.retryAfter) {
      say(`Server busy; retrying in ${error.retryAfter} s…`, "busy");
      setTimeout(() => segmentSoon(0), error.retryAfter * 1000);
    } else {
      state.seg = null;
      mask.getContext("2d").clearRect(0, 0, mask.width, mask.height);
      render();
      say(error.message, "error");
    }
  } finally {
    segmentRunning = false;
    if (segmentAgain) segmentSoon(0);
  }
}

// ------------------------------------------------------------------------------------ brush
let stroke = null;

function imagePoint(event) {
  const rect = $("boxes").getBoundingClientRect();
  return {
    x: ((event.clientX - rect.left) / rect.width) * state.image.width,
    y: ((event.clientY - rect.top) / rect.height) * state.image.height,
    scale: state.image.width / rect.width,
  };
}

function paint(from, to) {
  const ctx = mask.getContext("2d");
  ctx.globalCompositeOperation = state.brush === "erase" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = "#fff";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = Number($("brush-size").value) * to.scale;
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x + 0.01, to.y);
  ctx.stroke();
  ctx.globalCompositeOperation = "source-over";
}

function moveCursor(event) {
  const cursor = $("cursor");
  if (state.brush === "off" || !state.image) { cursor.hidden = true; return; }
  const rect = $("canvas-wrap").getBoundingClientRect();
  const size = Number($("brush-size").value);
  Object.assign(cursor.style, { left: `${event.clientX - rect.left}px`, top: `${event.clientY - rect.top}px`,
    width: `${size}px`, height: `${size}px` });
  cursor.hidden = false;
}

function bindBrush() {
  const surface = $("boxes");
  surface.addEventListener("pointerdown", (event) => {
    if (state.brush === "off" || !state.image || state.op === "outpaint") return;
    surface.setPointerCapture(event.pointerId);
    stroke = imagePoint(event);
    paint(stroke, stroke);
    state.brushed = true;
    render(true);
  });
  surface.addEventListener("pointermove", (event) => {
    moveCursor(event);
    if (!stroke) return;
    const point = imagePoint(event);
    paint(stroke, point);
    stroke = point;
    render(true);
  });
  const end = () => { if (stroke) { stroke = null; render(); } };
  surface.addEventListener("pointerup", end);
  surface.addEventListener("pointercancel", end);
  surface.addEventListener("pointerleave", () => { $("cursor").hidden = true; });
  $("brush-reset").addEventListener("click", async () => {
    if (state.seg) await loadMaskPng(state.seg.mask_png);
    else mask.getContext("2d").clearRect(0, 0, mask.width, mask.height);
    state.brushed = false;
    render();
  });
}

// ------------------------------------------------------------------------------------ edits
function editOptions() {
  const options = { op: state.op === "keep" ? "replace" : state.op };
  const prompt = $("prompt").value.trim();
  const negative = $("negative").value.trim();
  if (prompt && state.op !== "remove") options.prompt = prompt;
  if (negative && state.op !== "remove") options.negative_prompt = negative;
  for (const [id, key] of [["seed", "seed"], ["steps", "steps"], ["variants", "variants"]]) {
    if ($(id).value !== "") options[key] = Number($(id).value);
  }
  if (state.op === "outpaint") {
    options.aspect = state.aspect === "custom" ? $("custom-aspect").value.trim() : state.aspect;
    options.anchor = $("anchor").value;
    return { options, sendMask: false };
  }
  options.feather = Number($("feather").value);
  const select = selectOptions();
  // Without hand edits the server re-derives the same mask from the text (a replayable recipe);
  // with them, the mask itself is sent and the recipe names it.
  const sendMask = state.brushed || !select.find;
  if (sendMask) {
    options.dilate = 0;  // already applied to the mask shown
    if (state.op === "keep") options.keep = select.find || "selection";
  } else {
    Object.assign(options, { exclude: select.exclude, box_threshold: select.box_threshold,
      text_threshold: select.text_threshold });
    if (state.op === "keep") {
      options.keep = select.find;
      options.dilate = -select.dilate;  // growing the kept subject = shrinking what is repainted
    } else {
      options.find = select.find;
      options.dilate = select.dilate;
    }
  }
  return { options, sendMask };
}

async function runEdit() {
  if (!state.image) return say("Open a photo first.", "error");
  const { options, sendMask } = editOptions();
  const files = sendMask ? { mask: [await maskBlob(), "selection.png"] } : {};
  setRunning(true);
  try {
    const job = await withImage(() => json("/v1/jobs", {
      method: "POST", body: form({ image_id: state.image.id, options: JSON.stringify(options) }, files) }));
    state.job = job.id;
    const done = await pollJob(job.id);
    if (done.status === "done") {
      await showResult(done.result, sendMask);
      say(`Done in ${(done.finished - done.started).toFixed(1)} s · seed ${done.result.variants[0].seed}.`);
    } else if (done.status === "cancelled") {
      say("Edit cancelled.");
    } else {
      say(done.error ? done.error.detail : "The edit failed.", "error");
    }
  } catch (error) {
    say(error.message, "error");
  } finally {
    state.job = null;
    setRunning(false);
  }
}

async function pollJob(id) {
  for (;;) {
    const job = await json(`/v1/jobs/${id}`);
    const { step, steps, pass } = job.progress;
    if (job.status === "queued") {
      $("job-status").textContent = `Waiting in the queue (position ${job.position})…`;
    } else if (job.status === "running") {
      $("job-status").textContent = steps ? `Window ${pass} · step ${step} of ${steps}` : "Preparing…";
      $("bar").style.width = steps ? `${(100 * step) / steps}%` : "4%";
    } else {
      return job;
    }
    await sleep(250);
  }
}

function setRunning(running) {
  $("run").disabled = running;
  $("run").textContent = running ? "Working…" : "Run edit";
  $("cancel").hidden = !running;
  $("progress").hidden = !running;
  $("bar").style.width = "0";
  $("job-status").textContent = running ? "Starting…" : "";
  if (running) say("Editing…", "busy");
}

// ------------------------------------------------------------------------------------ results
function dataUrl(base64) { return `data:image/png;base64,${base64}`; }

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  state.urls.push(url);
  return url;
}

async function showResult(result, sentMask) {
  state.urls.forEach((url) => URL.revokeObjectURL(url));
  state.urls = [];
  state.result = result;
  $("before").src = $("photo").toDataURL("image/png");
  const strip = $("variant-strip");
  strip.innerHTML = "";
  if (result.variants.length > 1) {
    result.variants.forEach((variant, i) => {
      const button = document.createElement("button");
      button.innerHTML = `<img alt="variant ${i + 1}" src="${dataUrl(variant.image_png)}"><span title="seed">${variant.seed}</span>`;
      button.addEventListener("click", () => chooseVariant(i));
      strip.append(button);
    });
  }
  const stem = state.image.name;
  $("dl-mask").href = dataUrl(result.mask_png);
  $("dl-mask").download = `${stem}.mask.png`;
  $("dl-selection").hidden = !sentMask;
  if (sentMask) $("dl-selection").href = objectUrl(await maskBlob());
  $("dl-selection").download = "selection.png";
  chooseVariant(0);
  $("result-tab").disabled = false;
  showView("result");
}

function chooseVariant(index) {
  const result = state.result;
  const variant = result.variants[index];
  state.variant = index;
  $("after").src = dataUrl(variant.image_png);
  [...$("variant-strip").children].forEach((button, i) => button.classList.toggle("on", i === index));
  const op = result.op || "edit";
  Object.assign($("dl-result"), { href: dataUrl(variant.image_png), download: `${state.image.name}.${op}.png` });
  const recipe = new Blob([JSON.stringify(variant.recipe, null, 2)], { type: "application/json" });
  Object.assign($("dl-recipe"), { href: objectUrl(recipe), download: `${state.image.name}.recipe.json` });
  fitCompare();
}

function fitCompare() {
  const result = state.result;
  if (!result || !state.image) return;
  const view = $("view-result");
  const width = view.clientWidth - 32;
  const height = view.clientHeight - 16 - 76;
  if (width <= 0 || height <= 0) return;
  const scale = Math.min(width / result.width, height / result.height, 4);
  const compare = $("compare");
  compare.style.width = `${Math.floor(result.width * scale)}px`;
  compare.style.height = `${Math.floor(result.height * scale)}px`;
  // The original sits where the edit put it (outpainting grows the canvas around it).
  const [ox, oy] = (result.info && result.info.offset) || [0, 0];
  Object.assign($("before").style, {
    left: `${(100 * ox) / result.width}%`, top: `${(100 * oy) / result.height}%`,
    width: `${(100 * state.image.width) / result.width}%`, height: `${(100 * state.image.height) / result.height}%`,
  });
}

// ------------------------------------------------------------------------------------ views and controls
function showView(name) {
  $("view-select").hidden = name !== "select";
  $("view-result").hidden = name !== "result";
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("on", tab.dataset.view === name));
  $("legend").hidden = name !== "select";
  requestAnimationFrame(name === "select" ? fitStage : fitCompare);
}

function bindToggle(groupId, key, onChange) {
  const group = $(groupId);
  group.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    group.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b === button));
    onChange(button.dataset[key]);
  });
}

function bindControls() {
  $("file").addEventListener("change", (event) => openFile(event.target.files[0]));
  for (const target of [$("drop"), document.querySelector(".stage")]) {
    target.addEventListener("dragover", (event) => { event.preventDefault(); target.classList.add("over"); });
    target.addEventListener("dragleave", () => target.classList.remove("over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      target.classList.remove("over");
      openFile(event.dataTransfer.files[0]);
    });
  }
  window.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((entry) => entry.type.startsWith("image/"));
    if (item) openFile(item.getAsFile());
  });
  for (const id of ["box-threshold", "text-threshold", "dilate", "feather", "brush-size"]) {
    const input = $(id);
    const show = () => { $(`${id}-out`).textContent = input.value; };
    show();
    input.addEventListener("input", () => {
      show();
      if (id === "brush-size") return;
      if (id === "feather") render();
      else if (state.image && $("find").value.trim()) segmentSoon();
    });
  }
  $("find").addEventListener("keydown", (event) => { if (event.key === "Enter") segmentSoon(0); });
  $("exclude").addEventListener("keydown", (event) => { if (event.key === "Enter") segmentSoon(0); });
  $("segment-btn").addEventListener("click", () => segmentSoon(0));
  bindToggle("brush-mode", "brush", (mode) => {
    state.brush = mode;
    $("canvas-wrap").classList.toggle("brushing", mode !== "off");
  });
  bindToggle("op", "op", (op) => {
    state.op = op;
    $("outpaint-options").hidden = op !== "outpaint";
    $("prompt-field").hidden = op === "remove";
    render();
  });
  bindToggle("aspect", "aspect", (aspect) => {
    state.aspect = aspect;
    $("custom-aspect-field").hidden = aspect !== "custom";
  });
  $("run").addEventListener("click", runEdit);
  $("cancel").addEventListener("click", () => {
    if (state.job) api(`/v1/jobs/${state.job}`, { method: "DELETE" }).catch((error) => say(error.message, "error"));
  });
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));
  $("split").addEventListener("input", (event) => {
    $("compare").style.setProperty("--split", `${event.target.value}%`);
  });
  $("token").value = state.token;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("promptpaint-token", state.token);
    $("token-form").hidden = true;
    loadModels();
  });
  window.addEventListener("resize", () => { fitStage(); fitCompare(); });
  bindBrush();
}

async function loadModels() {
  try {
    const info = await json("/v1/models");
    const short = (name) => name.replace(/\/+$/, "").split("/").pop();
    $("models").textContent = Object.entries(info.loaded).map(([role, name]) => `${role} ${short(name)}`).join(" · ")
      + ` · ${info.device}`;
    $("models").title = Object.entries(info.loaded).map(([role, name]) => `${role}: ${name}`).join("\n");
  } catch (error) {
    say(error.status === 401 ? "This server needs a token: enter it at the top right." : error.message, "error");
  }
}

bindControls();
loadModels();
say("Open a photo to start.");
