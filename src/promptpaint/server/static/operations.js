// The operations the server offers and their option controls, built from the option models'
// JSON schemas: a new operation or a new option appears on the page without page code. The page
// knows only labels, the order of the common fields, and which fields the Select card owns.
"use strict";

import { getJson } from "./api.js";

/** Fields the Select card sets (the selection, its sliders) and fields never shown. */
const SELECTION_FIELDS = new Set(["find", "exclude", "box", "point", "mask", "box_threshold", "text_threshold",
  "pick", "keep", "invert", "dilate", "feather", "detector", "segmenter", "op"]);
const OP_LABELS = { replace: "Replace", background: "New background", remove: "Remove", outpaint: "Outpaint",
  cutout: "Cut out" };
const FIELD_LABELS = {
  prompt: "Prompt", negative_prompt: "Negative prompt", seed: "Seed", variants: "Variants", steps: "Steps",
  guidance: "Guidance", strength: "Strength", padding: "Context padding", working_size: "Working size (px)",
  aspect: "Aspect", anchor: "Anchor", expand: "Expand L,T,R,B (px)", size: "Canvas W×H", overlap: "Seam overlap (px)",
  fill_holes: "Fill holes", min_area: "Drop specks under (px)", background: "Background colour",
  crop: "Trim to the subject, pad (px)",
};
const HINTS = { background: "keep the selection, repaint everything else", remove: "erase the selection and fill the hole" };
const PLACEHOLDERS = { prompt: "what to paint, e.g. a corgi wearing sunglasses", negative_prompt: "what to avoid",
  seed: "random", steps: "auto", guidance: "auto", working_size: "auto" };
const MAIN_FIELDS = ["prompt", "negative_prompt"];
const ROW_FIELDS = ["seed", "variants", "steps"];
// Shown under the prompt when an operation has them; every other option is under "More options"
const PRIMARY_FIELDS = ["aspect", "anchor", "fast", "matte", "with_shadow", "with_reflection", "matting", "background",
  "crop"];
