// promptpaint's page: a plain client of the /v1 API (the same calls any other service makes).
// The photo is uploaded once (POST /v1/images) and then referred to by its image_id, so a click or
// a slider re-runs only the cheap part of segmentation on the server (the embedding is cached).
// This module holds the photo, the selection and its tools; edit.js runs edits and keeps history.
"use strict";

import { ApiError, api, auth, getJson, postForm, warnings } from "./api.js";
import { Editor } from "./edit.js";
import { EMPTY_SELECTION, MaskSource, asksServer, compose, drawStroke, pickFor, rleWindow,
  selectionOptions } from "./selection.js";
import { bindShortcuts, renderShortcutList } from "./shortcuts.js";
import { UndoStack } from "./undo.js";
import { Viewport } from "./viewport.js";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#ffc400", "#00c8ff", "#78ff5a", "#ff5a5a", "#c878ff", "#ffffff"];
const TINT = { select: "rgba(255, 64, 160, 0.55)", keep: "rgba(40, 200, 190, 0.5)" };
const SLIDERS = { box_threshold: 0.3, text_threshold: 0.25, dilate: 0, feather: 0 };  // shown while "auto"
const LIVE_DELAY_MS = 120;

export const page = {
  image: null,          // {id, width, height, name, file, bitmap, parent}
  tool: "point",
  negative: false,      // the touch toggle: next clicks add negative points
  undo: new UndoStack(EMPTY_SELECTION),
  shown: EMPTY_SELECTION, // the state drawn now (the current one, or a slider being dragged)
  base: null,           // the server's answer for the current selection (all instances)
  mask: document.createElement("canvas"),  // the final selection at image size, white = selected
  area: 0,
  hits: [],             // instance label chips on screen, for clicks
  op: null,             // the chosen operation (edit.js)
};

export function say(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

// ------------------------------------------------------------------------------------ the photo
export async function openPhoto(file, { name, parent = null } = {}) {
  if (!file || !file.type.startsWith("image/")) return say("That is not an image file.", "error");
  const shown = name || file.name || "pasted image";
  say(`Uploading ${shown}…`, "busy");
  try {
    const info = await postForm("/v1/images", {}, { image: [file, file.name || "image.png"] });
    let bitmap = await createImageBitmap(file).catch(() => null);
    if (!bitmap || bitmap.width !== info.width || bitmap.height !== info.height) {
      // Show exactly what the server decoded (EXIF rotation, CMYK, 16-bit...).
      bitmap = await createImageBitmap(await (await api(`/v1/images/${info.image_id}`)).blob());
    }
    const stem = shown.replace(/\.[^.]+$/, "") || "image";
    page.image = { id: info.image_id, width: info.width, height: info.height, name: stem, file, bitmap, parent };
    for (const canvas of [$("photo"), $("tint"), page.mask]) Object.assign(canvas, { width: info.width, height: info.height });
    $("photo").getContext("2d").drawImage(bitmap, 0, 0);
    $("image-meta").textContent = `${shown} · ${info.width}×${info.height}`;
    $("drop").classList.add("compact");
    $("drop-text").innerHTML = "Drop, paste or <u>choose</u> another photo";
    $("empty").hidden = true;
    $("viewport").hidden = false;
    $("toolbar").hidden = false;
    masks.clear();
    // A new photo keeps the words and sliders, not the points, strokes or instance choices.
    const { find, exclude, box_threshold, text_threshold, dilate, feather } = page.undo.current;
    page.undo.reset(Object.freeze({ ...EMPTY_SELECTION, find, exclude, box_threshold, text_threshold, dilate, feather }));
    editor.showView("select");
    viewport.setImage(info.width, info.height);
    await showSelection();
    if (!asksServer(page.undo.current)) say("Photo ready. Click what to select, type what to find, or paint with the brush.");
  } catch (error) {
    say(`Upload failed: ${error.message}`, "error");
  }
}

/** Run `call(imageId)`; if the server forgot the photo (a small LRU), upload it again and retry. */
export async function withImage(call) {
  try {
    return await call(page.image.id);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404 || !page.image) throw error;
    const info = await postForm("/v1/images", {}, { image: [page.image.file, "image.png"] });
    page.image.id = info.image_id;
    return call(page.image.id);
  }
}

