// Reward history: the player's ledger, newest first (GET /api/rewards/history), with
// "Load more" by before_id. A push that moves gold reloads the first page.

import { fmtGold, fmtShort, fmtSigned, fmtTime, rerender } from "../ui.js";

const PAGE = 25;
const SOURCES = {
  signup: "Welcome bonus",
  streak: "Daily streak",
  game: "Game round",
  game_bet: "Game bet",
  game_win: "Game win",
  event: "Event reward",
  mission: "Mission reward",
  achievement: "Achievement reward",
  shop: "Shop",
  purchase: "Shop",
  admin: "Adjustment",
};

export function mount(root, ctx) {
  const { el } = ctx;
  let rows = [];
  let next = null;
  let failed = null;
  let loading = true;
  let gone = false;
  let timer = null;

  async function load(more = false) {
    loading = true;
    render();
    const before = more && next ? `&before_id=${next}` : "";
    const res = await ctx.api.get(`/api/rewards/history?limit=${PAGE}${before}`);
    if (gone) return;
    loading = false;
    if (!res.ok) {
      failed = ctx.errorText(res.error);
    } else {
      failed = null;
      rows = more ? [...rows, ...res.data.items] : res.data.items;
      next = res.data.next_before_id;
    }
    render();
  }

  function reloadSoon() {
    clearTimeout(timer);
    timer = setTimeout(() => load(false), 400);
  }

  function row(r) {
    const delta = Number(r.delta_gold) || 0;
    return el("tr", { testid: `history-row-${r.id}` },
      el("td", {}, el("time", { datetime: r.created_at, title: fmtTime(r.created_at) }, fmtShort(r.created_at))),
      el("td", {}, SOURCES[r.source_type] || r.source_type, el("div", { class: "muted small" }, r.reason || "")),
      el("td", { class: `num ${delta > 0 ? "pos" : delta < 0 ? "neg" : ""}` }, fmtSigned(delta)),
      el("td", { class: "num" }, fmtGold(r.balance_after)));
  }

  function render() {
    rerender(root, () => [
      el("div", { class: "view-title" }, el("h1", {}, "Reward history"), el("span", { class: "muted small" }, "Every gold change on your account")),
      failed ? el("p", { class: "notice error", role: "alert" }, failed) : null,
      el("div", { class: "card table-wrap" },
        el("table", { testid: "history-table", "aria-busy": loading ? "true" : "false" },
          el("caption", { class: "sr-only" }, "Ledger entries, newest first"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "When"), el("th", { scope: "col" }, "What"), el("th", { scope: "col", class: "num" }, "Gold"), el("th", { scope: "col", class: "num" }, "Balance"))),
          el("tbody", {}, rows.map(row))),
        !rows.length && !loading && !failed ? el("p", { class: "muted" }, "No entries yet.") : null,
        loading ? el("p", { class: "muted", role: "status" }, "Loading…") : null),
      next ? el("button", { type: "button", class: "btn ghost spaced", testid: "history-more", disabled: loading, onclick: () => load(true) }, "Load more") : null,
    ]);
  }

  for (const type of ["profile_update", "reward_granted", "purchase_update"]) ctx.live.on(type, reloadSoon);
  load(false);
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}
