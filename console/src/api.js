// The REST API as the console uses it. The session itself is an HttpOnly
// cookie the page never sees; the CSRF token lives in this module's memory
// only (never in localStorage or sessionStorage) and is asked for again
// with GET /api/v1/session after a reload.

let csrf = null;
let onUnauthorized = () => {};

export function setCsrf(token) {
  csrf = token;
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.path = e.path || '';
  }
}

export async function api(method, path, body, { ifMatch, quiet401 } = {}) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'kaa-console' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  if (ifMatch !== undefined) headers['If-Match'] = `"${ifMatch}"`;
  const r = await fetch('/api/v1' + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (r.status === 204) return null;
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) {
    if (r.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(r.status, data);
  }
  return data;
}

// A route this server does not have (an older kaa-node) answers 404 with
// "no such route"; an object that does not exist says otherwise.
export function isMissingRoute(err) {
  return err instanceof ApiError && err.status === 404 && /no such route/.test(err.message);
}

export const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : '');
