// Home: the daily streak, active events and daily/weekly missions with their progress,
// from the shared snapshot (initial_state, then pushes). Buttons call the API; the
// money they pay shows up in the header when the server pushes it.

import { completion, fmtGold, fmtUntil, progressBar, progressText, rerender, rewardText } from "../ui.js";

export function mount(root, ctx) {
  const { el } = ctx;
  const busy = new Set(); // testids of buttons whose request is in flight

  async function act(testid, run) {
    if (busy.has(testid)) return;
    busy.add(testid);
    render();
    try {
      await run();
    } finally {
      busy.delete(testid);
      render();
    }
  }

  function button(testid, label, attrs, run) {
    return el("button", { type: "button", class: "btn small", testid, ...attrs, disabled: busy.has(testid) || attrs.disabled, "aria-busy": busy.has(testid) ? "true" : null, onclick: () => act(testid, run) }, label);
  }

  // -- streak --------------------------------------------------------------------------
  function streakCard(s) {
    const streak = s.streak || { count: 0, claimed_today: false, next_reward: null };
    const next = streak.next_reward;
    return el(
      "article",
      { class: "card", testid: "streak", "aria-labelledby": "streak-h" },
      el("h2", { id: "streak-h" }, "Daily streak", streak.claimed_today ? el("span", { class: "badge ok" }, "claimed today") : el("span", { class: "badge gold" }, "ready")),
      el("div", { class: "row" },
        el("div", {},
          el("div", { class: "big", testid: "streak-count", "data-value": String(streak.count || 0) }, `${streak.count || 0}`),
          el("div", { class: "muted small" }, streak.count === 1 ? "day in a row" : "days in a row")),
        button("streak-claim", streak.claimed_today ? "Come back tomorrow" : next ? `Claim ${fmtGold(next.gold)} gold` : "Claim", { class: "btn gold", disabled: streak.claimed_today }, claimStreak)),
      next && !streak.claimed_today ? el("p", { class: "muted small" }, `Today: ${fmtGold(next.gold)} gold + ${fmtGold(next.xp)} XP.`) : null,
      next && streak.claimed_today ? el("p", { class: "muted small" }, `Tomorrow: ${fmtGold(next.gold)} gold + ${fmtGold(next.xp)} XP. Miss one day and a grace day keeps it going.`) : null,
    );
  }

  async function claimStreak() {
    const res = await ctx.api.post("/api/streak/claim", {}, { idempotencyKey: ctx.newKey() });
    if (!res.ok) {
      ctx.toast(ctx.errorText(res.error), "error");
      if (res.error && res.error.code === "ALREADY_CLAIMED") ctx.update((s) => { s.streak = { ...s.streak, claimed_today: true }; });
      return;
    }
    // the count is not money: show it now (the streak_update push says the same)
    ctx.update((s) => { s.streak = { ...s.streak, count: res.data.streak_count, claimed_today: true }; });
  }

  // -- events ----------------------------------------------------------------------------
  function eventCard(ev) {
    const part = ev.participation;
    const status = part ? part.status : null;
    const progress = part ? part.progress : (ev.requirements || []).map((r) => ({ ...r, current: 0 }));
    const pct = completion(progress);
    let action;
    if (!part) action = button(`event-join-${ev.id}`, "Join", { class: "btn small" }, () => join(ev));
    else if (status === "claimable") action = button(`event-claim-${ev.id}`, "Claim reward", { class: "btn small gold" }, () => claimEvent(ev));
    else if (status === "claimed") action = el("span", { class: "badge ok", testid: `event-status-${ev.id}` }, "claimed");
    else if (status === "expired") action = el("span", { class: "badge bad", testid: `event-status-${ev.id}` }, "expired");
    else action = el("span", { class: "badge", testid: `event-status-${ev.id}` }, "in progress");
    return el(
      "li",
      { testid: `event-${ev.id}`, "data-status": status || "open" },
      el("div", { class: "row" },
        el("div", {}, el("h3", { id: `event-h-${ev.id}` }, ev.title), el("div", { class: "muted small" }, `${ev.type} · ends in ${fmtUntil(ev.ends_at)} · reward ${rewardText(ev.reward_items)}`)),
        action),
      ev.description ? el("p", { class: "small" }, ev.description) : null,
      progressBar({ percent: part ? pct : 0, label: `${ev.title} progress`, valueText: progressText(progress), testid: `event-progress-${ev.id}` }),
      el("div", { class: "muted small" }, progressText(progress)),
    );
  }

  async function join(ev) {
    const res = await ctx.api.post(`/api/events/${ev.id}/participate`, {});
    if (!res.ok) return ctx.toast(ctx.errorText(res.error), "error");
    ctx.update((s) => {
      const found = (s.active_events || []).find((e) => e.id === ev.id);
      if (found && !found.participation) found.participation = res.data;
    });
    ctx.toast(`You joined ${ev.title}.`, "info");
  }

  async function claimEvent(ev) {
    const res = await ctx.api.post(`/api/events/${ev.id}/claim`, {}, { idempotencyKey: ctx.newKey() });
    if (!res.ok) {
      ctx.toast(ctx.errorText(res.error), "error");
      return;
    }
    ctx.update((s) => {
      const found = (s.active_events || []).find((e) => e.id === ev.id);
      if (found && found.participation) found.participation = { ...found.participation, status: "claimed" };
    });
  }

  // -- missions --------------------------------------------------------------------------
  function missionItem(m) {
    let action;
    if (m.status === "claimable") action = button(`mission-claim-${m.id}`, "Claim", { class: "btn small gold" }, () => claimMission(m));
    else if (m.status === "claimed") action = el("span", { class: "badge ok" }, "claimed");
    else action = el("span", { class: "badge" }, `${completion(m.progress)}%`);
    return el(
      "li",
      { testid: `mission-${m.id}`, "data-status": m.status },
      el("div", { class: "row" }, el("div", {}, el("h3", {}, m.title), el("div", { class: "muted small" }, `Reward ${rewardText(m.reward_items)}`)), action),
      progressBar({ percent: completion(m.progress), label: `${m.title} progress`, valueText: progressText(m.progress), testid: `mission-progress-${m.id}` }),
      el("div", { class: "muted small" }, progressText(m.progress)),
    );
  }

  async function claimMission(m) {
    const res = await ctx.api.post(`/api/missions/${m.id}/claim`, {}, { idempotencyKey: ctx.newKey() });
    if (!res.ok) {
      ctx.toast(ctx.errorText(res.error), "error");
      return;
    }
    ctx.update((s) => {
      const all = [...((s.missions || {}).daily || []), ...((s.missions || {}).weekly || [])];
      const found = all.find((x) => x.id === m.id);
      if (found) found.status = "claimed";
    });
  }

  function missionsCard(s) {
    const missions = s.missions || { daily: [], weekly: [] };
    const section = (title, list, id) =>
      el("section", { "aria-labelledby": id },
        el("h3", { id, class: "muted" }, title, list[0] && list[0].resets_at ? el("span", { class: "small" }, ` · resets in ${fmtUntil(list[0].resets_at)}`) : null),
        list.length ? el("ul", { class: "list" }, list.map(missionItem)) : el("p", { class: "muted small" }, "No missions right now."));
    return el("article", { class: "card stack", testid: "missions", "aria-labelledby": "missions-h" },
      el("h2", { id: "missions-h" }, "Missions"),
      section("Daily", missions.daily || [], "missions-daily-h"),
      section("Weekly", missions.weekly || [], "missions-weekly-h"));
  }

  function eventsCard(s) {
    const events = s.active_events || [];
    return el("article", { class: "card", testid: "events", "aria-labelledby": "events-h" },
      el("h2", { id: "events-h" }, "Live events"),
      events.length ? el("ul", { class: "list" }, events.map(eventCard)) : el("p", { class: "muted" }, "No events are running right now."));
  }

  function pendingCount(s) {
    const events = (s.active_events || []).filter((e) => e.participation && e.participation.status === "claimable").length;
    const m = s.missions || {};
    const missions = [...(m.daily || []), ...(m.weekly || [])].filter((x) => x.status === "claimable").length;
    return events + missions;
  }

  function offersCard(s) {
    const recs = s.recommendations || [];
    if (!recs.length) return null;
    return el("article", { class: "card", testid: "recommendations", "aria-labelledby": "recs-h" },
      el("h2", { id: "recs-h" }, "For you"),
      el("ul", { class: "list" }, recs.slice(0, 3).map((r) =>
        el("li", { class: "row" },
          el("div", {}, el("strong", {}, r.title), el("div", { class: "muted small" }, r.cta || "")),
          el("button", { type: "button", class: "btn small ghost", onclick: () => (r.type === "event" ? showEvent(r.id) : ctx.navigate("shop")) }, r.type === "event" ? "See event" : "Open shop")))));
  }

  function showEvent(id) {
    const item = root.querySelector(`[data-testid="event-${id}"]`);
    if (!item) return;
    item.scrollIntoView({ behavior: "smooth", block: "center" });
    const control = item.querySelector("button") || item.querySelector("h3");
    if (control) {
      if (!control.matches("button")) control.tabIndex = -1;
      control.focus({ preventScroll: true });
    }
  }

  function render() {
    rerender(root, () => {
      const s = ctx.state();
      if (!s) return [el("h1", {}, "Home"), el("p", { class: "muted", role: "status", testid: "dashboard-loading" }, "Loading your dashboard…")];
      const name = (s.profile && s.profile.nickname) || "player";
      const pending = pendingCount(s);
      return [
        el("div", { class: "view-title" },
          el("h1", {}, `Hi, ${name}`),
          el("span", { class: pending ? "badge gold" : "badge", testid: "pending-rewards" }, pending ? `${pending} reward${pending > 1 ? "s" : ""} to claim` : "nothing to claim")),
        el("div", { class: "grid two" },
          el("div", { class: "stack" }, streakCard(s), eventsCard(s)),
          el("div", { class: "stack" }, missionsCard(s), offersCard(s))),
      ];
    });
  }

  ctx.onState(render);
  render();
  const ticker = setInterval(render, 60_000); // "ends in" / "resets in" stay true
  return () => clearInterval(ticker);
}
