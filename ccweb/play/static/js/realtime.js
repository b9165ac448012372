// The one realtime connection of the page (SPEC §3 Realtime).
//
// WebSocket /api/realtime/sync first. Every push carries a per-player `seq`; the client
// remembers the last one and the stream's `epoch`, and after a drop reconnects with
// ?since=&epoch= so the server backfills exactly what was missed (or answers
// resync_required + a fresh initial_state). Reconnects back off exponentially with
// jitter, so a restarted server is not stormed by every tab at the same instant.
// When the WebSocket cannot even open twice in a row (a proxy that strips Upgrade), the
// same messages are read from the SSE endpoint /api/realtime/stream over fetch() — fetch,
// not EventSource, so the token travels in a header and the resume position in
// Last-Event-ID. After a token refresh the socket is told {"type":"refresh","token"} so
// the server does not close it at the old token's expiry.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const WS_FAILURES_BEFORE_SSE = 2;
const OPEN_TIMEOUT_MS = 8000;

export class Live {
  /** token(): current access token; refresh(): Promise<bool> (new token adopted);
   *  onMessage(msg); onStatus({state, transport, retryInMs}). */
  constructor({ token, refresh, onMessage, onStatus }) {
    this.token = token;
    this.refreshToken = refresh;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.lastSeq = null; // last push seq seen (null: nothing yet, no resume position)
    this.epoch = null;
    this.attempt = 0;
    this.wsFailures = 0;
    this.transport = null; // "websocket" | "sse"
    this.ws = null;
    this.usedToken = null; // the access token the current connection was opened with
    this.sse = null; // AbortController of the SSE fetch
    this.timer = null;
    this.watchdog = null;
    this.heartbeatMs = 25_000;
    this.running = false;
    this.state = "offline";
    this.onOnline = () => {
      if (this.running && this.state !== "live") this.reconnectNow();
    };
    this.onVisible = () => {
      if (document.visibilityState === "visible" && this.running && this.state !== "live") this.reconnectNow();
    };
  }

  start() {
    if (this.running) return;
    this.running = true;
    window.addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.status("connecting");
    this.connect();
  }

