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

/**
 * The runner owns `game-result` and `game-retry`. Each game keeps its own last result
 * and pending retry (switching tabs shows that game's).
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

  const states = new Map(); // game → {kind, text, roundId, outcome, pending, errorCode}
  let current = null;
  let inFlight = false;

  function render() {
    const s = states.get(current) || { kind: "idle", text: "" };
    result.dataset.state = s.kind;
    result.dataset.game = current || "";
    if (s.roundId) result.dataset.roundId = String(s.roundId);
    else delete result.dataset.roundId;
    if (s.outcome) result.dataset.outcome = s.outcome;
    else delete result.dataset.outcome;
    if (s.errorCode) result.dataset.errorCode = s.errorCode;
    else delete result.dataset.errorCode;
    result.dataset.replayed = s.replayed ? "true" : "false";
    result.classList.toggle("is-error", s.kind === "error");
    result.classList.toggle("is-win", s.outcome === "win");
    text.textContent = s.text || "";
    retry.hidden = !(s.kind === "error" && s.pending);
    retry.disabled = inFlight;
  }

  async function send(attempt) {
    inFlight = true;
    setDisabled(attempt.buttons, true);
    states.set(attempt.game, { kind: "pending", text: attempt.pendingText || "Playing…", pending: attempt });
    if (attempt.game === current) render();
    attempt.onStart?.();
    let res;
    try {
      res = await ctx.api.post(attempt.path, attempt.body, { idempotencyKey: attempt.key });
    } catch (err) {
      res = { ok: false, status: 0, error: { code: "NETWORK", message: String(err) } };
    }
    inFlight = false;
    setDisabled(attempt.buttons, false);
    if (res.ok) {
      let shown;
      try {
        shown = attempt.onSuccess(res.data) || {};
      } catch (err) {
        shown = { text: `Round ${res.data && res.data.round_id} played, but it could not be shown: ${err}` };
      }
      const again = res.replayed ? " (Replayed: the server had already played this round; nothing was charged twice.)" : "";
      states.set(attempt.game, {
        kind: "done",
        text: `${shown.text || ""}${again}`,
        outcome: res.data.outcome,
        roundId: res.data.round_id,
        replayed: Boolean(res.replayed),
      });
      if (shown.toast) ctx.toast(shown.toast, res.data.outcome === "win" ? "success" : "info");
    } else {
      attempt.onError?.(res.error);
      const message = ctx.errorText(res.error);
      const again = retryable(res);
      states.set(attempt.game, {
        kind: "error",
        text: again ? `${message} The play may or may not have happened: retry to find out (it will not play twice).` : message,
        errorCode: res.error && res.error.code,
        pending: again ? attempt : null,
      });
      ctx.toast(message, "error");
    }
    if (attempt.game === current) render();
    return res;
  }

  retry.addEventListener("click", () => {
    const s = states.get(current);
    if (s && s.pending && !inFlight) send(s.pending);
  });

  return {
    element: result,
    /** Show `game`'s state (the tab changed). */
    show(game) {
      current = game;
      render();
    },
    /** Report a problem found before any request (bad input): nothing was sent. */
    invalid(game, message) {
      states.set(game, { kind: "error", text: message, errorCode: "INPUT" });
      if (game === current) render();
    },
    /**
     * One click: a fresh key, then the request. `spec` = {game, path, body, buttons,
     * onSuccess(data) → {text, toast?}, onStart?, onError?(error), pendingText?}.
     */
    play(spec) {
      if (inFlight) return null;
      return send({ ...spec, key: ctx.newKey() });
    },
    get busy() {
      return inFlight;
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