const ASPECTS = ["1:1", "4:3", "3:2", "16:9", "9:16"];
const ANCHORS = ["center", "left", "right", "top", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"];

const readable = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
const opLabel = (name) => OP_LABELS[name] || readable(name);
const label = (name) => FIELD_LABELS[name] || readable(name);
const testId = (name) => `${name.replace(/_/g, "-")}-input`;

/**
 * The edit operations the server's registry offers (GET /v1/operations), each {name, label, hint,
 * op, keep, selects, schema}. `op` is what the request's options.op says; "New background" is
 * replace with `keep` (the server inverts the selection), offered wherever an operation has `keep`.
 */
export async function loadOperations() {
  const ops = [];
  for (const entry of await getJson("/v1/operations")) {
    const base = { op: entry.name, keep: false, selects: entry.takes_selection, schema: entry.options };
    ops.push({ ...base, name: entry.name, label: opLabel(entry.name), hint: HINTS[entry.name] || entry.summary });
    if ("keep" in entry.options.properties) {
      ops.push({ ...base, name: "background", label: opLabel("background"), hint: HINTS.background, keep: true });
    }
  }
  return ops;
}

function fieldType(prop) {
  const variants = prop.anyOf ? prop.anyOf.filter((v) => v.type !== "null") : [prop];
  const main = variants[0] || {};
  return { ...prop, ...main, nullable: Boolean(prop.anyOf), enum: prop.enum || main.enum };
}

/** The option controls of one operation; values typed into a field carry over to other operations. */
export class OptionForm {
  constructor(container, onChange = () => {}) {
    this.container = container;
    this.onChange = onChange;
    this.values = new Map();  // field name -> what the user entered (string or boolean)
    this.fields = {};
    this.models = {};         // model role -> names this server allows (the loaded one first): GET /v1/models
  }

  render(op) {
    this.op = op;
    this.fields = Object.fromEntries(Object.entries(op.schema.properties)
      .filter(([name]) => !SELECTION_FIELDS.has(name)).map(([name, prop]) => [name, fieldType(prop)]));
    const names = Object.keys(this.fields);
    const main = MAIN_FIELDS.filter((n) => n in this.fields);
    const row = ROW_FIELDS.filter((n) => n in this.fields);
    const rest = names.filter((n) => !main.includes(n) && !row.includes(n));
    const primary = PRIMARY_FIELDS.filter((n) => rest.includes(n));
    const more = rest.filter((n) => !primary.includes(n));
    this.container.innerHTML = "";
    for (const name of main) this.container.append(this._control(name));
    for (const name of primary) this.container.append(this._control(name));
    if (row.length) this.container.append(div("field-row", row.map((n) => this._control(n))));
    if (more.length) {
      const details = document.createElement("details");
      details.className = "more";
      details.innerHTML = "<summary>More options</summary>";
      details.append(div("more-grid", more.map((n) => this._control(n))));
      this.container.append(details);
    }
  }

  /** The options to send: only what the user gave (the server resolves the rest). */
  options() {
    const options = {};
    for (const [name, field] of Object.entries(this.fields)) {
      const value = this.values.get(name);
      if (value === undefined || value === "") continue;
      if (field.type === "boolean") {
        if (value !== Boolean(field.default)) options[name] = value;
      } else if (field.type === "integer") {
        options[name] = parseInt(value, 10);
      } else if (field.type === "number") {
        options[name] = parseFloat(value);
      } else {
        options[name] = String(value).trim();
      }
    }
    if (this.op.name === "outpaint" && !options.expand && !options.size) options.aspect ??= this._aspect();
    if (options.aspect && (options.expand || options.size)) delete options.aspect;
    return options;
  }

  set(name, value) {
    this.values.set(name, value);
    const input = this.container.querySelector(`[data-field="${name}"]`);
    if (input) input.value = value;
  }

  _aspect() { return this.values.get("aspect") || "16:9"; }

  _control(name) {
    const field = this.fields[name];
    if (name === "aspect") return this._aspectControl(field);
    const wrap = document.createElement("label");
    wrap.className = field.type === "boolean" ? "check" : "field";
    wrap.title = field.description || "";
    let input;
    const role = name in this.models;  // a model option (inpainter, remover, ...): the allowed names
    const choices = field.enum || (name === "anchor" ? ANCHORS : role ? this.models[name] : null);
    if (field.type === "boolean") {
      input = Object.assign(document.createElement("input"), { type: "checkbox" });
      input.checked = this.values.has(name) ? this.values.get(name) : Boolean(field.default);
      input.addEventListener("change", () => { this.values.set(name, input.checked); this.onChange(name); });
      wrap.append(input, document.createTextNode(` ${label(name)}`));
    } else {
      if (choices) {
        input = document.createElement("select");
        const auto = field.default ?? "";
        if (field.nullable || role) input.append(new Option("default", ""));
        for (const choice of choices) input.append(new Option(choice, choice === auto && !field.nullable ? "" : choice));
      } else if (name === "prompt") {
        input = Object.assign(document.createElement("textarea"), { rows: 2 });
      } else {
        input = document.createElement("input");
        input.autocomplete = "off";
        if (field.type === "integer" || field.type === "number") {
          input.type = "number";
          if (field.minimum !== undefined) input.min = field.minimum;
          if (field.maximum !== undefined) input.max = field.maximum;
          input.step = field.type === "integer" ? "1" : "any";
        }
      }
      input.placeholder = PLACEHOLDERS[name] ?? (field.default !== null && field.default !== undefined ? String(field.default) : "");
      input.value = this.values.get(name) ?? "";
      input.addEventListener("input", () => { this.values.set(name, input.value); this.onChange(name); });
      wrap.append(document.createTextNode(label(name)), input);
    }
    input.dataset.field = name;
    input.dataset.testid = testId(name);
    return wrap;
  }

  _aspectControl(field) {
    const box = div("aspect-control", []);
    const group = div("toggle wide", []);
    group.setAttribute("role", "radiogroup");
    group.setAttribute("aria-label", "aspect");
    const custom = Object.assign(document.createElement("input"), { placeholder: "W:H, e.g. 21:9", autocomplete: "off" });
    custom.dataset.field = "aspect";
    custom.dataset.testid = testId("aspect");
    custom.title = field.description || "";
    const current = this._aspect();
    for (const value of [...ASPECTS, "custom"]) {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: value === "custom" ? "Custom" : value });
      button.dataset.testid = `aspect-${value.replace(":", "-")}`;
      button.classList.toggle("on", value === current || (value === "custom" && !ASPECTS.includes(current)));
      button.addEventListener("click", () => {
        group.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b === button));
        custom.hidden = value !== "custom";
        if (value !== "custom") this.values.set("aspect", value);
        else custom.focus();
      });
      group.append(button);
    }
    custom.hidden = ASPECTS.includes(current);
    custom.value = ASPECTS.includes(current) ? "" : current;
    custom.addEventListener("input", () => this.values.set("aspect", custom.value.trim()));
    box.append(group, custom);
    return box;
  }
}

function div(className, children) {
  const el = document.createElement("div");
  el.className = className;
  el.append(...children);
  return el;
}
