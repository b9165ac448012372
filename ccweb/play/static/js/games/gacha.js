// Gacha: 1 or 10 pulls at a fixed cost per pull; weighted rarities with a pity
// guarantee of the top rarity (ccweb/games/engines/gacha.py). Each item is paid out at
// its gold value, so the round's payout is the sum of the items.

import { outcomeWord, signedGold } from "./runner.js";
import { loadGameConfig } from "./verify.js";

export const RARITY_LABELS = { common: "Common", rare: "Rare", epic: "Epic", legendary: "Legendary" };

export function create(ctx, runner) {
  const el = ctx.el;
  const pull1 = el("button", { testid: "gacha-pull", type: "button", class: "btn" }, "Pull ×1");
  const pull10 = el("button", { testid: "gacha-pull-10", type: "button", class: "btn" }, "Pull ×10");
  const help = el("p", { class: "game-help" }, "Each pull returns an item worth its gold value: common, rare, epic or legendary. A legendary is guaranteed after a run of pulls without one.");
  // the price and the pity come from GET /api/games/config (fetched once per page)
  loadGameConfig(ctx.api)
    .then(({ gacha: { cost, pity_threshold: pity } }) => {
      pull1.textContent = `Pull ×1 (${cost} gold)`;
      pull10.textContent = `Pull ×10 (${(cost * 10).toLocaleString()} gold)`;
      help.textContent = `Each pull costs ${cost} gold and returns an item worth its gold value: common, rare, epic or legendary. A legendary is guaranteed at least every ${pity} pulls.`;
    })
    .catch(() => {}); // the texts without numbers stay
  const results = el("ol", { class: "gacha-results", testid: "gacha-results", "aria-label": "Pulled items" });
  const pity = el("p", { class: "gacha-pity", testid: "gacha-pity" });

  function onSuccess(data) {
    results.textContent = "";
    data.items.forEach((item, i) => {
      const label = RARITY_LABELS[item.rarity] || item.rarity;
      results.append(
        el(
          "li",
          { class: `gacha-item rarity-${item.rarity}`, testid: `gacha-item-${i}`, "data-rarity": item.rarity },
          el("span", { class: "rarity-label" }, label),
          el("span", { class: "item-id" }, `Item #${item.item_id}`),
          el("span", { class: "item-value" }, `${item.value.toLocaleString()} gold`),
          ...(item.guaranteed ? [el("span", { class: "badge" }, "pity")] : []),
        ),
      );
    });
    pity.textContent = `Top rarity guaranteed within ${data.pulls_to_guarantee} pull${data.pulls_to_guarantee === 1 ? "" : "s"}.`;
    const counts = {};
    for (const item of data.items) counts[item.rarity] = (counts[item.rarity] || 0) + 1;
    const got = Object.entries(counts)
      .map(([r, n]) => `${n} ${RARITY_LABELS[r] || r}`)
      .join(", ");
    const best = data.items.some((i) => i.rarity === "legendary");
    const text = `${outcomeWord(data.outcome)} ${data.count} pull${data.count > 1 ? "s" : ""}: ${got}. Items worth ${data.payout.toLocaleString()} gold for ${data.bet.toLocaleString()} (${signedGold(data.gold_delta)}). Round #${data.round_id}.`;
    return { text, toast: best ? "Legendary pull!" : null };
  }

  function pull(count, button) {
    runner.play({ game: "gacha", path: "/api/games/gacha/pull", body: { count }, pendingText: count === 1 ? "Pulling…" : "Pulling ×10…" });
    button.focus();
  }
  pull1.addEventListener("click", () => pull(1, pull1));
  pull10.addEventListener("click", () => pull(10, pull10));
  runner.register("gacha", { buttons: [pull1, pull10], onSuccess });

  const panel = el(
    "div",
    { class: "card game-panel game-gacha" },
    help,
    el("div", { class: "game-controls" }, pull1, pull10),
    pity,
    results,
  );
  return { id: "gacha", label: "Gacha", panel, focus: () => pull1.focus() };
}
