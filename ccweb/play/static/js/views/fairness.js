// Provable fairness: the committed server-seed hash, the client seed and nonce, rotation
// (which reveals the old server seed), and verification of past rounds in the browser.
//
// Verifying recomputes with Web Crypto exactly what the server did (games/verify.js):
// sha256(revealed seed) must equal the hash the round was committed to, and the outcome
// derived from HMAC-SHA256(server seed, "client_seed:nonce[:k]") must equal the
// recorded one. A round's seed is secret until the player rotates; such a round is
// offered a "rotate and verify". The games' parameters the derivation needs (reel
// strips, paytable, rarities, pity, crash edge) come from GET /api/games/config,
// fetched once per page and version (configForRound: the version the round was played
// with, or the current one for rounds from before versions were recorded) — the same
// documents any third party can read.

import { ensureStyles } from "../games/styles.js";
import { configForRound, describeVerification, loadGameConfig, summary, verifyRound } from "../games/verify.js";

const ROUNDS_LIMIT = 20;
const REVEALED_LIMIT = 100;

/** A client seed the server accepts: 1–64 printable ASCII characters, no ':'. */
export function clientSeedProblem(seed) {
  if (seed.length < 1 || seed.length > 64) return "A client seed has 1 to 64 characters.";
  if (!/^[\x20-\x7e]+$/.test(seed)) return "A client seed uses printable ASCII characters only.";
  if (seed.includes(":")) return "A client seed may not contain ':'.";
  return null;
}

function short(hash) {
  return hash ? `${hash.slice(0, 12)}…` : "";
}

