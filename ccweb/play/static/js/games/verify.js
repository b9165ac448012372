// Provable fairness, recomputed in the browser with Web Crypto.
//
// This is the server's derivation (ccweb/games/fairness.py and the four engines in
// ccweb/games/engines/) written again in JavaScript, so a player need not trust the
// server to check a round: given the revealed server seed, the client seed and the
// round's nonce it (1) checks sha256(server seed) against the hash committed before the
// round was played and (2) derives the outcome and compares it with the recorded one.
//
//   digest_0 = HMAC-SHA256(key = server_seed, msg = "client_seed:nonce")
//   digest_k = HMAC-SHA256(key = server_seed, msg = "client_seed:nonce:k")   (k >= 1)
//   each digest = eight big-endian uint32 values k_i;  float u_i = k_i / 2^32
//
// Every step uses the same IEEE operations as the Python code (u * n for a small
// integer n is exact), or integers (the crash point uses BigInt), so the results
// match bit for bit.
//
// The games' parameters (reel strips, paytable, paylines, gacha rarities and pity, the
// rps pays, the crash edge) are not copied here: loadGameConfig() fetches them once per
// page from GET /api/games/config (public), and every derivation takes that document.
// A round records the version it was played with (config_version): configForRound()
// loads that version's document (?version=…), so a round played before a deploy that
// changed a paytable still verifies; rounds without a version use the current one.
// Its shape, with multipliers in integer hundredths of the bet:
//   {version, slot: {rows, strips: [[symbol…]×3], paylines, paytable: {sym: {two_cents, three_cents}}},
//    gacha: {cost, pity_threshold, rarities: [{name, weight, value, bonus_items, item_ids}]},
//    rps: {choices, beats, win_cents, draw_cents}, crash: {edge_bp}}

const TWO_POW_32 = 2 ** 32;
const CONFIG_PATH = "/api/games/config";

const loaded = new Map(); // version ("" = the current one) → promise of its document

/** Check that a config document has what the derivations read; returns it. */
export function checkGameConfig(doc) {
  const ok =
    doc &&
    typeof doc.version === "string" &&
    doc.slot && Array.isArray(doc.slot.strips) && Array.isArray(doc.slot.paylines) && doc.slot.paytable && Number.isInteger(doc.slot.rows) &&
    doc.gacha && Array.isArray(doc.gacha.rarities) && Number.isInteger(doc.gacha.cost) && Number.isInteger(doc.gacha.pity_threshold) &&
    doc.rps && Array.isArray(doc.rps.choices) && doc.rps.beats && Number.isInteger(doc.rps.win_cents) && Number.isInteger(doc.rps.draw_cents) &&
    doc.crash && Number.isInteger(doc.crash.edge_bp);
  if (!ok) throw new Error("the games' configuration from the server is incomplete");
  return doc;
}

/**
 * The games' configuration, fetched once per page and version through `api.get` (the
 * client's Api; the endpoint needs no token). Without `version`: the current one (what
 * gacha.js and rps.js show). With `version` (a round's `config_version`): the document
 * that round was played with, GET /api/games/config?version=… — immutable, so it is
 * never fetched twice. A failed fetch is not cached: the next call tries again.
 * Resolves to the document, rejects with an Error saying why.
 */
export function loadGameConfig(api, version = null) {
  const key = version || "";
  let promise = loaded.get(key);
  if (!promise) {
    const path = key ? `${CONFIG_PATH}?version=${encodeURIComponent(key)}` : CONFIG_PATH;
    promise = api.get(path).then((res) => {
      if (!res.ok) {
        const why = (res.error && res.error.message) || `HTTP ${res.status}`;
        throw new Error(`could not load the games' configuration${key ? ` ${key}` : ""} (${why})`);
      }
      const doc = checkGameConfig(res.data);
      if (key && doc.version !== key) {
        throw new Error(`asked for the games' configuration ${key} but got ${doc.version}`);
      }
      return Object.freeze(doc);
    });
    loaded.set(key, promise);
    promise.catch(() => {
      if (loaded.get(key) === promise) loaded.delete(key);
    });
  }
  return promise;
}

