// The dashboard snapshot the whole page shows (header, home screen), kept current by the
// realtime messages: initial_state replaces it, every push patches the part it names.
// The balance and XP change only here — never from the HTTP answer of a game or a
// purchase — so what the header shows is what the server pushed.
//
// A push whose seq the snapshot already covers (backfill after a reconnect, seq <= the
// initial_state's seq) patches nothing: the snapshot is newer. It is still passed on to
// listeners (toasts show what happened while away).

const XP_PER_LEVEL = 500; // SPEC §3: level = floor(xp / 500) + 1

export function levelOf(xp) {
  return Math.floor((Number(xp) || 0) / XP_PER_LEVEL) + 1;
}

export function streakReward(day) {
  const n = Math.min(Math.max(1, day), 30);
  return { gold: 1000 + 200 * (n - 1), xp: 50 + 25 * (n - 1) };
}

export class Store {
  constructor() {
    this.snapshot = null;
    this.coveredSeq = -1;
    this.listeners = new Set();
  }

  get() {
    return this.snapshot;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit() {
    for (const fn of [...this.listeners]) {
      try {
        fn(this.snapshot);
      } catch (exc) {
        console.error("state listener failed", exc);
      }
    }
  }

  reset() {
    this.snapshot = null;
    this.coveredSeq = -1;
  }

  /** Replace the snapshot (initial_state data or GET /api/dashboard). */
  replace(dashboard, seq = null) {
    this.snapshot = dashboard;
    if (seq !== null && seq !== undefined) this.coveredSeq = Number(seq);
    this.emit();
  }

  /** Change the snapshot with fn(snapshot) and notify (used for HTTP answers that are
   *  not money: joining an event, a claim's new status). */
  update(fn) {
    if (!this.snapshot) return;
    fn(this.snapshot);
    this.emit();
  }

  /** Apply one realtime message; returns true when the snapshot changed. */
  apply(msg) {
    if (msg.type === "initial_state") {
      this.replace(msg.data, msg.seq ?? null);
      return true;
    }
    const s = this.snapshot;
    if (!s) return false;
    if (typeof msg.seq === "number" && msg.seq <= this.coveredSeq) return false;
    const d = msg.data || {};
    let changed = true;
    switch (msg.type) {
      case "profile_update":
      case "purchase_update":
        changed = this.patchProfile(d);
        break;
      case "reward_granted": {
        changed = this.patchProfile({ gold_balance: d.gold_balance });
        // the push carries the balance but not the XP: add the reward's XP items
        const xp = (d.reward_items || []).filter((it) => it.type === "xp").reduce((a, it) => a + (Number(it.amount) || 0), 0);
        if (xp && s.profile) {
          const total = (Number(s.profile.experience_points) || 0) + xp;
          changed = this.patchProfile({ experience_points: total, level: Math.max(levelOf(total), s.profile.level || 1) }) || changed;
        }
        break;
      }
      case "streak_update":
        if (s.streak) {
          const count = Number(d.count) || s.streak.count;
          s.streak = { ...s.streak, count, claimed_today: true, next_reward: streakReward(count + 1) };
        }
        break;
      case "event_progress":
        changed = this.patchEvents(d);
        break;
      case "mission_update":
        changed = this.patchMissions(d);
        break;
      default:
        changed = false;
    }
    if (changed) this.emit();
    return changed;
  }

  patchProfile(d) {
    const p = this.snapshot.profile;
    if (!p) return false;
    let changed = false;
    for (const key of ["gold_balance", "experience_points", "level", "tier", "nickname"]) {
      if (d[key] !== undefined && d[key] !== null && p[key] !== d[key]) {
        p[key] = d[key];
        changed = true;
      }
    }
    if (changed) p.xp_to_next_level = Math.max(0, (p.level || 1) * XP_PER_LEVEL - (p.experience_points || 0));
    return changed;
  }

  patchEvents(d) {
    const events = this.snapshot.active_events || [];
    const items = d.items || (d.event_id !== undefined ? [d] : []);
    let changed = false;
    for (const item of items) {
      const ev = events.find((e) => e.id === item.event_id);
      if (!ev) continue;
      const part = ev.participation || { status: "active", progress: [], progress_version: 0 };
      if (item.progress && (item.progress_version ?? 0) < (part.progress_version ?? 0)) continue;
      if (part.status === "claimed" && item.status !== "claimed") continue;
      ev.participation = {
        ...part,
        ...(item.progress ? { progress: item.progress } : {}),
        ...(item.progress_version !== undefined ? { progress_version: item.progress_version } : {}),
        status: item.status || part.status,
      };
      changed = true;
    }
    return changed;
  }

  patchMissions(d) {
    const m = this.snapshot.missions || {};
    const all = [...(m.daily || []), ...(m.weekly || [])];
    const items = d.items || (d.mission_id !== undefined ? [d] : []);
    let changed = false;
    for (const item of items) {
      const mission = all.find((x) => x.id === item.mission_id && (!item.period_start || !x.period_start || x.period_start === item.period_start));
      if (!mission) continue;
      if (item.progress && (item.progress_version ?? 0) < (mission.progress_version ?? 0)) continue;
      if (mission.status === "claimed" && item.status !== "claimed") continue;
      if (item.progress) mission.progress = item.progress;
      if (item.progress_version !== undefined) mission.progress_version = item.progress_version;
      if (item.status) mission.status = item.status;
      changed = true;
    }
    return changed;
  }
}
