// The page's only way to the server: the /v1 API, exactly as any other client calls it.
"use strict";

const TOKEN_KEY = "promptpaint-token";

export const auth = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  onUnauthorized: () => {},
  set(token) {
    this.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
  },
};

export class ApiError extends Error {
  constructor(status, detail, retryAfter = 0) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export async function api(path, options = {}) {
  const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
  const response = await fetch(path, { ...options, headers: { ...headers, ...(options.headers || {}) } });
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  if (response.status === 401) auth.onUnauthorized();
  throw new ApiError(response.status, detail, Number(response.headers.get("Retry-After")) || 0);
}

export const getJson = async (path, options) => (await api(path, options)).json();

/** A multipart body: plain fields, the options as one JSON field, and files as [blob, name]. */
export function form(fields, files = {}) {
  const body = new FormData();
  for (const [key, value] of Object.entries(fields)) {
    body.append(key, typeof value === "string" ? value : JSON.stringify(value));
  }
  for (const [key, [blob, name]] of Object.entries(files)) body.append(key, blob, name);
  return body;
}

export const postForm = (path, fields, files) => getJson(path, { method: "POST", body: form(fields, files) });

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A base64 PNG of a JSON answer (mask_png, image_png) as a Blob. */
export const pngBlob = async (base64) => (await fetch(`data:image/png;base64,${base64}`)).blob();

/** What the server noted beside an answer, as one sentence each: phrases that found nothing (the
 *  work went on without them), boxes clamped to the photo, detections past the server's limit, shadows too large to go. */
export function warnings(data) {
  const notes = [...(data.clamped || []), ...(data.capped || []), ...(data.left_out || []),
    ...((data.info && data.info.notes) || [])];
  if (data.missing && data.missing.length) notes.unshift(`Nothing found for ${data.missing.map((m) => `“${m}”`).join(", ")}.`);
  return notes.length ? ` ${notes.join(" ")}` : "";
}
