// What the four games share: the one result area, the play request with its
// idempotency key, the retry of a request whose answer was lost, and the bet input.
//
// A click makes a new idempotency key; a retry (the `game-retry` button, shown only
// when the answer never arrived: a network error, a 5xx, or IN_PROGRESS while the first
// attempt still runs) sends the same body with the same key, so the server replays the
// round it already played instead of playing a second one.

export const MAX_BET = 10000; // ccweb/games/config.py DEFAULT_MAX_BET (the server checks it too)

/** True when the request may have been applied but its answer was lost. */
export function retryable(res) {
  if (!res || res.ok) return false;
  const code = res.error && res.error.code;
  return code === "NETWORK" || code === "IN_PROGRESS" || !res.status || res.status >= 500;
}

function setDisabled(buttons, disabled) {
  for (const b of buttons) {
    b.disabled = disabled;
    if (disabled) b.setAttribute("aria-busy", "true");
    else b.removeAttribute("aria-busy");
  }
}

// Kept while the page lives (the shell mounts the view afresh on every visit): each
// game's last result and a play whose answer was lost, so coming back to the view still
// shows the outcome and still offers the retry with the same key, not a new play.
const memory = new Map(); // game → {kind, data?, replayed?, text?, errorCode?, pending?}
const runners = new Set(); // the mounted views' runners (normally one)
let flying = null; // the game whose request is in flight (one play at a time)

const REPLAYED = " (Replayed: the server had already played this round; nothing was charged twice.)";

async function send(ctx, attempt) {
  flying = attempt.game;
  memory.set(attempt.game, { kind: "pending", text: attempt.pendingText || "Playing…", pending: attempt });
  for (const r of runners) r.started(attempt);
  let res;
  try {
    res = await ctx.api.post(attempt.path, attempt.body, { idempotencyKey: attempt.key });
  } catch (err) {
    res = { ok: false, status: 0, error: { code: "NETWORK", message: String(err) } };
  }
  flying = null;
  if (res.ok) {
    memory.set(attempt.game, { kind: "done", data: res.data, replayed: Boolean(res.replayed) });
    let toast = null;
    for (const r of runners) toast = r.applied(attempt.game, res.data) || toast;
    if (toast) ctx.toast(toast, res.data.outcome === "win" ? "success" : "info");
  } else {
    const message = ctx.errorText(res.error);
    const again = retryable(res);
    memory.set(attempt.game, {
      kind: "error",
      text: again ? `${message} The play may or may not have happened: retry to find out (it will not play twice).` : message,
      errorCode: res.error && res.error.code,
      pending: again ? attempt : null,
    });
    for (const r of runners) r.failed(attempt.game, res.error);
    ctx.toast(message, "error");
  }
  for (const r of runners) r.finished(attempt.game);
  return res;
}

/**
 * The runner owns `game-result` and `game-retry`. Each game registers its buttons and
 * how to show a round (`onSuccess(data, {restoring})` → {text, toast?}); switching tabs
 * shows that game's last state.
 */
