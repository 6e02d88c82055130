// Edits: the operation buttons and their options, running an edit as a job (progress, ETA,
// live preview, cancel), the before/after view, and the history of results (gallery.js).
"use strict";

import { api, getJson, pngBlob, postForm, sleep, warnings } from "./api.js";
import { addItem, clearItems, deleteItem, getItem, listItems, thumbnail } from "./gallery.js";
import { OptionForm, loadOperations } from "./operations.js";
import { maskBlob, pickFor, selectionOptions } from "./selection.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;
const PREVIEW_EVERY = 4;  // steps between live previews
const PREVIEW_KEY = "promptpaint-live-preview";

export class Editor {
  /** ctx: {page, say, openPhoto, withImage, onOpChange} from app.js. */
  constructor(ctx) {
    Object.assign(this, ctx);
    this.ops = [];
    this.form = new OptionForm($("op-options"));
    this.job = null;       // id of the running job
    this.shown = null;     // what the result view shows: {item, variant}
    this.urls = [];        // object URLs of the result view, revoked when it changes
    this._bind();
  }

  async start(models) {
    // Model options of the edit (the selection's detector and segmenter are the Select card's).
    const { detector, segmenter, ...painters } = models.allowed;
    this.form.models = painters;
    this.ops = await loadOperations();
    const group = $("ops");
    group.innerHTML = "";
    for (const op of this.ops) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: op.label, title: op.hint });
      button.dataset.op = op.name;
      button.dataset.testid = `op-${op.name}`;
      button.addEventListener("click", () => this.chooseOp(op.name));
      group.append(button);
    }
    this.chooseOp(this.page.op ? this.page.op.name : this.ops[0].name);
    await this.renderHistory();
  }

  chooseOp(name) {
    const op = this.ops.find((o) => o.name === name) || this.ops[0];
    this.page.op = op;
    $("ops").querySelectorAll("button").forEach((b) => {
      b.classList.toggle("on", b.dataset.op === op.name);
      b.setAttribute("aria-pressed", String(b.dataset.op === op.name));
    });
    this.form.render(op);
    $("select-card").classList.toggle("inactive", !op.selects);
    $("toolbar").classList.toggle("inactive", !op.selects);
    this.onOpChange(op);
  }

  // ---------------------------------------------------------------------------- the request
  /** The options and files of the edit the user set up; the server does all the mask algebra. */
  async request() {
    const { page } = this;
    const op = page.op;
    const options = { ...this.form.options(), op: op.op };
    const files = {};
    let sentMask = null;
    if (op.selects) {
      const state = page.undo.current;
      // New background names what it keeps by words; kept points or strokes go as a mask.
      const text = page.base && !state.strokes.length && (!op.keep || state.find);
      if (text) {
        // Replayable from words: the server finds the same selection again.
        Object.assign(options, selectionOptions(state));
        const pick = pickFor(page.base.data.instances, state.off);
        if (pick === "") throw new Error("Every instance is switched off: select something first.");
        if (pick !== null) options.pick = pick;
      } else {
        if (!page.area) throw new Error("Select something first: click it, find it by name or paint it.");
        sentMask = await maskBlob(page.mask);
        files.mask = [sentMask, "selection.png"];
      }
      if (op.keep) {
        // New background: what was selected is kept; the server inverts it.
        options.keep = options.find || "selection";
        delete options.find;
      }
      for (const key of ["dilate", "feather"]) if (state[key] !== null) options[key] = state[key];
    }
    return { options, files, sentMask };
  }

  async run() {
    const { page } = this;
    if (!page.image) return this.say("Open a photo first.", "error");
    if (this.job) return;
    let req;
    try {
      req = await this.request();
    } catch (error) {
      return this.say(error.message, "error");
    }
    const source = { file: page.image.file, name: page.image.name, parent: page.image.parent };
    this.setRunning(true);
    try {
      const previews = $("preview-toggle").checked ? PREVIEW_EVERY : 0;
      const job = await this.withImage((id) => postForm(`/v1/jobs?previews=${previews}`,
        { image_id: id, options: req.options }, req.files));
      this.job = job.id;
      const done = await this.poll(job.id);
      if (done.status === "done") {
        const item = await this.keep(done.result, source, req);
        await this.showItem(item, 0);
        const seconds = (done.finished - done.started).toFixed(1);
        const noted = warnings(done.result);
        this.say(`Done in ${seconds} s · seed ${done.result.variants[0].seed}.${noted}`, noted ? "warn" : "");
      } else if (done.status === "cancelled") {
        this.say(`Edit cancelled at step ${done.progress.step} of ${done.progress.steps}.`);
      } else {
        this.say(done.error ? done.error.detail : "The edit failed.", "error");
      }
    } catch (error) {
      this.say(error.message, "error");
    } finally {
      this.job = null;
      this.setRunning(false);
    }
  }

  async poll(id) {
    const timing = { step: null, at: 0, rate: null };
    let previewVersion = null;
    for (;;) {
      const job = await getJson(`/v1/jobs/${id}`);
      if (!["queued", "running"].includes(job.status)) return job;
      const { step, steps, pass } = job.progress;
      let text;
      if (job.status === "queued") {
        text = `Waiting in the queue (position ${job.position})…`;
      } else if (!steps) {
        text = "Preparing…";
      } else {
        text = `${pass > 1 ? `Window ${pass} · ` : ""}Step ${step} of ${steps}`;
        const eta = job.progress.eta_s ?? this.eta(timing, step, steps);
        if (eta !== null) text += ` · about ${Math.max(0, Math.round(eta))} s left`;
      }
      $("progress-text").textContent = text;
      $("bar").style.width = steps ? `${(100 * step) / steps}%` : "3%";
      if (job.preview && job.preview.version !== previewVersion) {
        previewVersion = job.preview.version;
        this.showPreview(id, job.preview).catch(() => {});
      }
      await sleep(POLL_MS);
    }
  }

  /** Seconds left in this pass, from the pace of the steps seen so far (when the server gives none). */
  eta(timing, step, steps) {
    const now = performance.now();
    if (timing.step === null || step < timing.step) Object.assign(timing, { step, at: now, rate: null });
    else if (step > timing.step) {
      const rate = (now - timing.at) / (step - timing.step);
      timing.rate = timing.rate === null ? rate : 0.7 * timing.rate + 0.3 * rate;
      Object.assign(timing, { step, at: now });
    }
    return timing.rate === null ? null : ((steps - step) * timing.rate) / 1000;
  }

  /** The newest picture of the window being generated, beside the photo while the edit runs. */
  async showPreview(id, preview) {
    const blob = await (await api(preview.url || `/v1/jobs/${id}/preview`)).blob();
    if (this.job !== id) return;  // the run ended meanwhile
    const img = $("preview");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(blob);
    $("preview-caption").textContent = `live preview · step ${preview.step}`;
    $("live-preview").hidden = false;
    this.showView("select");
  }

  cancel() {
    if (this.job) api(`/v1/jobs/${this.job}`, { method: "DELETE" }).catch((error) => this.say(error.message, "error"));
  }

  setRunning(running) {
    $("run").disabled = running;
    $("run").textContent = running ? "Working…" : "Run edit";
    $("cancel").hidden = !running;
    $("progress").hidden = !running;
    $("bar").style.width = "0";
    $("progress-text").textContent = running ? "Starting…" : "";
    if (!running) $("live-preview").hidden = true;
    if (running) this.say("Editing…", "busy");
  }

  // ---------------------------------------------------------------------------- results and history
  /** Keep a result in the history (IndexedDB) with what is needed to replay or continue it. */
  async keep(result, source, req) {
    const variants = await Promise.all(result.variants.map(async (v) => ({
      png: await pngBlob(v.image_png), seed: v.seed, recipe: v.recipe })));
    const item = {
      time: Date.now(), op: this.page.op.name, opLabel: this.page.op.label,
      prompt: req.options.prompt || "", seed: result.variants[0].seed, width: result.width, height: result.height,
      name: source.name, source: source.file, parent: source.parent, sentMask: req.sentMask,
      mask: await pngBlob(result.mask_png), offset: (result.info && result.info.offset) || [0, 0],
      variants, thumb: await thumbnail(variants[0].png),
    };
    item.id = await addItem(item);
    await this.renderHistory(item.id);
    return item;
  }

  async renderHistory(selected = this.shown && this.shown.item.id) {
    const items = await listItems();
    const list = $("history");
    list.innerHTML = "";
    items.forEach((item, i) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.testid = `history-${i}`;
      button.dataset.id = item.id;
      button.classList.toggle("on", item.id === selected);
      const img = Object.assign(document.createElement("img"), { alt: `${item.opLabel} result` });
      img.src = URL.createObjectURL(item.thumb);
      img.onload = () => URL.revokeObjectURL(img.src);
      const when = new Date(item.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      const caption = document.createElement("span");
      caption.className = "caption";
      caption.innerHTML = "<b></b><small></small>";
      caption.firstChild.textContent = item.opLabel + (item.prompt ? ` · ${item.prompt}` : "");
      caption.lastChild.textContent = `seed ${item.seed} · ${when}`;
      button.title = `${item.opLabel}${item.prompt ? `: ${item.prompt}` : ""}\nseed ${item.seed}, ${new Date(item.time).toLocaleString()}`;
      button.append(img, caption);
      button.addEventListener("click", async () => this.showItem(await getItem(item.id), 0));
      li.append(button);
      list.append(li);
    });
    $("history-empty").hidden = items.length > 0;
    $("history-actions").hidden = !items.some((item) => item.id === selected);
  }

  async showItem(item, variant) {
    this.shown = { item, variant };
    this.urls.forEach((url) => URL.revokeObjectURL(url));
    this.urls = [];
    const url = (blob) => { const u = URL.createObjectURL(blob); this.urls.push(u); return u; };
    $("before").src = url(item.source);
    const strip = $("variant-strip");
    strip.innerHTML = "";
    if (item.variants.length > 1) {
      item.variants.forEach((v, i) => {
        const button = document.createElement("button");
        button.dataset.testid = `variant-${i}`;
        button.innerHTML = `<img alt="variant ${i + 1}"><span title="seed"></span>`;
        button.firstChild.src = url(v.png);
        button.lastChild.textContent = v.seed;
        button.addEventListener("click", () => this.chooseVariant(i));
        strip.append(button);
      });
    }
    Object.assign($("dl-mask"), { href: url(item.mask), download: `${item.name}.mask.png` });
    $("dl-selection").hidden = !item.sentMask;
    if (item.sentMask) Object.assign($("dl-selection"), { href: url(item.sentMask), download: "selection.png" });
    this.chooseVariant(variant);
    $("result-tab").disabled = false;
    this.showView("result");
    await this.renderHistory(item.id);
  }

  chooseVariant(index) {
    const { item } = this.shown;
    const variant = item.variants[index];
    this.shown.variant = index;
    const href = URL.createObjectURL(variant.png);
    this.urls.push(href);
    $("after").src = href;
    [...$("variant-strip").children].forEach((button, i) => button.classList.toggle("on", i === index));
    Object.assign($("dl-result"), { href, download: `${item.name}.${item.op}.png` });
    this.recipeLink($("dl-recipe"), item, variant);
    this.recipeLink($("history-recipe"), item, variant);
    this.fitCompare();
  }

  /** The recipe of a result, with the edits of the results it continued from before it, so
   * that `promptpaint run FIRST_PHOTO recipe.json` replays the whole chain. */
  async recipeLink(link, item, variant) {
    const edits = [...variant.recipe.edits];
    for (let parent = item.parent; parent;) {
      const earlier = await getItem(parent);
      if (!earlier) break;
      edits.unshift(...earlier.variants[0].recipe.edits);
      parent = earlier.parent;
    }
    const blob = new Blob([JSON.stringify({ edits }, null, 2)], { type: "application/json" });
    const href = URL.createObjectURL(blob);
    this.urls.push(href);
    Object.assign(link, { href, download: `${item.name}.recipe.json` });
  }

  fitCompare() {
    const shown = this.shown;
    if (!shown) return;
    const { item } = shown;
    const view = $("view-result");
    const width = view.clientWidth - 32;
    const height = view.clientHeight - 16 - 76;
    if (width <= 0 || height <= 0) return;
    const scale = Math.min(width / item.width, height / item.height, 4);
    Object.assign($("compare").style, { width: `${Math.floor(item.width * scale)}px`, height: `${Math.floor(item.height * scale)}px` });
    // The original sits where the edit put it (outpainting grows the canvas around it).
    const before = $("before");
    const place = () => {
      const [ox, oy] = item.offset;
      const w = before.naturalWidth || item.width;
      const h = before.naturalHeight || item.height;
      Object.assign(before.style, { left: `${(100 * ox) / item.width}%`, top: `${(100 * oy) / item.height}%`,
        width: `${(100 * w) / item.width}%`, height: `${(100 * h) / item.height}%` });
    };
    if (before.complete) place();
    else before.onload = place;
  }

  async continueFrom() {
    const { item, variant } = this.shown;
    const file = new File([item.variants[variant].png], `${item.name}.${item.op}.png`, { type: "image/png" });
    await this.openPhoto(file, { name: `${item.name}.${item.op}.png`, parent: item.id });
    this.say(`Continuing from the ${item.opLabel.toLowerCase()} result: select and edit again.`);
  }

  /** Run the result's recipe again on its own input, and say whether the pixels match. */
  async replay() {
    const { item, variant } = this.shown;
    const chosen = item.variants[variant];
    const options = { ...chosen.recipe.edits[chosen.recipe.edits.length - 1] };
    const files = {};
    if (options.mask !== undefined) {  // a hand-made mask: sent again as the upload it was
      delete options.mask;
      files.mask = [item.sentMask, "selection.png"];
    }
    this.setRunning(true);
    try {
      const upload = await postForm("/v1/images", {}, { image: [item.source, "image.png"] });
      const job = await postForm("/v1/jobs", { image_id: upload.image_id, options }, files);
      this.job = job.id;
      const done = await this.poll(job.id);
      if (done.status !== "done") throw new Error(done.error ? done.error.detail : `replay ${done.status}`);
      const again = await pngBlob(done.result.variants[0].image_png);
      const differing = await differentPixels(again, chosen.png);
      this.say(differing === 0 ? "Replay matches the kept result pixel for pixel."
        : `Replay differs from the kept result in ${differing.toLocaleString()} pixels.`, differing ? "error" : "");
      $("status").dataset.replay = differing === 0 ? "same" : "different";
    } catch (error) {
      this.say(`Replay failed: ${error.message}`, "error");
    } finally {
      this.job = null;
      this.setRunning(false);
    }
  }

  async copyResult() {
    if (!this.shown) return this.say("No result to copy yet.");
    const { item, variant } = this.shown;
    try {
      await navigator.clipboard.write([new ClipboardItem({ "image/png": item.variants[variant].png })]);
      this.say("Result copied to the clipboard.");
    } catch (error) {
      this.say(`Could not copy: ${error.message}`, "error");
    }
  }

  holdOriginal(on) {
    $("compare").classList.toggle("original", on);
    $("tint").classList.toggle("hidden", on);
    $("overlay").classList.toggle("hidden", on);
  }

  showView(name) {
    $("view-select").hidden = name !== "select";
    $("view-result").hidden = name !== "result";
    document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("on", tab.dataset.view === name));
    $("legend").hidden = name !== "select";
    $("zoom").hidden = name !== "select";
    $("toolbar").hidden = name !== "select" || !this.page.image;
    if (name === "result") requestAnimationFrame(() => this.fitCompare());
  }

  _bind() {
    $("run").addEventListener("click", () => this.run());
    const toggle = $("preview-toggle");
    toggle.checked = localStorage.getItem(PREVIEW_KEY) !== "off";
    toggle.addEventListener("change", () => localStorage.setItem(PREVIEW_KEY, toggle.checked ? "on" : "off"));
    $("cancel").addEventListener("click", () => this.cancel());
    document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => this.showView(tab.dataset.view)));
    $("split").addEventListener("input", (event) => $("compare").style.setProperty("--split", `${event.target.value}%`));
    const hold = $("compare-hold");
    hold.addEventListener("pointerdown", (event) => { hold.setPointerCapture(event.pointerId); this.holdOriginal(true); });
    for (const type of ["pointerup", "pointercancel"]) hold.addEventListener(type, () => this.holdOriginal(false));
    $("copy-result").addEventListener("click", () => this.copyResult());
    $("history-continue").addEventListener("click", () => this.continueFrom());
    $("history-replay").addEventListener("click", () => this.replay());
    $("history-delete").addEventListener("click", async () => {
      await deleteItem(this.shown.item.id);
      this.shown = null;
      $("result-tab").disabled = true;
      this.showView("select");
      await this.renderHistory();
    });
    $("history-clear").addEventListener("click", async () => {
      if (!window.confirm("Forget every kept result?")) return;
      await clearItems();
      this.shown = null;
      $("result-tab").disabled = true;
      this.showView("select");
      await this.renderHistory();
    });
    window.addEventListener("resize", () => this.fitCompare());
  }
}

async function pixels(blob) {
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const canvas = Object.assign(document.createElement("canvas"), { width: bitmap.width, height: bitmap.height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
}

/** How many pixels differ between two images (all of them if the sizes differ). */
async function differentPixels(a, b) {
  const [pa, pb] = await Promise.all([pixels(a), pixels(b)]);
  if (pa.width !== pb.width || pa.height !== pb.height) return Math.max(pa.width * pa.height, pb.width * pb.height);
  let count = 0;
  for (let i = 0; i < pa.data.length; i += 4) {
    if (pa.data[i] !== pb.data[i] || pa.data[i + 1] !== pb.data[i + 1] || pa.data[i + 2] !== pb.data[i + 2]
      || pa.data[i + 3] !== pb.data[i + 3]) count += 1;
  }
  return count;
}

