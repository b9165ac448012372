// The REST client: bearer token, refresh before expiry (and once on 401 TOKEN_EXPIRED),
// idempotency keys, and one result shape for every call:
//   {ok, status, data, error}   error = SPEC §2 {code, message, details}
//                                       or {code: "NETWORK", message} when no response came.
// Tokens live in sessionStorage: a tab's login ends with the tab, and a reload keeps it.

const STORE_KEY = "cc.session";
const EARLY_S = 10; // a call made this close to expiry refreshes first

/** exp - iat of a JWT, in seconds (null when unreadable). */
function lifetimeOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.exp === "number" && typeof claims.iat === "number" ? claims.exp - claims.iat : null;
  } catch (_) {
    return null;
  }
}

async function parse(resp) {
  if (resp.status === 204) return null;
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

export class Api {
  /** onTokens(session) after every login/refresh; onSessionEnded(error) when the
   *  session cannot be continued (refresh refused). */
  constructor({ onTokens = () => {}, onSessionEnded = () => {} } = {}) {
    this.onTokens = onTokens;
    this.onSessionEnded = onSessionEnded;
    this.session = null; // {access_token, refresh_token, expires_at (ms), user}
    this.refreshing = null;
    this.timer = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && saved.access_token && saved.refresh_token) this.session = saved;
    } catch (_) {
      this.session = null;
    }
    if (this.session) this.schedule(); // a reloaded page keeps refreshing on time
    document.addEventListener("visibilitychange", () => {
      // timers of hidden tabs are throttled: catch up as soon as the tab is seen again
      if (document.visibilityState === "visible" && this.session) this.schedule();
    });
  }

  get accessToken() {
    return this.session ? this.session.access_token : null;
  }

  get user() {
    return this.session ? this.session.user : null;
  }

  /** Seconds the access token has left on this device's clock. */
  get remaining() {
    return this.session ? (this.session.expires_at - Date.now()) / 1000 : 0;
  }

  get loggedIn() {
    return Boolean(this.session);
  }

  /** Adopt a token response ({access_token, refresh_token, expires_in, user?}). */
  adopt(body) {
    // the expiry on this device's clock: now + the token's lifetime (never the token's
    // absolute exp, which a skewed device clock would read as "expired" — and refresh
    // again and again)
    const lifetime = Number(body.expires_in) || lifetimeOf(body.access_token) || 900;
    const expires_at = Date.now() + lifetime * 1000;
    this.session = {
      access_token: body.access_token,
      refresh_token: body.refresh_token,
      expires_at,
      lifetime_s: lifetime,
      user: body.user || (this.session && this.session.user) || null,
    };
    sessionStorage.setItem(STORE_KEY, JSON.stringify(this.session));
    this.schedule();
    this.onTokens(this.session);
  }

  clear() {
    this.session = null;
    sessionStorage.removeItem(STORE_KEY);
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Refresh when 80 % of the token's life has passed (at least 5 s, at most 2 min early). */
  schedule() {
    clearTimeout(this.timer);
    if (!this.session) return;
    const margin = Math.min(120, Math.max(5, 0.2 * (this.session.lifetime_s || 900))) * 1000;
    const due = this.session.expires_at - margin - Date.now();
    this.timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(0, due));
  }

  /** One refresh at a time; resolves true when new tokens were adopted. */
  refresh() {
    if (!this.session) return Promise.resolve(false);
    if (this.refreshing) return this.refreshing;
    const token = this.session.refresh_token;
    this.refreshing = (async () => {
      const res = await this.raw("POST", "/api/auth/refresh", { refresh_token: token }, {});
      if (res.ok) {
        this.adopt(res.data);
        return true;
      }
      if (res.status === 401 || res.status === 400) {
        // spent, revoked or expired: this login is over
        this.clear();
        this.onSessionEnded(res.error);
      } else {
        // network or server trouble: keep the tokens and try again shortly
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.refresh().catch(() => {}), 10_000);
      }
      return false;
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async raw(method, path, body, { idempotencyKey, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined && body !== null) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    if (idempotencyKey) headers["X-Idempotency-Key"] = idempotencyKey;
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body !== undefined && body !== null ? JSON.stringify(body) : undefined,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (exc) {
      return { ok: false, status: 0, data: null, error: { code: "NETWORK", message: String(exc && exc.message || exc) } };
    }
    const data = await parse(resp);
    if (resp.ok) return { ok: true, status: resp.status, data, error: null, replayed: resp.headers.get("Idempotent-Replay") === "true" };
    let error = data && typeof data === "object" && data.error ? data.error : null;
    if (!error) error = { code: resp.status >= 500 ? "INTERNAL" : `HTTP_${resp.status}`, message: resp.statusText || `HTTP ${resp.status}`, details: {} };
    const ra = Number(resp.headers.get("Retry-After"));
    if (Number.isFinite(ra) && ra > 0) error = { ...error, retryAfter: ra, details: { retry_after_s: ra, ...(error.details || {}) } };
    return { ok: false, status: resp.status, data: null, error };
  }

  /** An authenticated call; refreshes first when the token is about to expire, and
   *  once more (then retries) on 401 TOKEN_EXPIRED. */
  async request(method, path, body, { idempotencyKey } = {}) {
    if (this.session && this.session.expires_at - Date.now() < EARLY_S * 1000) await this.refresh();
    const first = await this.raw(method, path, body, { idempotencyKey, token: this.accessToken });
    if (first.status === 401 && first.error && first.error.code === "TOKEN_EXPIRED" && this.session) {
      if (await this.refresh()) return this.raw(method, path, body, { idempotencyKey, token: this.accessToken });
    }
    if (first.status === 401 && first.error && ["TOKEN_REVOKED", "UNAUTHORIZED"].includes(first.error.code) && this.session) {
      this.clear();
      this.onSessionEnded(first.error);
    }
    return first;
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}, { idempotencyKey } = {}) {
    return this.request("POST", path, body, { idempotencyKey });
  }

  put(path, body = {}) {
    return this.request("PUT", path, body);
  }

  // -- auth ------------------------------------------------------------------------
  async login(site_id, password) {
    const res = await this.raw("POST", "/api/auth/login", { site_id, password });
    if (res.ok) this.adopt(res.data);
    return res;
  }

  async signup(fields) {
    const res = await this.raw("POST", "/api/auth/signup", fields);
    if (res.ok) this.adopt(res.data);
    return res;
  }

  async logout() {
    if (this.session) await this.raw("POST", "/api/auth/logout", {}, { token: this.accessToken });
    this.clear();
  }
}