export function createRunner(ctx) {
  const el = ctx.el;
  const result = el("div", {
    testid: "game-result",
    class: "game-result",
    role: "status",
    "aria-live": "polite",
    "aria-atomic": "true",
  });
  const text = el("p", { class: "game-result-text" });
  const retry = el("button", { testid: "game-retry", type: "button", class: "btn ghost" }, "Retry the same play");
  retry.hidden = true;
  result.append(text, retry);

  const games = new Map(); // game → {buttons, onSuccess, onStart?, onError?}
  const shownText = new Map(); // game → the text of its last round, as this view shows it
  let current = null;

  function render() {
    const s = memory.get(current) || { kind: "idle" };
    const data = s.kind === "done" ? s.data : null;
    result.dataset.state = s.kind;
    result.dataset.game = current || "";
    if (data) result.dataset.roundId = String(data.round_id);
    else delete result.dataset.roundId;
    if (data) result.dataset.outcome = data.outcome;
    else delete result.dataset.outcome;
    if (s.errorCode) result.dataset.errorCode = s.errorCode;
    else delete result.dataset.errorCode;
    result.dataset.replayed = s.replayed ? "true" : "false";
    result.classList.toggle("is-error", s.kind === "error");
    result.classList.toggle("is-win", Boolean(data && data.outcome === "win"));
    text.textContent = data ? `${shownText.get(current) || ""}${s.replayed ? REPLAYED : ""}` : s.text || "";
    retry.hidden = !(s.kind === "error" && s.pending);
    retry.disabled = Boolean(flying);
  }

  function show(game, data, restoring) {
    const g = games.get(game);
    if (!g) return null;
    let shown;
    try {
      shown = g.onSuccess(data, { restoring }) || {};
    } catch (err) {
      shown = { text: `Round ${data && data.round_id} played, but it could not be shown: ${err}` };
    }
    shownText.set(game, shown.text || "");
    return shown.toast || null;
  }

  const self = {
    started(attempt) {
      const g = games.get(attempt.game);
      if (g) {
        setDisabled(g.buttons, true);
        g.onStart?.(attempt.body);
      }
      if (attempt.game === current) render();
    },
    applied(game, data) {
      return show(game, data, false);
    },
    failed(game, error) {
      games.get(game)?.onError?.(error);
    },
    finished(game) {
      const g = games.get(game);
      if (g) setDisabled(g.buttons, false);
      render();
    },
  };
  runners.add(self);

  retry.addEventListener("click", () => {
    const s = memory.get(current);
    if (s && s.pending && !flying) send(ctx, s.pending);
  });

  return {
    element: result,
    /** A game's controls and how to show its rounds. */
    register(game, handlers) {
      games.set(game, handlers);
      const s = memory.get(game);
      if (s && s.kind === "done") show(game, s.data, true); // back to the view
      if (flying === game) setDisabled(handlers.buttons, true);
    },
    /** Show `game`'s state (the tab changed). */
    show(game) {
      current = game;
      render();
    },
    /** Report a problem found before any request (bad input): nothing was sent. */
    invalid(game, message) {
      memory.set(game, { kind: "error", text: message, errorCode: "INPUT" });
      if (game === current) render();
    },
    /** One click: a fresh key, then the request. `spec` = {game, path, body, pendingText?}. */
    play(spec) {
      if (flying) return null;
      return send(ctx, { ...spec, key: ctx.newKey() });
    },
    get busy() {
      return Boolean(flying);
    },
    /** The view is gone: stop updating its elements. */
    dispose() {
      runners.delete(self);
    },
  };
}

/** A labelled whole-gold bet input; `read()` → {bet} or {error}. */
export function betInput(ctx, game, initial = 100) {
  const el = ctx.el;
  const id = `${game}-bet-input`;
  const input = el("input", {
    id,
    testid: `${game}-bet`,
    type: "number",
    inputmode: "numeric",
    min: "1",
    max: String(MAX_BET),
    step: "1",
    class: "bet-input",
  });
  input.value = String(initial);
  const field = el(
    "div",
    { class: "field" },
    el("label", { for: id }, "Bet (gold)"),
    input,
  );
  function read() {
    const raw = input.value.trim();
    const bet = Number(raw);
    if (!raw || !Number.isInteger(bet) || bet < 1) {
      return { error: "Enter a bet: a whole number of gold, at least 1." };
    }
    if (bet > MAX_BET) return { error: `The largest bet is ${MAX_BET.toLocaleString()} gold.` };
    return { bet };
  }
  return { field, input, read };
}

/** "+148 gold" / "−100 gold" / "±0 gold". */
export function signedGold(delta) {
  if (delta > 0) return `+${delta.toLocaleString()} gold`;
  if (delta < 0) return `−${Math.abs(delta).toLocaleString()} gold`;
  return "±0 gold";
}

/** The opening word of a result line. */
export function outcomeWord(outcome) {
  return { win: "Win!", draw: "Draw.", lose: "No win." }[outcome] || "";
}

/** True when the player asked for less motion. */
export function reducedMotion() {
  return Boolean(globalThis.matchMedia && globalThis.matchMedia("(prefers-reduced-motion: reduce)").matches);
}