const masks = new MaskSource(withImage);

// ------------------------------------------------------------------------------------ selection state
/** Record a change of the selection (one undo step) and show it. */
export function change(update) {
  const current = page.undo.current;
  const typed = { find: $("find").value.trim(), exclude: $("exclude").value.trim() };
  const next = { ...current, ...typed, ...update };
  if (next.find !== current.find || next.exclude !== current.exclude) next.off = update.off || [];
  if (page.undo.push(Object.freeze(next))) showSelection();
  updateUndoButtons();
}

export function undo() {
  if (!page.undo.canUndo) return;
  page.undo.undo();
  showSelection();
  updateUndoButtons();
}

export function redo() {
  if (!page.undo.canRedo) return;
  page.undo.redo();
  showSelection();
  updateUndoButtons();
}

function updateUndoButtons() {
  $("undo").disabled = !page.undo.canUndo;
  $("redo").disabled = !page.undo.canRedo;
}

let generation = 0;

/** Ask the server for the mask of `state` (cached), add the strokes, count, draw. */
async function showSelection(state = page.undo.current) {
  const mine = ++generation;
  page.shown = state;
  syncControls(state);
  $("area").dataset.state = "busy";
  let base = null;
  let failed = null;
  const started = performance.now();
  if (page.image && asksServer(state)) {
    try {
      const all = await masks.get(page.image.id, selectionOptions(state));
      if (mine !== generation) return;
      page.base = all;
      base = all.canvas;
      const pick = pickFor(all.data.instances, state.off);
      if (pick === "") base = null;  // every instance switched off
      else if (pick !== null) base = (await masks.get(page.image.id, { ...selectionOptions(state), pick })).canvas;
      if (mine !== generation) return;
    } catch (error) {
      if (mine !== generation) return;
      page.base = null;
      failed = error;
    }
  } else {
    page.base = null;
  }
  if (!page.image) return;
  page.area = compose(page.mask, base, state.strokes);
  $("area").textContent = String(page.area);
  renderTint();
  renderInstances();
  viewport.redraw();
  $("area").dataset.state = "ready";
  if (failed) say(failed.message, "error");
  else if (page.base) {
    const n = page.base.data.instances.length;
    const found = state.find ? `${n} instance${n === 1 ? "" : "s"}, ` : "";
    const noted = warnings(page.base.data);
    say(`${found}${page.area.toLocaleString()} px selected (${Math.round(performance.now() - started)} ms).${noted}`,
      noted ? "warn" : "");
  }
}

function syncControls(state) {
  if (document.activeElement !== $("find")) $("find").value = state.find;
  if (document.activeElement !== $("exclude")) $("exclude").value = state.exclude;
  for (const key of Object.keys(SLIDERS)) {
    const input = $(key.replace("_", "-"));
    input.value = state[key] ?? SLIDERS[key];
    $(`${input.id}-out`).textContent = state[key] ?? "auto";
  }
}

// ------------------------------------------------------------------------------------ drawing
export function renderTint() {
  const tint = $("tint").getContext("2d");
  tint.clearRect(0, 0, tint.canvas.width, tint.canvas.height);
  const legend = $("legend");
  legend.innerHTML = "";
  if (!page.image || !page.op || !page.op.selects) return;
  const keep = page.op.keep;
  tint.drawImage(page.mask, 0, 0);
  tint.globalCompositeOperation = "source-in";
  tint.fillStyle = keep ? TINT.keep : TINT.select;
  tint.fillRect(0, 0, tint.canvas.width, tint.canvas.height);
  tint.globalCompositeOperation = "source-over";
  const what = keep ? "kept (the rest is repainted)" : "selected";
  legend.innerHTML = `<span><i style="background:${keep ? TINT.keep : TINT.select}"></i>${what}</span>`;
}

