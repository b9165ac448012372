// The shell: session (login screen or the app), header (balance, level, XP, live status),
// navigation between views, the realtime connection and the context every view gets.
//
// View modules export mount(root, ctx) and may return an unmount function. ctx:
//   api.get(path) / api.post(path, body, {idempotencyKey}) / api.put(path, body)
//       → Promise<{ok, status, data, error}>
//   live.on(type | "*", handler) → unsubscribe      handler(message {type, user_id, data, timestamp, seq})
//   toast(text, "info" | "success" | "error")
//   errorText(error) → a sentence for the player
//   state() → the dashboard snapshot; onState(handler) → unsubscribe
//   newKey() → a fresh idempotency key
//   el(tag, attrs, ...children)
//   navigate(view)
// Subscriptions made through ctx end by themselves when the view is left.

import { Api } from "./api.js";
import { Live } from "./realtime.js";
import { Store, levelOf } from "./state.js";
import { el, errorText, fmtGold, fmtSigned, newKey, rewardText, toast } from "./ui.js";

const VIEWS = {
  dashboard: "Home",
  games: "Games",
  shop: "Shop",
  fairness: "Fairness",
  profile: "Profile",
  history: "History",
};
const DEFAULT_VIEW = "dashboard";
const SNAPSHOT_FALLBACK_MS = 4000;
const XP_PER_LEVEL = 500;

const $ = (id) => document.getElementById(id);
const store = new Store();
const handlers = new Map(); // message type ("*" = all) → Set of handlers
let current = null; // {name, unmount, cleanups}
let mountSeq = 0;
let shown = false; // the app (not the login screen) is on screen
let fallbackTimer = null;

const api = new Api({
  onTokens: (session) => live.tokenRefreshed(session.access_token),
  onSessionEnded: (error) => endSession(errorText(error)),
});

const live = new Live({
  token: () => api.accessToken,
  refresh: () => api.refresh(),
  onMessage: receive,
  onStatus: showStatus,
});

// -- realtime messages -----------------------------------------------------------------
function receive(msg) {
  const notes = announcements(msg);
  store.apply(msg);
  for (const [text, kind] of notes) toast(text, kind);
  for (const key of [msg.type, "*"]) {
    for (const fn of [...(handlers.get(key) || [])]) {
      try {
        fn(msg);
      } catch (exc) {
        console.error(`live handler for ${msg.type} failed`, exc);
      }
    }
  }
}

/** Toasts for a push, read before the store applies it (to see what changed). */
function announcements(msg) {
  const d = msg.data || {};
  const s = store.get();
  const out = [];
  switch (msg.type) {
    case "reward_granted": {
      const from = { event: "Event reward", mission: "Mission reward", achievement: "Achievement reward" }[d.source_type] || "Reward";
      out.push([`${from}: ${rewardText(d.reward_items) || "received"}`, "success"]);
      break;
    }
    case "purchase_update": {
      if (d.settlement_status) {
        out.push([`Purchase #${d.tx_id} ${d.settlement_status}${d.gold_delta ? ` (${fmtSigned(d.gold_delta)} gold)` : ""}`, d.settlement_status === "voided" ? "error" : "info"]);
      } else {
        const product = s && (s.shop_highlights || []).find((p) => p.sku === d.sku);
        const name = d.name || (product && product.name) || d.sku || "item";
        out.push([`Purchase complete: ${name}${d.gold_amount ? ` (+${fmtGold(d.gold_amount)} gold)` : ""}`, "success"]);
      }
      break;
    }
    case "achievement_progress":
      if (d.status === "unlocked") out.push([`Achievement unlocked: ${d.title || d.code}! Claim it in your profile.`, "success"]);
      break;
    case "streak_update":
      if (d.reward) out.push([`Day ${d.count} streak: +${fmtGold(d.reward.gold)} gold, +${fmtGold(d.reward.xp)} XP`, "success"]);
      break;
    case "profile_update":
      if (d.level_up && d.level) out.push([`Level up! You reached level ${d.level}.`, "success"]);
      else if (d.cause === "admin" && d.delta) out.push([`Your gold was adjusted by ${fmtSigned(d.delta)}.`, "info"]);
      break;
    case "event_progress":
      for (const item of d.items || []) {
        const ev = s && (s.active_events || []).find((e) => e.id === item.event_id);
        const before = ev && ev.participation ? ev.participation.status : null;
        if (ev && item.status === "claimable" && before !== "claimable") out.push([`Event complete: ${ev.title}. Claim your reward!`, "success"]);
      }
      break;
    case "mission_update":
      for (const item of d.items || []) {
        const all = s && s.missions ? [...(s.missions.daily || []), ...(s.missions.weekly || [])] : [];
        const m = all.find((x) => x.id === item.mission_id);
        if (m && item.status === "claimable" && m.status !== "claimable") out.push([`Mission complete: ${m.title}. Claim your reward!`, "success"]);
      }
      break;
    default:
      break;
  }
  // a backfilled push the snapshot already covers still tells what happened while away
  return out;
}