export function mount(root, ctx) {
  ensureStyles();
  const el = ctx.el;
  let alive = true;
  let rounds = [];
  const seedsByHash = new Map(); // server_seed_hash → revealed server seed

  // --- current seeds ---------------------------------------------------------------
  const commit = el("code", { testid: "fairness-commit", class: "hash" }, "…");
  const clientSeed = el("code", { testid: "fairness-client-seed" }, "…");
  const nonce = el("span", { testid: "fairness-nonce" }, "…");
  const newSeedId = "fairness-new-client-seed-input";
  const newSeed = el("input", {
    id: newSeedId,
    testid: "fairness-new-client-seed",
    type: "text",
    maxlength: "64",
    autocomplete: "off",
    spellcheck: "false",
  });
  const rotate = el("button", { testid: "fairness-rotate", type: "button", class: "btn" }, "Rotate seeds");
  const revealed = el("div", { testid: "fairness-revealed", class: "fairness-revealed", role: "status", "aria-live": "polite" });

  // --- rounds and verification -------------------------------------------------------
  const list = el("ul", { testid: "fairness-rounds", class: "fairness-rounds", "aria-label": "Your recent rounds" });
  const overrideId = "fairness-seed-input-field";
  const override = el("input", {
    id: overrideId,
    testid: "fairness-seed-input",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "leave empty to use the revealed seed",
  });
  const verdict = el("div", { testid: "fairness-verify-result", class: "fairness-verify-result", role: "status", "aria-live": "polite" });
  verdict.hidden = true; // shown by the first verification
  const refresh = el("button", { testid: "fairness-refresh", type: "button", class: "btn ghost" }, "Refresh");
  const cryptoNote = el("p", { class: "notice" });
  if (!(globalThis.crypto && globalThis.crypto.subtle)) {
    cryptoNote.textContent = "This browser offers no Web Crypto here (it needs https or localhost), so rounds cannot be verified on this page.";
  } else {
    cryptoNote.hidden = true;
  }

  function setVerdict(status, text, roundId, extra = null) {
    verdict.textContent = "";
    verdict.dataset.status = status;
    if (roundId) verdict.dataset.roundId = String(roundId);
    else delete verdict.dataset.roundId;
    verdict.classList.toggle("is-ok", status === "verified");
    verdict.classList.toggle("is-error", status === "mismatch" || status === "error");
    verdict.append(el("p", {}, text));
    if (extra) verdict.append(extra);
    verdict.hidden = false;
    if (typeof verdict.scrollIntoView === "function") verdict.scrollIntoView({ block: "nearest" });
  }

  async function loadCurrent() {
    const res = await ctx.api.get("/api/games/fairness");
    if (!alive) return;
    if (!res.ok) {
      commit.textContent = ctx.errorText(res.error);
      return;
    }
    commit.textContent = res.data.server_seed_hash;
    commit.title = "sha256 of the secret server seed your next rounds use";
    clientSeed.textContent = res.data.client_seed;
    nonce.textContent = String(res.data.nonce);
  }

  async function loadRevealed() {
    const res = await ctx.api.get(`/api/games/fairness/revealed?limit=${REVEALED_LIMIT}`);
    if (!alive || !res.ok) return;
    for (const item of res.data.items) seedsByHash.set(item.server_seed_hash, item.server_seed);
  }

  function renderRounds() {
    list.textContent = "";
    if (!rounds.length) {
      list.append(el("li", { class: "empty" }, "No rounds yet: play a game, then verify it here."));
      return;
    }
    for (const r of rounds) {
      const known = seedsByHash.has(r.server_seed_hash);
      const button = el("button", { testid: `verify-${r.round_id}`, type: "button", class: "btn small" }, "Verify");
      button.addEventListener("click", () => verify(r, button));
      list.append(
        el(
          "li",
          { testid: `fairness-round-${r.round_id}`, class: "fairness-round", "data-revealed": known ? "true" : "false" },
          el("span", { class: "round-id" }, `#${r.round_id}`),
          el("span", { class: "round-game" }, r.game_type),
          el("span", {}, `bet ${r.bet.toLocaleString()}`),
          el("span", {}, `payout ${r.payout.toLocaleString()}`),
          el("span", { class: `outcome outcome-${r.outcome}` }, r.outcome),
          el("span", {}, `nonce ${r.nonce}`),
          el("span", { class: "seed-state", title: r.server_seed_hash }, known ? `seed ${short(r.server_seed_hash)} revealed` : `seed ${short(r.server_seed_hash)} still secret`),
          button,
        ),
      );
    }
  }

  async function loadRounds() {
    const res = await ctx.api.get(`/api/games/rounds/recent?limit=${ROUNDS_LIMIT}`);
    if (!alive) return;
    if (!res.ok) {
      list.textContent = "";
      list.append(el("li", { class: "empty" }, ctx.errorText(res.error)));
      return;
    }
    rounds = res.data.items;
    renderRounds();
  }

  async function reload() {
    await Promise.all([loadCurrent(), loadRevealed()]);
    await loadRounds();
  }

  async function verify(round, button) {
    const manual = override.value.trim();
    const seed = manual || seedsByHash.get(round.server_seed_hash);
    if (!seed) {
      const again = el("button", { testid: "fairness-rotate-verify", type: "button", class: "btn" }, "Rotate and verify");
      again.addEventListener("click", async () => {
        again.disabled = true;
        if (await doRotate()) {
          const fresh = rounds.find((r) => r.round_id === round.round_id) || round;
          await verify(fresh, null);
        } else {
          again.disabled = false;
        }
      });
      setVerdict(
        "unrevealed",
        `not revealed yet: round #${round.round_id} used the server seed committed as ${short(round.server_seed_hash)}, which is still secret. Rotate the seeds to reveal it, then verify.`,
        round.round_id,
        again,
      );
      return;
    }
    if (button) button.disabled = true;
    setVerdict("pending", `Verifying round #${round.round_id}…`, round.round_id);
    try {
      const { config: gameConfig, current } = await configForRound(ctx.api, round);
      const result = await verifyRound(round, seed, gameConfig);
      if (!alive) return;
      const text = describeVerification(result, round);
      const details = el(
        "dl",
        { class: "verify-details" },
        el("dt", {}, "server seed"),
        el("dd", {}, el("code", {}, seed)),
        el("dt", {}, "sha256(server seed)"),
        el("dd", {}, el("code", {}, result.seedHash)),
        el("dt", {}, "committed hash"),
        el("dd", {}, el("code", {}, round.server_seed_hash)),
        el("dt", {}, "client seed : nonce"),
        el("dd", {}, el("code", {}, `${round.client_seed}:${round.nonce}`)),
        el("dt", {}, "game config"),
        el(
          "dd",
          {},
          el("code", { testid: "fairness-config-version", title: "version of GET /api/games/config the outcome was derived with" }, gameConfig.version),
          current ? el("span", { testid: "fairness-config-current", title: "this round was played before rounds recorded their config version" }, " (current config)") : null,
        ),
        el("dt", {}, "derived"),
        el("dd", {}, summary(round.game_type, result.derived)),
      );
      setVerdict(result.ok ? "verified" : "mismatch", text, round.round_id, details);
    } catch (err) {
      setVerdict("error", `could not verify round #${round.round_id}: ${err && err.message ? err.message : err}`, round.round_id);
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function doRotate() {
    const wanted = newSeed.value.trim();
    if (wanted) {
      const problem = clientSeedProblem(wanted);
      if (problem) {
        ctx.toast(problem, "error");
        revealed.textContent = problem;
        newSeed.focus();
        return false;
      }
    }
    const committed = commit.textContent;
    rotate.disabled = true;
    try {
      const res = await ctx.api.post("/api/games/fairness/rotate", wanted ? { client_seed: wanted } : {});
      if (!alive) return false;
      if (!res.ok) {
        const message = ctx.errorText(res.error);
        revealed.textContent = message;
        ctx.toast(message, "error");
        return false;
      }
      const d = res.data;
      seedsByHash.set(d.previous_server_seed_hash, d.previous_server_seed);
      revealed.textContent = "";
      revealed.append(
        el("p", {}, `Revealed the server seed of your previous ${d.previous_rounds} round${d.previous_rounds === 1 ? "" : "s"}:`),
        el("code", { testid: "fairness-revealed-seed", class: "hash" }, d.previous_server_seed),
        el("p", {}, d.previous_server_seed_hash === committed ? `Its hash ${short(d.previous_server_seed_hash)} is the one shown before you played.` : `Its hash is ${short(d.previous_server_seed_hash)}.`),
      );
      newSeed.value = "";
      ctx.toast("Seeds rotated: the old server seed is revealed.", "success");
      await reload();
      return true;
    } finally {
      rotate.disabled = false;
    }
  }

  rotate.addEventListener("click", () => doRotate());
  refresh.addEventListener("click", () => reload());

  // A round played elsewhere (another tab, the games view) moves the nonce and adds a
  // round: refresh shortly after its push.
  let timer = 0;
  const unsubscribe = ctx.live.on("stats_update", () => {
    clearTimeout(timer);
    timer = setTimeout(() => alive && reload(), 300);
  });

  root.append(
    el(
      "div",
      { class: "fairness-view", testid: "fairness-view" },
      el("h2", { class: "view-title" }, "Provable fairness"),
      el(
        "p",
        { class: "view-help" },
        "Every outcome comes from HMAC-SHA256(server seed, client seed:nonce). Before you play you see sha256 of the secret server seed; rotating reveals it, so you can recompute any past round here, in your browser.",
      ),
      cryptoNote,
      el(
        "section",
        { class: "card fairness-current", "aria-labelledby": "fairness-current-h" },
        el("h3", { id: "fairness-current-h" }, "Current seeds"),
        el(
          "dl",
          {},
          el("dt", {}, "Committed server seed hash"),
          el("dd", {}, commit),
          el("dt", {}, "Client seed"),
          el("dd", {}, clientSeed),
          el("dt", {}, "Next nonce"),
          el("dd", {}, nonce),
        ),
        el("div", { class: "fairness-actions" }, el("div", { class: "field" }, el("label", { for: newSeedId }, "New client seed (optional)"), newSeed), rotate),
        revealed,
      ),
      el(
        "section",
        { class: "card fairness-rounds-card", "aria-labelledby": "fairness-rounds-h" },
        el("h3", { id: "fairness-rounds-h" }, "Verify a round"),
        el("div", { class: "fairness-actions" }, el("div", { class: "field" }, el("label", { for: overrideId }, "Server seed to verify with (optional)"), override), refresh),
        verdict,
        list,
      ),
    ),
  );
  reload();
  loadGameConfig(ctx.api).catch(() => {}); // early, so the first Verify need not wait (a failure is retried then)

  return () => {
    alive = false;
    clearTimeout(timer);
    unsubscribe?.();
    root.textContent = "";
  };
}