function drawOverlay(ctx, view) {
  page.hits = [];
  const state = page.shown;
  if (page.base && page.op && page.op.selects) {
    ctx.font = "600 12px system-ui, sans-serif";
    const off = new Set(state.off);
    const draw = (item, colour, style, index) => {
      const [x0, y0, x1, y1] = item.box;
      const a = view.toElement(x0, y0);
      const b = view.toElement(x1, y1);
      ctx.setLineDash(style === "on" ? [] : [6, 4]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = colour;
      ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
      const text = `${style === "excluded" ? "− " : ""}${item.label} ${item.score.toFixed(2)}`;
      const w = ctx.measureText(text).width + 10;
      const top = Math.max(a.y - 18, 0);
      ctx.setLineDash([]);
      ctx.fillStyle = colour;
      ctx.fillRect(a.x, top, w, 18);
      ctx.fillStyle = "#000";
      ctx.fillText(text, a.x + 5, top + 13);
      if (index !== null) page.hits.push({ index, x: a.x, y: top, w, h: 18, box: [a.x, a.y, b.x, b.y] });
    };
    page.base.data.instances.forEach((item, i) => draw(item, off.has(i) ? "#8a8fa3" : COLOURS[i % COLOURS.length],
      off.has(i) ? "off" : "on", i));
    page.base.data.excluded.forEach((item) => draw(item, "#ff3c3c", "excluded", null));
  }
  for (const [x, y, positive] of state.points) {
    const p = view.toElement(x + 0.5, y + 0.5);
    ctx.beginPath();
    ctx.arc(p.x, p.y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = positive ? "#19d27a" : "#ed3137";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
  if (view.hover && page.tool !== "point") {
    const size = Number($("brush-size").value) * view.scale;
    ctx.beginPath();
    ctx.arc(view.hover.x, view.hover.y, size / 2, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.6)";
    ctx.stroke();
  }
}

/** The instance whose label chip or outline is at element position (x, y), if any. */
function instanceAt(x, y) {
  const near = 5;
  const hits = [...page.hits].reverse();  // the last drawn is on top
  for (const hit of hits) {
    if (x >= hit.x && x <= hit.x + hit.w && y >= hit.y && y <= hit.y + hit.h) return hit.index;
  }
  for (const hit of hits) {
    const [x0, y0, x1, y1] = hit.box;
    const inside = x > x0 - near && x < x1 + near && y > y0 - near && y < y1 + near;
    const onEdge = Math.min(Math.abs(x - x0), Math.abs(x - x1), Math.abs(y - y0), Math.abs(y - y1)) <= near;
    if (inside && onEdge) return hit.index;
  }
  return null;
}

export function toggleInstance(index) {
  const off = new Set(page.undo.current.off);
  if (off.has(index)) off.delete(index);
  else off.add(index);
  change({ off: [...off].sort((a, b) => a - b) });
}

function renderInstances() {
  const list = $("instances");
  list.innerHTML = "";
  if (!page.base) return;
  const off = new Set(page.shown.off);
  const { instances, excluded } = page.base.data;
  instances.forEach((item, i) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = `instance-${i}`;
    button.setAttribute("aria-pressed", String(!off.has(i)));
    button.title = off.has(i) ? "switched off: click to add it back" : "click to leave it out";
    button.append(instanceThumb(item, COLOURS[i % COLOURS.length]));
    const text = document.createElement("span");
    text.className = "what";
    text.innerHTML = `<b></b><small></small>`;
    text.firstChild.textContent = item.label;
    text.lastChild.textContent = `${item.score.toFixed(2)} · ${(item.area ?? 0).toLocaleString()} px`;
    button.append(text);
    button.addEventListener("click", () => toggleInstance(i));
    li.append(button);
    list.append(li);
  });
  excluded.forEach((item, i) => {
    const li = document.createElement("li");
    li.className = "excluded";
    li.dataset.testid = `excluded-${i}`;
    li.append(instanceThumb(item, "#ff3c3c"));
    li.append(Object.assign(document.createElement("span"), { className: "what", textContent: `− ${item.label} (excluded)` }));
    list.append(li);
  });
}

const THUMB = 44;

/** The photo around an instance's box, its own pixels tinted. */
function instanceThumb(item, colour) {
  const canvas = Object.assign(document.createElement("canvas"), { width: THUMB, height: THUMB });
  canvas.className = "thumb";
  const { width, height } = page.image;
  let [x0, y0, x1, y1] = item.box.map(Math.round);
  const pad = Math.round(0.1 * Math.max(x1 - x0, y1 - y0));
  x0 = Math.max(0, x0 - pad); y0 = Math.max(0, y0 - pad);
  x1 = Math.min(width, Math.max(x1 + pad, x0 + 1)); y1 = Math.min(height, Math.max(y1 + pad, y0 + 1));
  const w = x1 - x0;
  const h = y1 - y0;
  const ctx = canvas.getContext("2d");
  const scale = Math.min(THUMB / w, THUMB / h);
  const dx = (THUMB - w * scale) / 2;
  const dy = (THUMB - h * scale) / 2;
  ctx.drawImage(page.image.bitmap, x0, y0, w, h, dx, dy, w * scale, h * scale);
  if (item.rle) {
    const alpha = rleWindow(item.rle, x0, y0, x1, y1);
    const layer = new ImageData(w, h);
    const [r, g, b] = [1, 3, 5].map((k) => parseInt(colour.slice(k, k + 2), 16));
    for (let i = 0; i < alpha.length; i += 1) {
      if (!alpha[i]) continue;
      layer.data.set([r, g, b, 140], i * 4);
    }
    const tmp = Object.assign(document.createElement("canvas"), { width: w, height: h });
    tmp.getContext("2d").putImageData(layer, 0, 0);
    ctx.drawImage(tmp, dx, dy, w * scale, h * scale);
  }
  return canvas;
}

// ------------------------------------------------------------------------------------ tools
function setTool(tool) {
  page.tool = tool;
  document.querySelectorAll("#tools button").forEach((b) => b.classList.toggle("on", b.dataset.tool === tool));
  $("viewport").dataset.tool = tool;
  viewport.redraw();
}

const tools = {
  /** A press on the photo: the brush starts a stroke; the click tool waits for the click. */
  press(pt, event) {
    if (!page.image || page.tool === "point" || !page.op || !page.op.selects) return null;
    if (event.pointerType === "mouse" && event.button !== 0) return null;
    const stroke = { mode: page.tool === "erase" ? "erase" : "add", size: Number($("brush-size").value), points: [pt.x, pt.y] };
    const ctx = page.mask.getContext("2d");
    drawStroke(ctx, stroke);
    renderTint();
    return {
      move(p) {
        stroke.points.push(p.x, p.y);
        drawStroke(ctx, stroke, stroke.points.length - 2);
        renderTint();
      },
      end() { change({ strokes: [...page.undo.current.strokes, Object.freeze(stroke)] }); },
      cancel() { showSelection(); },  // drop the stroke: redraw what the state says
    };
  },

  /** A click without a drag: on an instance's label or outline, toggle it; elsewhere, a point. */
  click(pt, event) {
    if (!page.image || page.tool !== "point" || !page.op || !page.op.selects) return;
    const rect = $("viewport").getBoundingClientRect();
    const hit = instanceAt(event.clientX - rect.left, event.clientY - rect.top);
    if (hit !== null) return toggleInstance(hit);
    const x = Math.floor(pt.x);
    const y = Math.floor(pt.y);
    if (x < 0 || y < 0 || x >= page.image.width || y >= page.image.height) return;
    const label = event.shiftKey || page.negative ? 0 : 1;
    change({ points: [...page.undo.current.points, [x, y, label]] });
  },
};

const viewport = new Viewport({
  element: $("viewport"), board: $("board"), overlay: $("overlay"), tool: tools, draw: drawOverlay,
  onChange: (view) => { $("zoom-level").textContent = `${Math.round(view.scale * 100)}%`; },
});

function resizeBrush(factor) {
  const input = $("brush-size");
  input.value = Math.round(Math.min(Number(input.max), Math.max(Number(input.min), Number(input.value) * factor)));
  $("brush-size-out").textContent = input.value;
  viewport.redraw();
}

// ------------------------------------------------------------------------------------ controls
let liveTimer = 0;

function bindSelectControls() {
  const commitText = () => change({});
  $("find-button").addEventListener("click", commitText);
  for (const id of ["find", "exclude"]) {
    $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") commitText(); });
  }
  for (const key of Object.keys(SLIDERS)) {
    const input = $(key.replace("_", "-"));
    const value = () => (input.step === "1" ? parseInt(input.value, 10) : Number(input.value));
    input.addEventListener("input", () => {
      $(`${input.id}-out`).textContent = input.value;
      // While dragging, show the live value without recording it; the release records one step.
      clearTimeout(liveTimer);
      liveTimer = setTimeout(() => showSelection(Object.freeze({ ...page.undo.current, [key]: value() })), LIVE_DELAY_MS);
    });
    input.addEventListener("change", () => { clearTimeout(liveTimer); change({ [key]: value() }); });
    // Clicking the value puts the slider back to "auto" (the server's default).
    $(`${input.id}-out`).addEventListener("click", () => change({ [key]: null }));
    $(`${input.id}-out`).title = "click: back to auto (the server's default)";
  }
  $("tools").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) setTool(button.dataset.tool);
  });
  $("point-negative").addEventListener("click", () => {
    page.negative = !page.negative;
    $("point-negative").setAttribute("aria-pressed", String(page.negative));
    $("point-negative").classList.toggle("on", page.negative);
  });
  $("brush-size").addEventListener("input", () => { $("brush-size-out").textContent = $("brush-size").value; viewport.redraw(); });
  $("brush-size-out").textContent = $("brush-size").value;
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("clear-selection").addEventListener("click", () => change({ points: [], off: [], strokes: [] }));
  $("zoom-in").addEventListener("click", () => viewport.zoomStep(1));
  $("zoom-out").addEventListener("click", () => viewport.zoomStep(-1));
  $("zoom-level").addEventListener("click", () => viewport.zoomTo(1));
  $("zoom-fit").addEventListener("click", () => viewport.fit());
}