function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type) && handlers.get(type).delete(fn);
}

// -- header ----------------------------------------------------------------------------
let shownBalance = null;

function renderHeader(snapshot) {
  const p = snapshot && snapshot.profile;
  if (!p) return;
  const balance = $("balance");
  const value = Number(p.gold_balance) || 0;
  balance.textContent = fmtGold(value);
  balance.dataset.value = String(value);
  if (shownBalance !== null && shownBalance !== value) {
    balance.classList.remove("bump");
    void balance.offsetWidth; // restart the animation
    balance.classList.add("bump");
  }
  shownBalance = value;
  const xp = Number(p.experience_points) || 0;
  const level = Number(p.level) || levelOf(xp);
  const into = Math.max(0, Math.min(XP_PER_LEVEL, xp - (level - 1) * XP_PER_LEVEL));
  $("level").textContent = `Lv ${level}`;
  $("level").setAttribute("aria-label", `Level ${level}`);
  $("level").dataset.value = String(level);
  const bar = $("xp-bar");
  bar.setAttribute("aria-valuenow", String(into));
  bar.setAttribute("aria-valuetext", `${into} of ${XP_PER_LEVEL} XP to level ${level + 1}`);
  bar.dataset.xp = String(xp);
  bar.title = `${fmtGold(xp)} XP · ${fmtGold(XP_PER_LEVEL - into)} to level ${level + 1}`;
  bar.firstElementChild.style.width = `${(100 * into) / XP_PER_LEVEL}%`;
  $("nickname").textContent = p.nickname || (api.user && api.user.nickname) || "";
}

function showStatus({ state, transport, retryInMs }) {
  const box = $("live-status");
  box.dataset.state = state;
  box.dataset.transport = transport || "";
  box.textContent =
    state === "live" ? (transport === "sse" ? "Live (SSE)" : "Live")
      : state === "connecting" ? "Connecting…"
        : state === "reconnecting" ? `Reconnecting${retryInMs ? ` in ${Math.max(1, Math.round(retryInMs / 1000))} s` : ""}…`
          : "Offline";
  if (state === "live") clearTimeout(fallbackTimer);
}

