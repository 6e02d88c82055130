// Zoom and pan of the photo. The board (photo and tint canvases at the image's own size) is moved
// by one CSS transform, and every pointer position goes through toImage(), so a point or a brush
// stroke lands on the same image pixel at any zoom. Gestures handled here: wheel and pinch zoom
// around the pointer, Space+drag, middle-button drag and two-finger drag to pan. A press that is
// not a gesture goes to the active tool (points, brush).
"use strict";

const PRESETS = [0.05, 0.1, 0.25, 0.33, 0.5, 0.67, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32];
const MAX_SCALE = 32;
const FIT_MARGIN = 16;  // CSS px around the fitted photo
const DRAG_SLOP = 4;    // CSS px a press may move and still count as a click

export class Viewport {
  /**
   * element: the clipping container (receives the pointer events); board: the transformed layer;
   * overlay: a screen-sized canvas on top (boxes, points, cursor, drawn by `draw`);
   * tool: {press(pt, event) -> handler | null}; a handler has move(pt), end(pt), cancel().
   */
  constructor({ element, board, overlay, tool, draw, onChange }) {
    Object.assign(this, { element, board, overlay, tool, draw, onChange });
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.width = 0;
    this.height = 0;
    this.fitted = true;       // follow the container's size until the user zooms or pans
    this.spaceHeld = false;
    this.pointers = new Map(); // pointerId -> {x, y} in element coordinates
    this.gesture = null;       // {kind: "pan" | "pinch" | "tool" | "press", ...}
    this.hover = null;         // last pointer position over the photo (element coordinates)
    this._bind();
    new ResizeObserver(() => this._resized()).observe(element);
  }

  // ---------------------------------------------------------------- geometry
  setImage(width, height) {
    this.width = width;
    this.height = height;
    this.board.style.width = `${width}px`;
    this.board.style.height = `${height}px`;
    this.fit();
  }

  /** Image coordinates (pixels, fractional) of a client (page) position. */
  toImage(clientX, clientY) {
    const rect = this.element.getBoundingClientRect();
    return { x: (clientX - rect.left - this.x) / this.scale, y: (clientY - rect.top - this.y) / this.scale };
  }

  /** Element coordinates of an image position. */
  toElement(x, y) {
    return { x: this.x + x * this.scale, y: this.y + y * this.scale };
  }

  fitScale() {
    const w = this.element.clientWidth - 2 * FIT_MARGIN;
    const h = this.element.clientHeight - 2 * FIT_MARGIN;
    if (!this.width || w <= 0 || h <= 0) return 1;
    return Math.min(w / this.width, h / this.height, 4);
  }

  fit() {
    this.fitted = true;
    this._place(this.fitScale(), null);
  }

  /** Zoom to `scale` keeping the image point under (ex, ey) (element coordinates) in place. */
  zoomTo(scale, ex = this.element.clientWidth / 2, ey = this.element.clientHeight / 2) {
    this.fitted = false;
    const min = Math.min(this.fitScale(), 1) / 4;
    const next = Math.min(MAX_SCALE, Math.max(min, scale));
    const ix = (ex - this.x) / this.scale;
    const iy = (ey - this.y) / this.scale;
    this._place(next, { x: ex - ix * next, y: ey - iy * next });
  }

  zoomStep(direction) {
    const eps = 1e-6;
    const next = direction > 0 ? PRESETS.find((p) => p > this.scale + eps) : [...PRESETS].reverse().find((p) => p < this.scale - eps);
    this.zoomTo(next ?? this.scale);
  }

  panBy(dx, dy) {
    this.fitted = false;
    this._place(this.scale, { x: this.x + dx, y: this.y + dy });
  }

  _place(scale, origin) {
    this.scale = scale;
    if (origin) {
      this.x = origin.x;
      this.y = origin.y;
    } else {  // centred
      this.x = (this.element.clientWidth - this.width * scale) / 2;
      this.y = (this.element.clientHeight - this.height * scale) / 2;
    }
    this.board.style.transform = `translate(${this.x}px, ${this.y}px) scale(${scale})`;
    // Past 200% show true pixels: what the brush covers is then exactly what is drawn.
    this.board.classList.toggle("pixelated", scale >= 2);
    this.redraw();
    this.onChange(this);
  }

  _resized() {
    const dpr = window.devicePixelRatio || 1;
    this.overlay.width = Math.round(this.element.clientWidth * dpr);
    this.overlay.height = Math.round(this.element.clientHeight * dpr);
    if (this.fitted) this.fit();
    else this.redraw();
  }