/**
 * The configuration `round` was played with: the document of its `config_version`, or
 * — for a round played before versions were recorded (`config_version` null) — the
 * current one, with `current: true` so the caller can say so.
 * Resolves to {config, current}.
 */
export async function configForRound(api, round) {
  const version = (round && round.config_version) || null;
  const config = await loadGameConfig(api, version);
  return { config, current: version === null };
}

function need(cfg, game) {
  if (!cfg) throw new Error(`no ${game} configuration: load it with loadGameConfig() first`);
  return cfg;
}

const encoder = new TextEncoder();

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new Error("Web Crypto is not available here (it needs https or localhost)");
  }
  return s;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** sha256 of a string (UTF-8) as lowercase hex: the server seed commitment. */
export async function sha256Hex(text) {
  return hex(await subtle().digest("SHA-256", encoder.encode(text)));
}

/** HMAC-SHA256(key, message) over UTF-8 strings, as raw bytes. */
export async function hmacSha256(key, message) {
  const k = await subtle().importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await subtle().sign("HMAC", k, encoder.encode(message)));
}

/** The first `count` uint32 values of a round's stream (digest_0, digest_1, …). */
export async function roundInts(serverSeed, clientSeed, nonce, count) {
  const out = [];
  for (let cursor = 0; out.length < count; cursor += 1) {
    const msg = cursor === 0 ? `${clientSeed}:${nonce}` : `${clientSeed}:${nonce}:${cursor}`;
    const d = await hmacSha256(serverSeed, msg);
    const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
    for (let i = 0; i < 8; i += 1) out.push(view.getUint32(i * 4, false));
  }
  return out.slice(0, count);
}

/** The floats in [0, 1) the server's engines consume: uint32 / 2^32. */
export async function roundFloats(serverSeed, clientSeed, nonce, count) {
  return (await roundInts(serverSeed, clientSeed, nonce, count)).map((k) => k / TWO_POW_32);
}

function pay(bet, cents) {
  const n = bet * cents; // exact: bet <= 10 000, cents < 10^6
  return (n - (n % 100)) / 100; // floor for n >= 0
}

function outcomeOf(bet, payout) {
  if (payout > bet) return "win";
  return payout === bet ? "draw" : "lose";
}

// --- the four engines (each takes the round's floats and the player's inputs) --------

function slotWindow(cfg, stops) {
  return cfg.strips.map((strip, reel) =>
    Array.from({ length: cfg.rows }, (_, r) => strip[(stops[reel] + r) % strip.length]),
  );
}

/** A spin from floats 0-2; `cfg` is the config document's `slot`. */
export function slotOutcome(floats, { bet }, cfg) {
  need(cfg, "slot");
  const stops = cfg.strips.map((s, i) => Math.floor(floats[i] * s.length) % s.length);
  const reels = slotWindow(cfg, stops);
  const lines = [];
  let total = 0;
  cfg.paylines.forEach((rows, index) => {
    const [a, b, c] = [reels[0][rows[0]], reels[1][rows[1]], reels[2][rows[2]]];
    if (a !== b) return;
    const count = b === c ? 3 : 2;
    const pays = cfg.paytable[a];
    const cents = pays ? (count === 3 ? pays.three_cents : pays.two_cents) : 0;
    if (cents) {
      lines.push({ line: index, rows: [...rows], symbol: a, count, multiplier: cents / 100 });
      total += cents;
    }
  });
  const payout = pay(bet, total);
  return { bet, payout, outcome: outcomeOf(bet, payout), reels, stops, lines, multiplier: total / 100 };
}

