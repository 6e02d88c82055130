// The selection: what the user chose (text, points, instance toggles, brush strokes, sliders) as
// one immutable state, and how it becomes a mask. The server does every piece of mask algebra
// (segmentation, exclude, pick, growth, the inversion of "new background"); the page only adds
// the brush strokes on top, because those exist nowhere but here.
"use strict";

import { api, form, pngBlob, postForm } from "./api.js";

/** What "nothing chosen yet" looks like; `null` means "not given": the server's default applies. */
export const EMPTY_SELECTION = Object.freeze({
  find: "", exclude: "", box_threshold: null, text_threshold: null, dilate: null, feather: null,
  points: [], off: [], strokes: [],
});

/** The options of the selection as the API names them (without pick, which needs the instances). */
export function selectionOptions(state) {
  const options = {};
  if (state.find) options.find = state.find;
  if (state.exclude) options.exclude = state.exclude;
  for (const key of ["box_threshold", "text_threshold"]) if (state[key] !== null) options[key] = state[key];
  if (state.points.length) options.point = state.points.map((p) => [...p]);
  return options;
}

export const asksServer = (state) => Boolean(state.find || state.points.length);

/**
 * `pick` for the instances still switched on: `--pick` counts instances in score order (0 = best),
 * as the CLI documents it. Returns null when all are on (nothing to send) and "" when none is.
 */
export function pickFor(instances, off) {
  const offSet = new Set(off.filter((i) => i < instances.length));
  if (!offSet.size) return null;
  const order = instances.map((item, i) => i).sort((a, b) => instances[b].score - instances[a].score);
  const rank = new Map(order.map((index, position) => [index, position]));
  return instances.map((item, i) => i).filter((i) => !offSet.has(i)).map((i) => rank.get(i))
    .sort((a, b) => a - b).join(",");
}

// ---------------------------------------------------------------------------- server masks
const CACHE_SIZE = 40;

/** Masks from POST /v1/segment, remembered by request, so undo and redo redraw at once. */
export class MaskSource {
  constructor(withImage) {
    this.withImage = withImage;  // (imageId -> Promise) -> Promise: re-uploads an expired image
    this.cache = new Map();
  }

  clear() { this.cache.clear(); }

  get(imageId, options) {
    const key = `${imageId} ${JSON.stringify(options)}`;
    let entry = this.cache.get(key);
    if (!entry) {
      entry = options.find ? this._instances(options) : this._maskOnly(options);
      entry.catch(() => this.cache.delete(key));
      this.cache.set(key, entry);
      if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value);
    }
    return entry;
  }

  /** Words find instances: the JSON answer lists them (boxes, scores, masks) beside the mask. */
  async _instances(options) {
    const data = await this.withImage((id) => postForm("/v1/segment", { image_id: id, options }));
    return { data, canvas: await maskCanvas(await pngBlob(data.mask_png)) };
  }

  /** Points alone make one object: only its mask is needed, the lightest answer (a PNG). */
  async _maskOnly(options) {
    const response = await this.withImage((id) => api("/v1/segment?format=png",
      { method: "POST", body: form({ image_id: id, options }) }));
    return { data: { instances: [], excluded: [] }, canvas: await maskCanvas(await response.blob()) };
  }
}

/** A grayscale mask PNG (255 = selected) as a white-on-transparent canvas. */
export async function maskCanvas(blob) {
  const bitmap = await createImageBitmap(blob);
  const { width, height } = bitmap;
  const canvas = Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const pixels = ctx.getImageData(0, 0, width, height);
  const d = pixels.data;
  for (let i = 0; i < d.length; i += 4) {
    d[i + 3] = d[i] > 127 ? 255 : 0;
    d[i] = d[i + 1] = d[i + 2] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

// ---------------------------------------------------------------------------- composing
/** Draw one brush stroke ({mode, size, points: [x0, y0, x1, y1, ...]} in image pixels). */
export function drawStroke(ctx, stroke, from = 0) {
  const p = stroke.points;
  ctx.save();
  ctx.globalCompositeOperation = stroke.mode === "erase" ? "destination-out" : "source-over";
  ctx.strokeStyle = "#fff";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = stroke.size;
  ctx.beginPath();
  const start = Math.max(0, from - 2);
  ctx.moveTo(p[start], p[start + 1]);
  if (p.length - start <= 2) ctx.lineTo(p[start] + 0.01, p[start + 1]);  // a dot
  for (let i = start + 2; i < p.length; i += 2) ctx.lineTo(p[i], p[i + 1]);
  ctx.stroke();
  ctx.restore();
}

/**
 * The final mask into `target` (white = selected): the server's mask, then the strokes in order.
 * Edges are made binary (a pixel is in or out, as the server reads an uploaded mask).
 * Returns the number of selected pixels.
 */
export function compose(target, base, strokes) {
  const ctx = target.getContext("2d", { willReadFrequently: true });
  ctx.clearRect(0, 0, target.width, target.height);
  if (base) ctx.drawImage(base, 0, 0);
  for (const stroke of strokes) drawStroke(ctx, stroke);
  const pixels = ctx.getImageData(0, 0, target.width, target.height);
  const d = pixels.data;
  let area = 0;
  for (let i = 3; i < d.length; i += 4) {
    const on = d[i] > 127;
    d[i] = on ? 255 : 0;
    area += on;
  }
  if (strokes.length) ctx.putImageData(pixels, 0, 0);
  return area;
}

/** The mask as an opaque black/white PNG, the format every mask reader agrees on. */
export function maskBlob(mask) {
  const out = Object.assign(document.createElement("canvas"), { width: mask.width, height: mask.height });
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(mask, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

// ---------------------------------------------------------------------------- instance masks
/** Counts of a compressed COCO RLE string (pycocotools' rleFrString). */
function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = 1;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/**
 * The part of an instance's mask (COCO RLE, column-major) inside the window [x0, x1) x [y0, y1),
 * as an alpha array of the window's size (255 = in the instance).
 */
export function rleWindow(rle, x0, y0, x1, y1) {
  const [height] = rle.size;
  const w = x1 - x0;
  const alpha = new Uint8ClampedArray(w * (y1 - y0));
  let index = 0;
  rleCounts(rle.counts).forEach((run, i) => {
    if (i % 2 === 1) {  // runs alternate: background first, then the instance
      for (let col = Math.floor(index / height), end = index + run; col * height < end; col += 1) {
        if (col < x0 || col >= x1) continue;
        const from = Math.max(index, col * height) - col * height;
        const to = Math.min(end, (col + 1) * height) - col * height;
        for (let row = Math.max(from, y0); row < Math.min(to, y1); row += 1) alpha[(row - y0) * w + (col - x0)] = 255;
      }
    }
    index += run;
  });
  return alpha;
}
