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
// match bit for bit. GAME_CONFIG copies the server's calibrated default configs
// (ccweb/games/config.py); tests/browser/test_verify_js.py fails when they drift apart.

const TWO_POW_32 = 2 ** 32;

export const GAME_CONFIG = Object.freeze({
  slot: {
    strips: [
      "C7LBCLOXBCLOCBLCXOLCOBCL7CXO",
      "CXLCOXCLBCOL7CBOLCOLC7BCLXOB",
      "BOCLOCLOCLBCXLBOCX7OC7LCBLCX",
    ],
    symbols: { C: "cherry", L: "lemon", O: "orange", B: "bell", X: "bar", 7: "seven" },
    // [two from the left, three of a kind] in hundredths of the total bet
    payCents: {
      cherry: [62, 124],
      lemon: [62, 186],
      orange: [62, 249],
      bell: [74, 373],
      bar: [99, 621],
      seven: [186, 1488],
    },
    // the row (0 = top) taken on reels 1, 2, 3
    paylines: [
      [1, 1, 1],
      [0, 0, 0],
      [2, 2, 2],
      [0, 1, 2],
      [2, 1, 0],
    ],
    rows: 3,
  },
  gacha: {
    cost: 100,
    pityThreshold: 60,
    // lowest first; the last tier is the pity tier
    rarities: [
      { name: "common", weight: 7000, value: 40, itemIds: [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008], bonusItems: 0 },
      { name: "rare", weight: 2300, value: 120, itemIds: [2001, 2002, 2003, 2004, 2005, 2006], bonusItems: 0 },
      { name: "epic", weight: 600, value: 320, itemIds: [3001, 3002, 3003, 3004], bonusItems: 2 },
      { name: "legendary", weight: 100, value: 1000, itemIds: [4001, 4002], bonusItems: 0 },
    ],
  },
  rps: { winCents: 188, drawCents: 100, choices: ["rock", "paper", "scissors"] },
  crash: { edgeBp: 400 },
});

const BEATS = { rock: "scissors", paper: "rock", scissors: "paper" };
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
  return cfg.strips.map((codes, reel) => {
    const strip = Array.from(codes, (c) => cfg.symbols[c]);
    return Array.from({ length: cfg.rows }, (_, r) => strip[(stops[reel] + r) % strip.length]);
  });
}

export function slotOutcome(floats, { bet }, cfg = GAME_CONFIG.slot) {
  const stops = cfg.strips.map((s, i) => Math.floor(floats[i] * s.length) % s.length);
  const reels = slotWindow(cfg, stops);
  const lines = [];
  let total = 0;
  cfg.paylines.forEach((rows, index) => {
    const [a, b, c] = [reels[0][rows[0]], reels[1][rows[1]], reels[2][rows[2]]];
    if (a !== b) return;
    const count = b === c ? 3 : 2;
    const cents = cfg.payCents[a][count === 3 ? 1 : 0];
    if (cents) {
      lines.push({ line: index, rows: [...rows], symbol: a, count, multiplier: cents / 100 });
      total += cents;
    }
  });
  const payout = pay(bet, total);
  return { bet, payout, outcome: outcomeOf(bet, payout), reels, stops, lines, multiplier: total / 100 };
}

export function gachaOutcome(floats, { count, pityBefore }, cfg = GAME_CONFIG.gacha) {
  const cumulative = [];
  let sum = 0;
  for (const r of cfg.rarities) cumulative.push((sum += r.weight));
  const top = cfg.rarities.length - 1;
  let counter = pityBefore;
  const items = [];
  for (let i = 0; i < count; i += 1) {
    const uTier = floats[2 * i];
    const uItem = floats[2 * i + 1];
    const forced = counter >= cfg.pityThreshold - 1;
    let tier = top;
    if (!forced) {
      const t = Math.floor(uTier * sum) % sum;
      tier = cumulative.findIndex((c) => c > t); // bisect_right
    }
    const rarity = cfg.rarities[tier];
    const index = Math.floor(uItem * rarity.itemIds.length) % rarity.itemIds.length;
    const value = rarity.value + (index < rarity.bonusItems ? 1 : 0);
    items.push({ item_id: rarity.itemIds[index], rarity: rarity.name, value, guaranteed: forced });
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
    pulls_to_guarantee: Math.max(cfg.pityThreshold - counter, 1),
  };
}

export function rpsOutcome(floats, { bet, choice }, cfg = GAME_CONFIG.rps) {
  const house = cfg.choices[Math.floor(floats[0] * 3) % 3];
  let cents = 0;
  if (choice === house) cents = cfg.drawCents;
  else if (BEATS[choice] === house) cents = cfg.winCents;
  const payout = pay(bet, cents);
  return { bet, payout, outcome: outcomeOf(bet, payout), choice, house_choice: house, multiplier: cents / 100 };
}

/** The crash point in hundredths for the round's first uint32 `k` (exact integers). */
export function crashPointCents(k, cfg = GAME_CONFIG.crash) {
  const keep = BigInt(10000 - cfg.edgeBp);
  const den = BigInt(TWO_POW_32);
  const point = (keep * 100n * den) / (10000n * (den - BigInt(k)));
  return Math.max(100, Number(point));
}

export function crashOutcome(ints, { bet, autoCashout }, cfg = GAME_CONFIG.crash) {
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
 * round) are taken from it, the outcome is computed.
 */
export async function deriveOutcome(round, serverSeed) {
  const detail = round.detail || {};
  const n = floatsNeeded(round.game_type, detail);
  const ints = await roundInts(serverSeed, round.client_seed, round.nonce, n);
  const floats = ints.map((k) => k / TWO_POW_32);
  switch (round.game_type) {
    case "slot":
      return slotOutcome(floats, { bet: round.bet });
    case "gacha":
      return gachaOutcome(floats, { count: Number(detail.count), pityBefore: Number(detail.pity_before) });
    case "rps":
      return rpsOutcome(floats, { bet: round.bet, choice: detail.choice });
    case "crash":
      return crashOutcome(ints, { bet: round.bet, autoCashout: Number(detail.auto_cashout) });
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
 * Verify a recorded round against a revealed server seed.
 * Returns {ok, commitmentOk, seedHash, derived, mismatches: [{field, recorded, derived}]}.
 * The round's top-level payout and outcome are checked as well as its detail.
 */
export async function verifyRound(round, serverSeed) {
  const seedHash = await sha256Hex(serverSeed);
  const commitmentOk = seedHash === String(round.server_seed_hash || "").toLowerCase();
  const derived = await deriveOutcome(round, serverSeed);
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
