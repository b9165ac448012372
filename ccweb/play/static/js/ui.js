// Small DOM and text helpers shared by every view: el(), toasts, the human text of an
// API error, number/time formatting, progress bars, and re-rendering without losing
// keyboard focus.

const SVG_TAGS = new Set(["svg", "path", "circle", "rect", "g", "line", "polyline", "text"]);

/** el(tag, attrs, ...children): attrs may hold `testid` (data-testid), `class`,
 *  `on<event>` handlers, aria-* / data-* / any attribute, `style` (string or object),
 *  and DOM properties (value, checked, disabled, hidden...). Children: nodes, strings,
 *  numbers, arrays; null/undefined/false are skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = SVG_TAGS.has(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "testid") node.setAttribute("data-testid", value);
    else if (key === "class" || key === "className") node.setAttribute("class", value);
    else if (key === "style") {
      if (typeof value === "string") node.style.cssText = value;
      else Object.assign(node.style, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !key.includes("-") && typeof value !== "string") node[key] = value;
    else if (key === "value" || key === "checked" || key === "disabled") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// -- formatting ----------------------------------------------------------------------
const NUMBER = new Intl.NumberFormat();

export function fmtGold(n) {
  return NUMBER.format(Number(n) || 0);
}

export function fmtSigned(n) {
  const v = Number(n) || 0;
  return (v > 0 ? "+" : v < 0 ? "−" : "") + NUMBER.format(Math.abs(v));
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

/** A short local time: "14:05" today, "Dec 1, 14:05" otherwise. */
export function fmtShort(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === new Date().toDateString()
    ? time
    : `${d.toLocaleDateString([], { month: "short", day: "numeric" })}, ${time}`;
}

/** "in 3 h 20 min" / "in 45 s" for a future time. */
export function fmtIn(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.round(h / 24)} days`;
}

export function fmtUntil(iso) {
  const t = Date.parse(iso);
  return isNaN(t) ? "" : fmtIn((t - Date.now()) / 1000);
}

const REQUIREMENT_TEXT = {
  plays: "rounds played",
  wins: "rounds won",
  spend_gold: "gold bet",
  win_gold: "gold won",
  streak_days: "streak days",
  max_win: "biggest win",
};

export function requirementText(req) {
  const what = REQUIREMENT_TEXT[req.type] || req.type.replace(/_/g, " ");
  return req.game_type ? `${what} (${req.game_type})` : what;
}

export function rewardText(items) {
  return (items || [])
    .map((it) =>
      it.type === "gold" ? `${fmtGold(it.amount)} gold`
        : it.type === "xp" ? `${fmtGold(it.amount)} XP`
          : `${it.amount || 1}× ${it.code || it.item_id || "item"}`,
    )
    .join(" + ");
}

// -- progress bars -------------------------------------------------------------------
/** The overall completion of a progress list [{type, current, target}] in percent
 *  (each requirement counts equally, capped at its target). */
export function completion(progress) {
  if (!progress || !progress.length) return 0;
  const parts = progress.map((p) => Math.min(1, (Number(p.current) || 0) / (Number(p.target) || 1)));
  return Math.round((100 * parts.reduce((a, b) => a + b, 0)) / parts.length);
}

/** A role=progressbar element (0-100) with a text alternative. */
export function progressBar({ percent, label, valueText, testid }) {
  const pct = Math.max(0, Math.min(100, Math.round(percent)));
  const fill = el("div");
  fill.style.width = `${pct}%`;
  return el(
    "div",
    {
      class: pct >= 100 ? "bar done" : "bar",
      role: "progressbar",
      testid,
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(pct),
      "aria-valuetext": valueText || `${pct}%`,
    },
    fill,
  );
}

export function progressText(progress) {
  return (progress || [])
    .map((p) => `${fmtGold(Math.min(p.current, p.target))}/${fmtGold(p.target)} ${requirementText(p)}`)
    .join(" · ");
}

// -- re-rendering --------------------------------------------------------------------
/** Replace root's content with build()'s nodes, keeping keyboard focus on the element
 *  with the same data-testid (or id) when there is one: views re-render on every push,
 *  and a keyboard user must not be thrown back to the top of the page. */
export function rerender(root, build) {
  const active = document.activeElement;
  const key = active && root.contains(active)
    ? active.getAttribute("data-testid") || (active.id ? `#${active.id}` : null)
    : null;
  const nodes = [build()].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false);
  root.replaceChildren(...nodes);
  if (key) {
    const again = key.startsWith("#")
      ? root.querySelector(key)
      : root.querySelector(`[data-testid="${CSS.escape(key)}"]`);
    if (again && typeof again.focus === "function") again.focus({ preventScroll: true });
  }
}

// -- toasts --------------------------------------------------------------------------
const TOAST_MS = { info: 5000, success: 6000, error: 9000 };
const MAX_TOASTS = 4;