  stop() {
    this.running = false;
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.timer);
    this.teardown();
    this.lastSeq = null;
    this.epoch = null;
    this.status("offline");
  }

  /** Tell the open socket about a new access token (SSE reconnects at expiry instead). */
  tokenRefreshed(token) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "refresh", token }));
    }
  }

  status(state, extra = {}) {
    this.state = state;
    this.onStatus({ state, transport: this.transport, ...extra });
  }

  teardown() {
    clearTimeout(this.watchdog);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "client closing");
      } catch (_) { /* already closed */ }
    }
    if (this.sse) {
      this.sse.abort();
      this.sse = null;
    }
  }

  reconnectNow() {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.teardown();
    this.attempt = 0;
    this.connect();
  }

  connect() {
    if (!this.running) return;
    if (this.wsFailures >= WS_FAILURES_BEFORE_SSE || typeof WebSocket === "undefined") this.connectSse();
    else this.connectWs();
  }

  /** Next attempt after a drop: a random delay in the upper half of 0.5 s · 2^n
   *  (capped at 30 s; "equal jitter"), so clients dropped together come back spread out. */
  retry(reason) {
    if (!this.running) return;
    this.teardown();
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.status(navigator.onLine === false ? "offline" : "reconnecting", { retryInMs: delay, reason });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  resumeQuery() {
    const q = [];
    if (this.lastSeq !== null) q.push(`since=${this.lastSeq}`);
    if (this.lastSeq !== null && this.epoch) q.push(`epoch=${encodeURIComponent(this.epoch)}`);
    return q;
  }

  // -- WebSocket -------------------------------------------------------------------
  connectWs() {
    const token = this.token();
    if (!token) return;
    this.transport = "websocket";
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.usedToken = token;
    const query = [`token=${encodeURIComponent(token)}`, ...this.resumeQuery()].join("&");
    let opened = false;
    let heard = false; // any frame from the server (it always starts with sync_connected)
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/realtime/sync?${query}`);
    } catch (_) {
      this.wsFailures += 1;
      this.retry("websocket unavailable");
      return;
    }
    this.ws = ws;
    this.watchdog = setTimeout(async () => {
      if (opened || this.ws !== ws) return;
      this.teardown();
      await this.countFailure();
      this.retry("open timed out");
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      opened = true;
      clearTimeout(this.watchdog);
    };
    ws.onmessage = (ev) => {
      heard = true;
      this.wsFailures = 0;
      this.alive();
      this.receive(ev.data);
    };
    ws.onclose = async (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.watchdog);
      // closed before the server said anything (refused, or a proxy that accepts the
      // upgrade and drops it); a token problem (4401) is not the transport's fault
      if (!heard && ev.code !== 4401) await this.countFailure();
      if (this.ws || this.sse) return; // reconnected meanwhile (online, visible)
      this.closed(ev.code, ev.reason);
    };
  }

  /** A WebSocket that did not open counts towards the SSE fallback only while the
   *  server answers plain HTTP: then something between us blocks WebSockets. When the
   *  server itself is down (a restart) the client keeps trying the WebSocket. */
  async countFailure() {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 3000);
    try {
      const resp = await fetch("/health", { cache: "no-store", signal: ctrl.signal });
      if (resp.ok) this.wsFailures += 1;
    } catch (_) {
      /* the server is unreachable: not the WebSocket's fault */
    } finally {
      clearTimeout(timer);
    }
  }

  /** Liveness: any frame re-arms it; a silent socket past two heartbeats is dead
   *  (a half-open TCP connection after sleep or a network switch never says so). */
  alive() {
    clearTimeout(this.watchdog);
    const ws = this.ws;
    this.watchdog = setTimeout(() => {
      if (ws && ws === this.ws && ws.readyState === WebSocket.OPEN) {
        try {
          ws.send(JSON.stringify({ type: "ping" }));
        } catch (_) { /* closing */ }
        this.watchdog = setTimeout(() => {
          if (ws === this.ws) this.retry("no answer to ping");
        }, 10_000);
      }
    }, this.heartbeatMs + 5000);
  }

  async closed(code, reason) {
    if (!this.running) return;
    if (code === 4401) {
      // token problem: a refreshed token may fix it (expired); otherwise the session ended
      this.status("reconnecting", { reason });
      const ok = this.token() !== this.usedToken || (await this.refreshToken());
      if (ok && this.running && this.attempt === 0) {
        this.attempt = 1; // at once this time; again without a snapshot between: back off
        this.teardown();
        this.connect();
      } else if (this.running) this.retry(reason);
      return;
    }
    this.retry(reason || `closed (${code})`);
  }

  // -- SSE over fetch ----------------------------------------------------------------
  async connectSse() {
    const token = this.token();
    if (!token) return;
    this.transport = "sse";
    const ctrl = new AbortController();
    this.sse = ctrl;
    this.usedToken = token;
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token}` };
    if (this.lastSeq !== null) headers["Last-Event-ID"] = String(this.lastSeq);
    const query = this.lastSeq !== null && this.epoch ? `?epoch=${encodeURIComponent(this.epoch)}` : "";
    let resp;
    try {
      resp = await fetch(`/api/realtime/stream${query}`, { headers, signal: ctrl.signal, cache: "no-store" });
    } catch (_) {
      if (this.sse === ctrl) this.fallbackFailed("stream unavailable");
      return;
    }
    if (this.sse !== ctrl) return;
    if (resp.status === 401) {
      const ok = this.token() !== token || (await this.refreshToken());
      if (ok && this.sse === ctrl) {
        this.sse = null;
        this.connect();
      } else if (this.sse === ctrl) this.retry("unauthorized");
      return;
    }
    if (!resp.ok || !resp.body) {
      this.fallbackFailed(`stream HTTP ${resp.status}`);
      return;
    }
    let closedMsg = null;
    // the server writes at least a ": ping" line every heartbeat: silence past that is a
    // dead connection (the read would otherwise wait forever)
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ctrl.abort(), this.heartbeatMs + 10_000);
    };
    try {
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let data = [];
      arm();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.sse !== ctrl) break;
        arm();
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (data.length) {
              const text = data.join("\n");
              data = [];
              const msg = this.receive(text);
              if (msg && msg.type === "closed") closedMsg = msg;
            }
          } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          // "id:" lines repeat the message's seq, which receive() reads from the JSON;
          // ":" comment lines are the heartbeat
        }
      }
    } catch (_) {
      /* aborted or the connection dropped */
    } finally {
      clearTimeout(idle);
    }
    if (this.sse !== ctrl) return;
    this.sse = null;
    if (closedMsg && closedMsg.data && closedMsg.data.code === 4401) {
      // SSE cannot carry a refresh: at expiry it ends; a token refreshed meanwhile is used
      const ok = this.token() !== token || (await this.refreshToken());
      if (ok) {
        this.attempt = 0;
        this.wsFailures = 0;
        this.connect();
        return;
      }
    }
    // the stream ended: try the WebSocket again first, SSE again if it still fails
    this.wsFailures = 0;
    this.retry("stream ended");
  }

  fallbackFailed(reason) {
    this.wsFailures = 0; // next round starts with the WebSocket again
    this.retry(reason);
  }

  // -- messages ----------------------------------------------------------------------
  /** Parse one frame, keep the resume position, drop what was already seen, pass the
   *  rest on. Returns the message. */
  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return null;
    }
    if (!msg || typeof msg !== "object") return null;
    switch (msg.type) {
      case "sync_connected":
        this.epoch = msg.data && msg.data.epoch ? msg.data.epoch : this.epoch;
        if (this.lastSeq === null && msg.data) this.lastSeq = Number(msg.data.seq) || 0;
        if (msg.data && msg.data.heartbeat_s) this.heartbeatMs = msg.data.heartbeat_s * 1000;
        break;
      case "resync_required":
        this.epoch = msg.data ? msg.data.epoch : null;
        this.lastSeq = msg.data ? Number(msg.data.seq) || 0 : 0;
        break;
      case "initial_state":
        this.attempt = 0;
        this.onMessage(msg);
        this.status("live");
        return msg;
      default:
        break;
    }
    if (typeof msg.seq === "number" && msg.type !== "initial_state" && msg.type !== "resync_required") {
      if (this.lastSeq !== null && msg.seq <= this.lastSeq) return msg; // already applied
      this.lastSeq = msg.seq;
    }
    this.onMessage(msg);
    return msg;
  }
}