/** 1 or 10 pulls from floats 2i (tier) and 2i + 1 (item); `cfg` is the document's `gacha`. */
export function gachaOutcome(floats, { count, pityBefore }, cfg) {
  need(cfg, "gacha");
  const cumulative = [];
  let sum = 0;
  for (const r of cfg.rarities) cumulative.push((sum += r.weight));
  const top = cfg.rarities.length - 1;
  let counter = pityBefore;
  const items = [];
  for (let i = 0; i < count; i += 1) {
    const uTier = floats[2 * i];
    const uItem = floats[2 * i + 1];
    const forced = counter >= cfg.pity_threshold - 1;
    let tier = top;
    if (!forced) {
      const t = Math.floor(uTier * sum) % sum;
      tier = cumulative.findIndex((c) => c > t); // bisect_right
    }
    const rarity = cfg.rarities[tier];
    const index = Math.floor(uItem * rarity.item_ids.length) % rarity.item_ids.length;
    const value = rarity.value + (index < rarity.bonus_items ? 1 : 0);
    items.push({ item_id: rarity.item_ids[index], rarity: rarity.name, value, guaranteed: forced });
    counter = tier === top ? 0 : counter + 1;
  }
  const bet = cfg.cost * count;
  const payout = items.reduce((acc, it) => acc + it.value, 0);
  return {
    bet,
    payout,
    outcome: outcomeOf(bet, payout),
    count,
    items,
    pity_before: pityBefore,
    pity: counter,
    pulls_to_guarantee: Math.max(cfg.pity_threshold - counter, 1),
  };
}

/** The house's hand from float 0; `cfg` is the document's `rps`. */
export function rpsOutcome(floats, { bet, choice }, cfg) {
  need(cfg, "rps");
  const n = cfg.choices.length;
  const house = cfg.choices[Math.floor(floats[0] * n) % n];
  let cents = 0;
  if (choice === house) cents = cfg.draw_cents;
  else if (cfg.beats[choice] === house) cents = cfg.win_cents;
  const payout = pay(bet, cents);
  return { bet, payout, outcome: outcomeOf(bet, payout), choice, house_choice: house, multiplier: cents / 100 };
}

/** The crash point in hundredths for the round's first uint32 `k` (exact integers);
 *  `cfg` is the document's `crash`. */
export function crashPointCents(k, cfg) {
  need(cfg, "crash");
  const keep = BigInt(10000 - cfg.edge_bp);
  const den = BigInt(TWO_POW_32);
  const point = (keep * 100n * den) / (10000n * (den - BigInt(k)));
  return Math.max(100, Number(point));
}

export function crashOutcome(ints, { bet, autoCashout }, cfg) {
  const target = Math.round(autoCashout * 100);
  const point = crashPointCents(ints[0], cfg);
  const won = target <= point;
  const payout = won ? pay(bet, target) : 0;
  return {
    bet,
    payout,
    outcome: outcomeOf(bet, payout),
    auto_cashout: target / 100,
    crash_point: point / 100,
    cashed_out_at: won ? target / 100 : null,
  };
}

// --- a recorded round ------------------------------------------------------------------

/** How many floats a round of this game consumes, from its recorded inputs. */
export function floatsNeeded(gameType, detail) {
  switch (gameType) {
    case "slot":
      return 3;
    case "gacha":
      return 2 * Number(detail.count || 1);
    case "rps":
    case "crash":
      return 1;
    default:
      throw new Error(`unknown game type ${gameType}`);
  }
}

/**
 * Derive a round's outcome from the seeds. `round` is a row of
 * GET /api/games/rounds/recent: {game_type, bet, nonce, client_seed, detail}; the
 * player's inputs (bet, choice, count, auto_cashout, the gacha pity counter before the
 * round) are taken from it, the outcome is computed with `config` (the document of
 * loadGameConfig()).
 */