/** Show a message in the aria-live region (kind: info | success | error). */
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box || !text) return;
  const item = el(
    "div",
    { class: `toast ${kind}`, testid: "toast", "data-kind": kind },
    el("span", { class: "msg" }, text),
    el("button", { type: "button", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
  );
  box.append(item);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => item.remove(), TOAST_MS[kind] || TOAST_MS.info);
}

// -- errors --------------------------------------------------------------------------
const FIELD_NAMES = {
  site_id: "User ID",
  nickname: "Nickname",
  password: "Password",
  invite_code: "Invite code",
  bet: "Bet",
  count: "Count",
  choice: "Choice",
  auto_cashout: "Auto cash-out",
  client_seed: "Client seed",
  quantity: "Quantity",
};

function clock(secondsFromNow) {
  const at = new Date(Date.now() + secondsFromNow * 1000);
  return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function retryAfter(error) {
  const d = (error && error.details) || {};
  const s = Number(d.retry_after_s ?? d.retry_after ?? error.retryAfter);
  return Number.isFinite(s) && s > 0 ? s : null;
}

function validationText(error) {
  const fields = (error.details && error.details.fields) || [];
  if (!fields.length) return error.message ? `Please check your input: ${error.message}.` : "Please check your input.";
  return fields
    .map((f) => {
      const name = FIELD_NAMES[f.field] || f.field || "Input";
      let msg = String(f.message || "is not valid");
      if (/pattern/i.test(msg) && f.field === "site_id") msg = "use 3–32 letters, digits or _";
      msg = msg.replace(/^String should have at least (\d+) characters?$/i, "must be at least $1 characters");
      msg = msg.replace(/^String should have at most (\d+) characters?$/i, "must be at most $1 characters");
      return `${name}: ${msg}.`;
    })
    .join(" ");
}

/** A sentence a player understands for an API error ({code, message, details}). */
export function errorText(error) {
  if (!error) return "Something went wrong. Please try again.";
  const d = error.details || {};
  switch (error.code) {
    case "NETWORK":
      return "Can't reach the server. Check your connection and try again.";
    case "INSUFFICIENT_GOLD":
      return d.required != null && d.balance != null
        ? `Not enough gold: this needs ${fmtGold(d.required)} and you have ${fmtGold(d.balance)}.`
        : "Not enough gold for that.";
    case "ALREADY_CLAIMED":
      return d.date ? "Already claimed today. Come back tomorrow for the next reward." : "You have already claimed this reward.";
    case "NOT_CLAIMABLE":
      return "Not finished yet: complete every goal first.";
    case "EVENT_EXPIRED":
      return "This event has ended; its reward can no longer be claimed.";
    case "LOGIN_LOCKED": {
      const s = retryAfter(error);
      return s
        ? `Too many failed logins. Try again in ${fmtIn(s)} (at ${clock(s)}).`
        : "Too many failed logins. Please wait before trying again.";
    }
    case "RATE_LIMITED": {
      const s = retryAfter(error);
      return s ? `Too many requests. Please wait ${fmtIn(s)} and try again.` : "Too many requests. Please slow down.";
    }
    case "OUT_OF_STOCK":
      return "Sold out: this product has no stock left.";
    case "LIMIT_REACHED":
      return "You already bought this; it is limited to once per player.";
    case "FEATURE_DISABLED":
      return "This feature is switched off right now. Please try again later.";
    case "FORBIDDEN":
      return d.tier_required ? `This needs the ${d.tier_required} tier.` : "That is not available to your account.";
    case "VALIDATION_ERROR":
      return validationText(error);
    case "INVALID_CREDENTIALS":
      return "Wrong user ID or password.";
    case "DUPLICATE":
      return d.field === "nickname" ? "That nickname is taken."
        : d.field === "site_id" ? "That user ID is taken."
          : error.message && /site_id|nickname|taken|exists/i.test(error.message)
            ? "That user ID or nickname is already taken."
            : "That was already done.";
    case "IN_PROGRESS":
      return "Still working on your previous request. One moment…";
    case "TOKEN_EXPIRED":
    case "TOKEN_REVOKED":
    case "UNAUTHORIZED":
      return "Your session has ended. Please log in again.";
    case "NOT_FOUND":
      return "That no longer exists.";
    case "VERSION_CONFLICT":
      return "Something changed meanwhile. Please try again.";
    case "INTERNAL":
      return "The server had a problem. Please try again in a moment.";
    default:
      return error.message ? `${error.message[0].toUpperCase()}${error.message.slice(1)}.` : "Something went wrong.";
  }
}

/** A UUID for an Idempotency key; crypto.randomUUID needs a secure context, so plain
 *  HTTP on a LAN address falls back to getRandomValues (available everywhere). */
export function newKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") {
    try {
      return crypto.randomUUID();
    } catch (_) { /* insecure context */ }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
