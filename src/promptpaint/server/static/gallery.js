// The history of results, kept in the browser's IndexedDB so that it survives a reload: each item
// holds its result images, its input (for "replay" and "continue from here"), the mask it sent
// (if any) and the recipe the server recorded.
"use strict";

const DB_NAME = "promptpaint";
const STORE = "history";
const KEEP = 60;  // oldest items beyond this are dropped

let opened = null;

function database() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return opened;
}

async function transaction(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** Newest first. */
export async function listItems() {
  const items = await transaction("readonly", (store) => store.getAll());
  return items.reverse();
}

export const getItem = (id) => transaction("readonly", (store) => store.get(id));
export const deleteItem = (id) => transaction("readwrite", (store) => store.delete(id));
export const clearItems = () => transaction("readwrite", (store) => store.clear());

export async function addItem(item) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const id = await transaction("readwrite", (store) => store.add(item));
      await dropOldest(KEEP);
      return id;
    } catch (error) {
      // Big photos fill the browser's quota: make room by forgetting the oldest results.
      const keys = await transaction("readonly", (store) => store.getAllKeys());
      if (error.name !== "QuotaExceededError" || attempt >= 3 || !keys.length) throw error;
      await dropOldest(Math.floor(keys.length / 2));
    }
  }
}

async function dropOldest(keep) {
  const keys = await transaction("readonly", (store) => store.getAllKeys());
  if (keys.length <= keep) return;
  await transaction("readwrite", (store) => { for (const key of keys.slice(0, keys.length - keep)) store.delete(key); });
}

/** A small JPEG of an image blob for the gallery strip. */
export async function thumbnail(blob, size = 160) {
  const bitmap = await createImageBitmap(blob);
  const scale = Math.min(1, size / Math.max(bitmap.width, bitmap.height));
  const canvas = Object.assign(document.createElement("canvas"), {
    width: Math.max(1, Math.round(bitmap.width * scale)), height: Math.max(1, Math.round(bitmap.height * scale)) });
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
}