  redraw() {
    const ctx = this.overlay.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (this.width) this.draw(ctx, this);
  }

  // ---------------------------------------------------------------- pointer input
  _local(event) {
    const rect = this.element.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  _bind() {
    const el = this.element;
    el.addEventListener("wheel", (event) => {
      event.preventDefault();
      // Trackpad pinches arrive as wheel events with ctrlKey and small deltas.
      const perUnit = event.ctrlKey ? 0.01 : event.deltaMode === 1 ? 0.05 : 0.0015;
      const { x, y } = this._local(event);
      this.zoomTo(this.scale * Math.exp(-event.deltaY * perUnit), x, y);
    }, { passive: false });

    el.addEventListener("pointerdown", (event) => {
      if (event.button === 2) return;
      try { el.setPointerCapture(event.pointerId); } catch (_) { /* a synthetic event: nothing to capture */ }
      const at = this._local(event);
      this.pointers.set(event.pointerId, at);
      if (this.pointers.size === 2) {  // a second finger: whatever the first one began becomes a pinch
        this._cancelTool();
        this._startPinch();
        return;
      }
      if (this.pointers.size > 2) return;
      if (this.spaceHeld || event.button === 1) {
        this.gesture = { kind: "pan", last: at };
        el.classList.add("panning");
        return;
      }
      const handler = this.tool.press(this.toImage(event.clientX, event.clientY), event);
      // A tool that does not take drags (points) lets a drag pan instead.
      this.gesture = handler ? { kind: "tool", handler } : { kind: "press", start: at, last: at, event };
    });

    el.addEventListener("pointermove", (event) => {
      const at = this._local(event);
      this.hover = at;
      if (this.pointers.has(event.pointerId)) this.pointers.set(event.pointerId, at);
      const g = this.gesture;
      if (!g) { this.redraw(); return; }
      if (g.kind === "pinch") {
        this._movePinch();
      } else if (g.kind === "pan") {
        this.panBy(at.x - g.last.x, at.y - g.last.y);
        g.last = at;
      } else if (g.kind === "press") {
        if (Math.hypot(at.x - g.start.x, at.y - g.start.y) > DRAG_SLOP) {
          this.gesture = { kind: "pan", last: g.last };
          el.classList.add("panning");
          this.panBy(at.x - g.last.x, at.y - g.last.y);
          this.gesture.last = at;
        }
      } else if (g.kind === "tool") {
        g.handler.move(this.toImage(event.clientX, event.clientY), event);
        this.redraw();
      }
    });

    const end = (event, cancelled) => {
      if (!this.pointers.delete(event.pointerId)) return;
      const g = this.gesture;
      if (g && g.kind === "pinch") {
        if (this.pointers.size === 0) this.gesture = null;
        return;  // lifting one finger of two ends the pinch; nothing else happens until all are up
      }
      this.gesture = null;
      el.classList.remove("panning");
      if (!g || cancelled) { if (g && g.kind === "tool") g.handler.cancel(); return; }
      if (g.kind === "tool") g.handler.end(this.toImage(event.clientX, event.clientY), event);
      if (g.kind === "press") this.tool.click(this.toImage(event.clientX, event.clientY), g.event);
      this.redraw();
    };
    el.addEventListener("pointerup", (event) => end(event, false));
    el.addEventListener("pointercancel", (event) => end(event, true));
    el.addEventListener("pointerleave", () => { this.hover = null; this.redraw(); });
    el.addEventListener("contextmenu", (event) => event.preventDefault());
  }

  _cancelTool() {
    if (this.gesture && this.gesture.kind === "tool") this.gesture.handler.cancel();
    this.gesture = null;
  }

  _pinchState() {
    const [a, b] = [...this.pointers.values()];
    return { mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) };
  }

  _startPinch() {
    const { mid, dist } = this._pinchState();
    this.gesture = { kind: "pinch", mid, dist, scale: this.scale, ix: (mid.x - this.x) / this.scale, iy: (mid.y - this.y) / this.scale };
  }

  _movePinch() {
    if (this.pointers.size < 2) return;
    const g = this.gesture;
    const { mid, dist } = this._pinchState();
    this.fitted = false;
    const min = Math.min(this.fitScale(), 1) / 4;
    const scale = Math.min(MAX_SCALE, Math.max(min, (g.scale * dist) / g.dist));
    // The image point that was under the fingers' midpoint stays under it: zoom and pan at once.
    this._place(scale, { x: mid.x - g.ix * scale, y: mid.y - g.iy * scale });
  }
}
