// Profile: account, level, per-game stats, achievements (claimable ones have a button),
// inventory and recent actions — GET /api/profile, read again when a push says the
// stats, achievements or purchases changed.

import { completion, fmtGold, fmtTime, progressBar, progressText, rerender, rewardText } from "../ui.js";

const GAMES = { slot: "Slots", gacha: "Gacha", rps: "Rock-paper-scissors", crash: "Crash" };
const XP_PER_LEVEL = 500;

export function mount(root, ctx) {
  const { el } = ctx;
  let profile = null;
  let failed = null;
  let timer = null;
  let gone = false;
  const busy = new Set();

  async function load() {
    const res = await ctx.api.get("/api/profile");
    if (gone) return;
    if (res.ok) {
      profile = res.data;
      failed = null;
    } else failed = ctx.errorText(res.error);
    render();
  }

  /** Coalesce a burst of pushes (a round brings several) into one reload. */
  function reloadSoon() {
    clearTimeout(timer);
    timer = setTimeout(load, 300);
  }

  async function claim(a) {
    const key = `achievement-claim-${a.id}`;
    if (busy.has(key)) return;
    busy.add(key);
    render();
    const res = await ctx.api.post(`/api/achievements/${a.id}/claim`, {}, { idempotencyKey: ctx.newKey() });
    busy.delete(key);
    if (!res.ok) ctx.toast(ctx.errorText(res.error), "error");
    await load();
  }

  function accountCard(p) {
    const snap = ctx.state();
    const live = (snap && snap.profile) || p; // the header's numbers: pushed, newest
    const xp = Number(live.experience_points) || 0;
    const level = Number(live.level) || 1;
    const into = Math.max(0, xp - (level - 1) * XP_PER_LEVEL);
    return el("article", { class: "card", testid: "profile-account", "aria-labelledby": "acct-h" },
      el("h2", { id: "acct-h" }, p.nickname, el("span", { class: "badge gold", testid: "profile-tier" }, p.tier)),
      el("dl", { class: "facts" },
        el("dt", {}, "User ID"), el("dd", {}, p.site_id),
        el("dt", {}, "Level"), el("dd", { testid: "profile-level" }, String(level)),
        el("dt", {}, "Experience"), el("dd", {}, `${fmtGold(xp)} XP (${fmtGold(Math.max(0, level * XP_PER_LEVEL - xp))} to level ${level + 1})`),
        el("dt", {}, "Gold"), el("dd", { testid: "profile-gold" }, fmtGold(live.gold_balance)),
        el("dt", {}, "Purchases"), el("dd", {}, String(p.purchases_count ?? 0)),
        el("dt", {}, "Member since"), el("dd", {}, fmtTime(p.created_at))),
      progressBar({ percent: (100 * into) / XP_PER_LEVEL, label: "Progress to the next level", valueText: `${into} of ${XP_PER_LEVEL} XP` }));
  }

  function statsCard(p) {
    const st = p.stats || {};
    const games = st.games || {};
    return el("article", { class: "card", testid: "profile-stats", "aria-labelledby": "stats-h" },
      el("h2", { id: "stats-h" }, "Stats"),
      el("div", { class: "row" },
        el("div", {}, el("div", { class: "big", testid: "stats-total" }, fmtGold(st.total_games_played || 0)), el("div", { class: "muted small" }, "rounds played")),
        el("div", {}, el("div", { class: "big" }, `${Math.round((st.win_rate || 0) * 100)}%`), el("div", { class: "muted small" }, "win rate")),
        el("div", {}, el("div", { class: "big" }, fmtGold(st.overall_max_win || 0)), el("div", { class: "muted small" }, "biggest win"))),
      el("div", { class: "table-wrap" },
        el("table", {},
          el("caption", { class: "sr-only" }, "Rounds per game"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Game"), el("th", { scope: "col", class: "num" }, "Played"), el("th", { scope: "col", class: "num" }, "Won"), el("th", { scope: "col", class: "num" }, "Lost"), el("th", { scope: "col", class: "num" }, "Best win"))),
          el("tbody", {}, Object.entries(GAMES).map(([key, name]) => {
            const g = games[key] || {};
            return el("tr", { testid: `stats-${key}` }, el("th", { scope: "row" }, name), el("td", { class: "num" }, fmtGold(g.total || 0)), el("td", { class: "num" }, fmtGold(g.wins || 0)), el("td", { class: "num" }, fmtGold(g.losses || 0)), el("td", { class: "num" }, fmtGold(g.max_win || 0)));
          })))));
  }

  function achievementsCard(p) {
    const list = p.achievements || [];
    return el("article", { class: "card", testid: "profile-achievements", "aria-labelledby": "ach-h" },
      el("h2", { id: "ach-h" }, "Achievements"),
      list.length ? el("ul", { class: "list" }, list.map((a) => {
        const key = `achievement-claim-${a.id}`;
        const action = a.status === "unlocked"
          ? el("button", { type: "button", class: "btn small gold", testid: key, disabled: busy.has(key), onclick: () => claim(a) }, `Claim ${rewardText(a.reward_items)}`)
          : el("span", { class: a.status === "claimed" ? "badge ok" : a.status === "locked" ? "badge" : "badge gold" }, a.status);
        return el("li", { testid: `achievement-${a.id}`, "data-status": a.status },
          el("div", { class: "row" }, el("div", {}, el("h3", {}, a.title), el("div", { class: "muted small" }, a.description || "")), action),
          a.status === "locked" ? progressBar({ percent: completion(a.progress), label: `${a.title} progress`, valueText: progressText(a.progress) }) : null);
      })) : el("p", { class: "muted" }, "No achievements yet."));
  }

  function inventoryCard(p) {
    const items = p.inventory || [];
    const actions = p.recent_actions || [];
    return el("article", { class: "card", testid: "profile-inventory", "aria-labelledby": "inv-h" },
      el("h2", { id: "inv-h" }, "Inventory"),
      items.length
        ? el("ul", { class: "list" }, items.map((it) => el("li", { class: "row" }, el("span", {}, String(it.name || it.code || it.item_code || "item")), el("strong", {}, `× ${fmtGold(it.quantity ?? 1)}`))))
        : el("p", { class: "muted" }, "Nothing yet — the shop has packs with items."),
      el("h3", { class: "muted spaced" }, "Recent actions"),
      actions.length
        ? el("ul", { class: "list small" }, actions.map((a) => el("li", { class: "row" }, el("span", {}, a.action_type), el("span", { class: "muted" }, fmtTime(a.created_at)))))
        : el("p", { class: "muted small" }, "None yet."));
  }

  function render() {
    rerender(root, () => {
      const head = el("h1", {}, "Profile");
      if (failed && !profile) return [head, el("p", { class: "notice error", role: "alert" }, failed, " ", el("button", { type: "button", class: "btn small ghost", onclick: load }, "Try again"))];
      if (!profile) return [head, el("p", { class: "muted", role: "status" }, "Loading…")];
      return [head, el("div", { class: "grid two" }, accountCard(profile), statsCard(profile), achievementsCard(profile), inventoryCard(profile))];
    });
  }

  for (const type of ["stats_update", "achievement_progress", "purchase_update", "reward_granted"]) ctx.live.on(type, reloadSoon);
  ctx.onState(render); // gold/level in the account card follow the pushes at once
  render();
  load();
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}