// -- views -----------------------------------------------------------------------------
function viewFromHash() {
  const name = (location.hash || "").replace(/^#\/?/, "");
  return Object.hasOwn(VIEWS, name) ? name : DEFAULT_VIEW;
}

function navigate(name) {
  const target = `#/${Object.hasOwn(VIEWS, name) ? name : DEFAULT_VIEW}`;
  if (location.hash === target) mountView(viewFromHash(), true);
  else location.hash = target;
}

function scopedContext(cleanups) {
  const track = (unsub) => {
    cleanups.push(unsub);
    return unsub;
  };
  return {
    api: {
      get: (path) => api.get(path),
      post: (path, body, opts) => api.post(path, body, opts),
      put: (path, body) => api.put(path, body),
    },
    live: { on: (type, fn) => track(on(type, fn)) },
    toast,
    errorText,
    state: () => store.get(),
    onState: (fn) => track(store.subscribe(fn)),
    update: (fn) => store.update(fn),
    newKey,
    el,
    navigate,
  };
}

function unmountCurrent() {
  if (!current) return;
  const { unmount, cleanups } = current;
  current = null;
  for (const fn of cleanups) {
    try {
      fn();
    } catch (_) { /* already gone */ }
  }
  if (typeof unmount === "function") {
    try {
      unmount();
    } catch (exc) {
      console.error("unmount failed", exc);
    }
  }
}

async function mountView(name, moveFocus) {
  const seq = ++mountSeq;
  unmountCurrent();
  for (const b of document.querySelectorAll("#tabs button")) {
    if (b.dataset.view === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  document.title = `${VIEWS[name]} · Casino-Club`;
  const main = $("view");
  const root = el("section", { class: "view", "data-view": name, "aria-label": VIEWS[name] });
  main.replaceChildren(root);
  const cleanups = [];
  current = { name, unmount: null, cleanups };
  let mod;
  try {
    mod = await import(`./views/${name}.js`);
  } catch (exc) {
    if (seq !== mountSeq) return;
    console.error(`view ${name} failed to load`, exc);
    root.replaceChildren(
      el("h1", {}, VIEWS[name]),
      el("p", { class: "notice error", role: "alert", testid: "view-error" }, `The ${VIEWS[name]} section could not be loaded. Please reload the page.`),
    );
    return;
  }
  if (seq !== mountSeq) return;
  try {
    current.unmount = mod.mount(root, scopedContext(cleanups)) || null;
  } catch (exc) {
    console.error(`view ${name} failed`, exc);
    root.append(el("p", { class: "notice error", role: "alert", testid: "view-error" }, "This section failed to start. Please reload the page."));
  }
  if (moveFocus) main.focus({ preventScroll: false });
}

// -- session ---------------------------------------------------------------------------
async function showApp() {
  // a page reopened with an old token: renew it first, so the socket opens at once
  if (api.loggedIn && api.remaining < 30) {
    await api.refresh(); // a network failure keeps the session: the socket will retry
    if (!api.loggedIn) {
      if (!current) showAuth(errorText({ code: "TOKEN_EXPIRED" }));
      return;
    }
  }
  shown = true;
  $("topbar").hidden = false;
  $("tabs").hidden = false;
  if (api.user) $("nickname").textContent = api.user.nickname || "";
  live.start();
  // no snapshot over the socket yet (blocked, slow)? read it once over HTTP
  clearTimeout(fallbackTimer);
  fallbackTimer = setTimeout(async () => {
    if (store.get() || !api.loggedIn) return;
    const res = await api.get("/api/dashboard");
    if (res.ok && !store.get()) store.replace(res.data);
  }, SNAPSHOT_FALLBACK_MS);
  mountView(viewFromHash(), false);
}

async function showAuth(message) {
  shown = false;
  unmountCurrent();
  live.stop();
  store.reset();
  shownBalance = null;
  clearTimeout(fallbackTimer);
  $("topbar").hidden = true;
  $("tabs").hidden = true;
  $("balance").textContent = "–";
  $("balance").dataset.value = "";
  document.title = "Casino-Club";
  const root = el("section", { class: "view", "data-view": "auth" });
  $("view").replaceChildren(root);
  const seq = ++mountSeq;
  const mod = await import("./views/auth.js");
  if (seq !== mountSeq) return;
  const ctx = {
    ...scopedContext([]),
    message,
    login: (siteId, password) => api.login(siteId, password),
    signup: (fields) => api.signup(fields),
    done: () => showApp(),
  };
  current = { name: "auth", unmount: mod.mount(root, ctx) || null, cleanups: [] };
}

function endSession(message) {
  if (shown || current) showAuth(message);
}

async function logout() {
  $("logout").disabled = true;
  live.stop();
  await api.logout();
  $("logout").disabled = false;
  toast("You are logged out.", "info");
  showAuth();
}

// -- start -----------------------------------------------------------------------------
store.subscribe(renderHeader);
$("logout").addEventListener("click", logout);
$("tabs").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-view]");
  if (b) navigate(b.dataset.view);
});
window.addEventListener("hashchange", () => {
  if (shown) mountView(viewFromHash(), true);
});
if (api.loggedIn) showApp();
else showAuth();
