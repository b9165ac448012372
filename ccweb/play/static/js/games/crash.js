// Crash with an automatic cash-out (ccweb/games/engines/crash.py): the player names a
// multiplier; the round names a crash point; the bet pays floor(bet × cash-out) when
// the cash-out is at or below the crash point. The server settles the round at once,
// so the climbing meter here is only a short replay of the result (skipped under
// prefers-reduced-motion).

import { betInput, outcomeWord, reducedMotion, signedGold } from "./runner.js";

export const MIN_CASHOUT = 1.01;
export const MAX_CASHOUT = 1000;
const CLIMB_MS = 700;

/** The cash-out field's value → {value} or {error} (at most two decimals). */
export function readCashout(raw) {
  const text = String(raw).trim();
  const value = Number(text);
  if (!text || !Number.isFinite(value)) return { error: "Enter an auto cash-out multiplier such as 2.00." };
  if (value < MIN_CASHOUT || value > MAX_CASHOUT) {
    return { error: `The auto cash-out must be between ${MIN_CASHOUT.toFixed(2)} and ${MAX_CASHOUT.toFixed(2)}.` };
  }
  if (Math.abs(value * 100 - Math.round(value * 100)) > 1e-9) {
    return { error: "The auto cash-out has at most two decimals." };
  }
  return { value: Math.round(value * 100) / 100 };
}

export function create(ctx, runner) {
  const el = ctx.el;
  const bet = betInput(ctx, "crash", 100);
  const cashoutId = "crash-cashout-input";
  const cashout = el("input", {
    id: cashoutId,
    testid: "crash-cashout",
    type: "number",
    inputmode: "decimal",
    min: String(MIN_CASHOUT),
    max: String(MAX_CASHOUT),
    step: "0.01",
    class: "bet-input",
  });
  cashout.value = "2.00";
  const play = el("button", { testid: "crash-play", type: "button", class: "btn" }, "Place bet");
  const meter = el("div", { class: "crash-meter", testid: "crash-meter", "aria-hidden": "true" }, "×1.00");
  const summary = el("p", { class: "crash-summary", testid: "crash-summary" });
  let frame = 0;

  function climb(to, crashed, animate) {
    cancelAnimationFrame(frame);
    meter.classList.remove("crashed", "cashed");
    const finish = () => {
      meter.textContent = `×${to.toFixed(2)}`;
      meter.classList.add(crashed ? "crashed" : "cashed");
    };
    if (!animate || reducedMotion() || to <= 1) {
      finish();
      return;
    }
    // exponential growth from 1.00 to `to` in CLIMB_MS (feels like a crash chart)
    const start = performance.now();
    const step = (now) => {
      const t = Math.min(1, (now - start) / CLIMB_MS);
      if (t >= 1) {
        finish();
        return;
      }
      meter.textContent = `×${Math.pow(to, t).toFixed(2)}`;
      frame = requestAnimationFrame(step);
    };
    frame = requestAnimationFrame(step);
  }

  function onSuccess(data, { restoring = false } = {}) {
    const won = data.cashed_out_at !== null && data.cashed_out_at !== undefined;
    climb(won ? data.cashed_out_at : data.crash_point, !won, !restoring);
    const point = `×${data.crash_point.toFixed(2)}`;
    const target = `×${data.auto_cashout.toFixed(2)}`;
    summary.textContent = won
      ? `Cashed out at ${target}; the round crashed at ${point}.`
      : `Crashed at ${point} before your cash-out at ${target}.`;
    const text = `${outcomeWord(data.outcome)} Crash point ${point}, your cash-out ${target}: ${won ? "cashed out" : "crashed first"}. Payout ${data.payout.toLocaleString()} gold (${signedGold(data.gold_delta)}). Round #${data.round_id}.`;
    return { text, toast: won && data.auto_cashout >= 10 ? `Cashed out at ${target}!` : null };
  }

  play.addEventListener("click", () => {
    const read = bet.read();
    if (read.error) {
      runner.invalid("crash", read.error);
      bet.input.focus();
      return;
    }
    const target = readCashout(cashout.value);
    if (target.error) {
      runner.invalid("crash", target.error);
      cashout.focus();
      return;
    }
    runner.play({ game: "crash", path: "/api/games/crash/bet", body: { bet: read.bet, auto_cashout: target.value }, pendingText: "Launching…" });
  });
  runner.register("crash", {
    buttons: [play],
    onStart: () => {
      cancelAnimationFrame(frame);
      meter.classList.remove("crashed", "cashed");
      meter.textContent = "×1.00";
    },
    onSuccess,
  });

  const panel = el(
    "div",
    { class: "card game-panel game-crash" },
    el("p", { class: "game-help" }, "The multiplier climbs until it crashes. Set where you cash out: if the round reaches it, you win your bet times that multiplier."),
    meter,
    summary,
    el(
      "div",
      { class: "game-controls" },
      bet.field,
      el("div", { class: "field" }, el("label", { for: cashoutId }, "Auto cash-out (×)"), cashout),
      play,
    ),
  );
  return { id: "crash", label: "Crash", panel, focus: () => play.focus() };
}