function bindPhotoInput() {
  $("file").addEventListener("change", (event) => openPhoto(event.target.files[0]));
  for (const target of [$("drop"), $("stage")]) {
    target.addEventListener("dragover", (event) => { event.preventDefault(); target.classList.add("over"); });
    target.addEventListener("dragleave", () => target.classList.remove("over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      target.classList.remove("over");
      openPhoto(event.dataTransfer.files[0]);
    });
  }
  window.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((entry) => entry.type.startsWith("image/"));
    if (item) { event.preventDefault(); openPhoto(item.getAsFile(), { name: "pasted image" }); }
  });
}

function bindToken() {
  auth.onUnauthorized = () => { $("token-form").hidden = false; };
  $("token").value = auth.token;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    auth.set($("token").value.trim());
    $("token-form").hidden = true;
    start();
  });
}

function bindKeys() {
  const dialog = $("shortcuts");
  const table = bindShortcuts({
    undo, redo,
    brushSmaller: () => resizeBrush(1 / 1.2),
    brushBigger: () => resizeBrush(1.2),
    fit: () => viewport.fit(),
    zoomIn: () => viewport.zoomStep(1),
    zoomOut: () => viewport.zoomStep(-1),
    zoom100: () => viewport.zoomTo(1),
    tool: setTool,
    run: () => editor.run(),
    copy: () => editor.copyResult(),
    holdOriginal: (on) => editor.holdOriginal(on),
    setSpace: (on) => { viewport.spaceHeld = on; $("viewport").classList.toggle("grab", on); },
    toggleHelp: () => (dialog.open ? dialog.close() : dialog.showModal()),
    closeHelp: () => { if (dialog.open) dialog.close(); },
  });
  renderShortcutList($("shortcut-list"), table);
  $("help-button").addEventListener("click", () => dialog.showModal());
}

async function loadModels() {
  const info = await getJson("/v1/models");
  const short = (name) => name.replace(/\/+$/, "").split("/").pop();
  $("models").textContent = Object.entries(info.loaded).map(([role, name]) => `${role} ${short(name)}`).join(" · ")
    + ` · ${info.device}`;
  $("models").title = Object.entries(info.loaded).map(([role, name]) => `${role}: ${name}`).join("\n");
  return info;
}

async function start() {
  try {
    const models = await loadModels();
    await editor.start(models);
  } catch (error) {
    say(error.status === 401 ? "This server needs a token: enter it at the top right." : error.message, "error");
  }
}

const editor = new Editor({ page, say, openPhoto, withImage, onOpChange: () => { renderTint(); renderInstances(); viewport.redraw(); } });

bindPhotoInput();
bindSelectControls();
bindToken();
bindKeys();
syncControls(page.undo.current);
setTool("point");
say("Open a photo to start.");
start();
