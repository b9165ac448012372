// Rock-paper-scissors against a house that picks uniformly at random
// (ccweb/games/engines/rps.py): a win pays the configured multiplier, a draw returns the bet.

import { handIcon } from "./icons.js";
import { betInput, outcomeWord, signedGold } from "./runner.js";
import { loadGameConfig } from "./verify.js";

export const HANDS = ["rock", "paper", "scissors"];

export function create(ctx, runner) {
  const el = ctx.el;
  const bet = betInput(ctx, "rps", 100);
  const mine = el("div", { class: "rps-hand", testid: "rps-player-hand" }, "?");
  const house = el("div", { class: "rps-hand", testid: "rps-house-hand" }, "?");
  const buttons = HANDS.map((choice) =>
    el(
      "button",
      { testid: `rps-${choice}`, type: "button", class: "btn rps-choice", "aria-label": `Play ${choice}` },
      handIcon(choice),
      `${choice[0].toUpperCase()}${choice.slice(1)}`,
    ),
  );

  function hand(node, choice) {
    node.textContent = "";
    node.append(handIcon(choice), el("span", { class: "hand-name" }, choice));
    node.dataset.choice = choice;
  }

  function onSuccess(data) {
    hand(mine, data.choice);
    hand(house, data.house_choice);
    const verdict = { win: "you beat the house", draw: "a draw: your bet comes back", lose: "the house wins" }[data.outcome];
    const text = `${outcomeWord(data.outcome)} Your ${data.choice} vs the house's ${data.house_choice}: ${verdict}. Payout ${data.payout.toLocaleString()} gold (${signedGold(data.gold_delta)}). Round #${data.round_id}.`;
    return { text };
  }

  HANDS.forEach((choice, i) => {
    buttons[i].addEventListener("click", () => {
      const read = bet.read();
      if (read.error) {
        runner.invalid("rps", read.error);
        bet.input.focus();
        return;
      }
      runner.play({ game: "rps", path: "/api/games/rps/play", body: { bet: read.bet, choice }, pendingText: `Playing ${choice}…` });
    });
  });
  runner.register("rps", {
    buttons,
    onStart: (body) => {
      hand(mine, body.choice);
      house.textContent = "…";
    },
    onSuccess,
  });

  const help = el("p", { class: "game-help" }, "Pick a hand. A win pays a multiple of your bet, a draw gives it back.");
  // the win multiplier comes from GET /api/games/config (fetched once per page)
  loadGameConfig(ctx.api)
    .then(({ rps: { win_cents: win } }) => {
      help.textContent = `Pick a hand. A win pays ×${(win / 100).toFixed(2)} your bet, a draw gives it back.`;
    })
    .catch(() => {}); // the text without the number stays
  const panel = el(
    "div",
    { class: "card game-panel game-rps" },
    help,
    el("div", { class: "rps-board" }, el("div", {}, el("span", { class: "rps-who" }, "You"), mine), el("span", { class: "rps-vs" }, "vs"), el("div", {}, el("span", { class: "rps-who" }, "House"), house)),
    el("div", { class: "game-controls" }, bet.field, el("div", { class: "rps-choices", role: "group", "aria-label": "Your hand" }, ...buttons)),
  );
  return { id: "rps", label: "Rock paper scissors", panel, focus: () => buttons[0].focus() };
}
