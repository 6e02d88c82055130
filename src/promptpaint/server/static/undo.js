// Undo and redo as a list of immutable states: every change of the selection pushes a new state,
// undo and redo move through the list. States share what did not change (strokes are kept by
// reference), so a long session costs little memory.
"use strict";

const LIMIT = 200;

export class UndoStack {
  constructor(initial) {
    this.reset(initial);
  }

  reset(initial) {
    this.states = [initial];
    this.index = 0;
  }

  get current() { return this.states[this.index]; }
  get canUndo() { return this.index > 0; }
  get canRedo() { return this.index < this.states.length - 1; }

  /** Record `state` as the newest (dropping anything redo could have reached); false if unchanged. */
  push(state) {
    if (sameState(state, this.current)) return false;
    this.states.splice(this.index + 1);
    this.states.push(state);
    if (this.states.length > LIMIT) this.states.shift();
    this.index = this.states.length - 1;
    return true;
  }

  undo() {
    if (this.canUndo) this.index -= 1;
    return this.current;
  }

  redo() {
    if (this.canRedo) this.index += 1;
    return this.current;
  }
}

function sameState(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => {
    if (a[key] === b[key]) return true;
    // Strokes are compared by identity (they can be large); everything else by value.
    if (key === "strokes") return a.strokes.length === b.strokes.length && a.strokes.every((s, i) => s === b.strokes[i]);
    return JSON.stringify(a[key]) === JSON.stringify(b[key]);
  });
}