export async function deriveOutcome(round, serverSeed, config) {
  if (!config) throw new Error("no games configuration: load it with loadGameConfig() first");
  const detail = round.detail || {};
  const n = floatsNeeded(round.game_type, detail);
  const ints = await roundInts(serverSeed, round.client_seed, round.nonce, n);
  const floats = ints.map((k) => k / TWO_POW_32);
  switch (round.game_type) {
    case "slot":
      return slotOutcome(floats, { bet: round.bet }, config.slot);
    case "gacha":
      return gachaOutcome(floats, { count: Number(detail.count), pityBefore: Number(detail.pity_before) }, config.gacha);
    case "rps":
      return rpsOutcome(floats, { bet: round.bet, choice: detail.choice }, config.rps);
    case "crash":
      return crashOutcome(ints, { bet: round.bet, autoCashout: Number(detail.auto_cashout) }, config.crash);
    default:
      throw new Error(`unknown game type ${round.game_type}`);
  }
}

// The fields compared per game (inputs are taken from the record, so not compared).
const COMPARED = {
  slot: ["stops", "reels", "lines", "multiplier", "payout", "outcome"],
  gacha: ["items", "pity", "payout", "outcome"],
  rps: ["house_choice", "multiplier", "payout", "outcome"],
  crash: ["crash_point", "cashed_out_at", "payout", "outcome"],
};

function same(a, b) {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = Object.keys(a);
    return keys.every((k) => same(a[k], b[k]));
  }
  return false;
}

function show(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/**
 * Verify a recorded round against a revealed server seed, deriving with `config` (the
 * games' configuration from loadGameConfig()).
 * Returns {ok, commitmentOk, seedHash, derived, mismatches: [{field, recorded, derived}]}.
 * The round's top-level payout and outcome are checked as well as its detail.
 */
export async function verifyRound(round, serverSeed, config) {
  const seedHash = await sha256Hex(serverSeed);
  const commitmentOk = seedHash === String(round.server_seed_hash || "").toLowerCase();
  const derived = await deriveOutcome(round, serverSeed, config);
  const detail = round.detail || {};
  const mismatches = [];
  for (const field of COMPARED[round.game_type]) {
    if (!same(derived[field], detail[field])) {
      mismatches.push({ field, recorded: detail[field], derived: derived[field] });
    }
  }
  // the round's own columns must agree too (they are what the ledger paid)
  for (const field of ["payout", "outcome"]) {
    if (!same(derived[field], round[field])) {
      mismatches.push({ field: `round ${field}`, recorded: round[field], derived: derived[field] });
    }
  }
  return { ok: commitmentOk && mismatches.length === 0, commitmentOk, seedHash, derived, mismatches };
}

/** One sentence for a verification: "verified …" or "mismatch: …". */
export function describeVerification(result, round) {
  if (result.ok) {
    return `verified: sha256(server seed) equals the committed hash and seeds + nonce ${round.nonce} give the recorded ${round.game_type} outcome (${summary(round.game_type, result.derived)})`;
  }
  const problems = [];
  if (!result.commitmentOk) {
    problems.push(`sha256(server seed) = ${result.seedHash.slice(0, 16)}… is not the committed hash ${String(round.server_seed_hash).slice(0, 16)}…`);
  }
  for (const m of result.mismatches) {
    problems.push(`${m.field} recorded ${show(m.recorded)} but the seeds give ${show(m.derived)}`);
  }
  return `mismatch: ${problems.join("; ")}`;
}

/** A short human summary of a derived outcome. */
export function summary(gameType, d) {
  switch (gameType) {
    case "slot":
      return `stops ${d.stops.join("/")}, ×${d.multiplier}, payout ${d.payout}`;
    case "gacha":
      return `${d.items.map((i) => `${i.rarity} #${i.item_id}`).join(", ")}; payout ${d.payout}`;
    case "rps":
      return `house ${d.house_choice}, payout ${d.payout}`;
    case "crash":
      return `crash point ×${d.crash_point.toFixed(2)}, payout ${d.payout}`;
    default:
      return "";
  }
}
