// Slot: 3 reels × 3 rows, five paylines (ccweb/games/engines/slot.py).
// `reels` in a round is reel-major: reels[reel][row], row 0 = top.

import { symbolIcon } from "./icons.js";
import { betInput, outcomeWord, reducedMotion, signedGold } from "./runner.js";

// ccweb/games/config.py FIVE_PAYLINES, in order
export const LINE_NAMES = ["middle row", "top row", "bottom row", "diagonal ↘", "diagonal ↗"];

const SPIN_SYMBOLS = ["cherry", "lemon", "orange", "bell", "bar", "seven"];

export function create(ctx, runner) {
  const el = ctx.el;
  const bet = betInput(ctx, "slot", 100);
  const cells = [];
  const reelEls = [];
  for (let c = 0; c < 3; c += 1) {
    const col = [];
    const reel = el("div", { class: "reel", role: "group", "aria-label": `Reel ${c + 1}` });
    for (let r = 0; r < 3; r += 1) {
      const sym = SPIN_SYMBOLS[(c * 2 + r) % SPIN_SYMBOLS.length];
      const cell = el("div", { class: `reel-cell sym-${sym}`, testid: `slot-cell-${c}-${r}` });
      setSymbol(cell, sym);
      col.push(cell);
      reel.append(cell);
    }
    cells.push(col);
    reelEls.push(reel);
  }
  const reels = el("div", { class: "slot-reels", testid: "slot-reels", "aria-label": "Reels" }, ...reelEls);
  const lines = el("ul", { class: "slot-lines", testid: "slot-lines", "aria-label": "Winning lines" });
  const spin = el("button", { testid: "slot-spin", type: "button", class: "btn gold" }, "Spin");

  function setSymbol(cell, sym) {
    cell.textContent = "";
    cell.append(symbolIcon(sym), el("span", { class: "sym-name" }, sym));
    cell.dataset.symbol = sym;
    cell.className = `reel-cell sym-${sym}`;
  }

  function show(data, animate) {
    const win = new Set();
    for (const line of data.lines) {
      line.rows.forEach((row, reel) => {
        if (reel < line.count) win.add(`${reel}-${row}`);
      });
    }
    for (let c = 0; c < 3; c += 1) {
      for (let r = 0; r < 3; r += 1) {
        const cell = cells[c][r];
        setSymbol(cell, data.reels[c][r]);
        cell.classList.toggle("win", win.has(`${c}-${r}`));
      }
    }
    reels.classList.remove("spinning");
    if (animate && !reducedMotion()) {
      reels.classList.remove("stopping");
      void reels.offsetWidth; // restart the CSS animation
      reels.classList.add("stopping");
    }
    lines.textContent = "";
    for (const line of data.lines) {
      lines.append(
        el(
          "li",
          {},
          `${LINE_NAMES[line.line] || `line ${line.line + 1}`}: ${line.count} × ${line.symbol} pays ×${line.multiplier}`,
        ),
      );
    }
    reels.setAttribute(
      "aria-label",
      `Reels: ${[0, 1, 2].map((r) => data.reels.map((reel) => reel[r]).join(", ")).join(" / ")}`,
    );
  }

  function onSuccess(data, { restoring = false } = {}) {
    show(data, !restoring);
    const detail = data.lines.length
      ? `×${data.multiplier} on ${data.lines.length} line${data.lines.length > 1 ? "s" : ""}`
      : "no winning line";
    const text = `${outcomeWord(data.outcome)} Payout ${data.payout.toLocaleString()} gold on a ${data.bet.toLocaleString()} bet (${signedGold(data.gold_delta)}), ${detail}. Round #${data.round_id}.`;
    return { text, toast: data.outcome === "win" ? `Slot win: ${data.payout.toLocaleString()} gold` : null };
  }

  spin.addEventListener("click", () => {
    const read = bet.read();
    if (read.error) {
      runner.invalid("slot", read.error);
      bet.input.focus();
      return;
    }
    runner.play({ game: "slot", path: "/api/games/slot/spin", body: { bet: read.bet }, pendingText: "Spinning…" });
  });
  runner.register("slot", {
    buttons: [spin],
    onStart: () => {
      if (!reducedMotion()) reels.classList.add("spinning");
    },
    onError: () => reels.classList.remove("spinning"),
    onSuccess,
  });

  const panel = el(
    "div",
    { class: "card game-panel game-slot" },
    el("p", { class: "game-help" }, "Three reels, five paylines (three rows, two diagonals). Matching symbols from the left pay a multiple of your bet."),
    reels,
    el("div", { class: "game-controls" }, bet.field, spin),
    lines,
  );
  return { id: "slot", label: "Slot", panel, focus: () => spin.focus() };
}
