// Keyboard shortcuts in the style of IOPaint's, and the "?" overlay that lists them. One table
// serves both, so the overlay can never disagree with what the keys do.
"use strict";

const isMac = /mac/i.test(navigator.platform || navigator.userAgent);
export const MOD = isMac ? "⌘" : "Ctrl";

/**
 * actions: {undo, redo, brushSmaller, brushBigger, fit, zoomIn, zoomOut, zoom100, run, copy,
 * tool(name), holdOriginal(bool), setSpace(bool), toggleHelp, closeHelp}.
 */
export function shortcutTable(actions) {
  return [
    { keys: [MOD, "Z"], label: "Undo", match: (e) => mod(e) && !e.shiftKey && key(e, "z"), run: actions.undo },
    { keys: [MOD, "Shift", "Z"], label: "Redo", match: (e) => (mod(e) && e.shiftKey && key(e, "z")) || (mod(e) && key(e, "y")), run: actions.redo },
    { keys: ["["], label: "Smaller brush", match: (e) => e.key === "[", run: actions.brushSmaller },
    { keys: ["]"], label: "Bigger brush", match: (e) => e.key === "]", run: actions.brushBigger },
    { keys: ["Space", "drag"], label: "Pan (or drag with the middle button, or two fingers)", hold: "space" },
    { keys: ["Wheel"], label: "Zoom around the pointer (or pinch)" },
    { keys: ["+"], label: "Zoom in", match: (e) => !mod(e) && (e.key === "+" || e.key === "="), run: actions.zoomIn },
    { keys: ["−"], label: "Zoom out", match: (e) => !mod(e) && e.key === "-", run: actions.zoomOut },
    { keys: ["1"], label: "Zoom to 100%", match: (e) => !mod(e) && e.key === "1", run: actions.zoom100 },
    { keys: ["Esc"], label: "Fit the photo (and close this list)", match: (e) => e.key === "Escape", run: actions.fit },
    { keys: ["Hold O"], label: "See the original (or press and hold ‘Original’)", hold: "original" },
    { keys: ["Shift", "click"], label: "Negative point (or the ‘− point’ toggle)" },
    { keys: ["P"], label: "Click tool (points)", match: (e) => plain(e) && key(e, "p"), run: () => actions.tool("point") },
    { keys: ["B"], label: "Brush", match: (e) => plain(e) && key(e, "b"), run: () => actions.tool("brush") },
    { keys: ["E"], label: "Eraser", match: (e) => plain(e) && key(e, "e"), run: () => actions.tool("erase") },
    { keys: ["Shift", "R"], label: "Run the edit", match: (e) => !mod(e) && e.shiftKey && key(e, "r"), run: actions.run },
    { keys: [MOD, "V"], label: "Paste a photo" },
    { keys: [MOD, "C"], label: "Copy the result", match: (e) => mod(e) && !e.shiftKey && key(e, "c") && !hasTextSelection(), run: actions.copy },
    { keys: ["?"], label: "This list", match: (e) => e.key === "?" || (plain(e) && key(e, "h")), run: actions.toggleHelp },
  ];
}

const mod = (e) => e.ctrlKey || e.metaKey;
const plain = (e) => !mod(e) && !e.altKey && !e.shiftKey;
const key = (e, k) => e.key.toLowerCase() === k;
const hasTextSelection = () => String(window.getSelection() || "").length > 0;

/** Typing in a field keeps the browser's own keys (its own undo in a text box, for example). */
function typing(event) {
  const el = event.target;
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  return el.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "file"].includes(el.type);
}

export function bindShortcuts(actions) {
  const table = shortcutTable(actions);
  window.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { actions.closeHelp(); }
    if (typing(event)) return;
    if (event.code === "Space") { event.preventDefault(); if (!event.repeat) actions.setSpace(true); return; }
    if (key(event, "o") && plain(event)) { if (!event.repeat) actions.holdOriginal(true); return; }
    const hit = table.find((entry) => entry.match && entry.match(event));
    if (hit) {
      event.preventDefault();
      hit.run();
    }
  });
  window.addEventListener("keyup", (event) => {
    if (event.code === "Space") {
      if (!typing(event)) event.preventDefault();  // a focused button must not be pressed by it
      actions.setSpace(false);
    }
    if (key(event, "o")) actions.holdOriginal(false);
  });
  window.addEventListener("blur", () => { actions.setSpace(false); actions.holdOriginal(false); });
  return table;
}

export function renderShortcutList(list, table) {
  list.innerHTML = "";
  for (const entry of table) {
    const dt = document.createElement("dt");
    dt.append(...entry.keys.map((k) => Object.assign(document.createElement("kbd"), { textContent: k })));
    const dd = Object.assign(document.createElement("dd"), { textContent: entry.label });
    list.append(dt, dd);
  }
}
