-- Key views behind GET /api/admin/analytics/kpis: plain rows (no aggregate states) in
-- ReplacingMergeTree tables whose sorting key is the whole identity of a fact, so that
-- copies of a fact — a replayed batch, a backfill racing the live view — collapse at
-- merge time, and readers stay exact before the merge by counting distinct keys
-- (uniqExact) or reading FINAL.
--
-- Why not the states of 0002/0004/0005: merging exact per-day uniqExact states of
-- ~16 000 players (mv_daily_kpis) cost 60-100 ms and the (event_id, price) sets of
-- mv_user_spend 50-60 ms for 30 days at 1 000 000 events on 18.16 — a 30-day KPI answer
-- took p95 ~175-226 ms. Scanning the same facts as sorted key rows (~470 000 tiny rows
-- for DAU, a few ten thousand for purchases and claims) answers the whole document in
-- ~40 ms (bench/kpi_query.py).
--
-- Replay-proof like every view here: an INSERT of an event already ingested adds a copy
-- of a key row, never a different value, so uniqExact / FINAL read the same answer.
--
-- The views only see INSERTs made after they exist, so each one is followed by a
-- backfill from events_raw. Events inserted between the CREATE and the backfill reach
-- the view twice, which is harmless for the same reason; a migration run that died
-- half-way and runs again backfills again, equally harmless. The backfill is one
-- statement per view without a time limit (max_execution_time = 0): on a database with
-- years of events it runs as long as a full scan of events_raw takes.

-- mv_active_players: one row per UTC day and player with an activity event of their own
-- (DAU = distinct user_id per day). The activity rule is ccweb.events
-- NOT_PLAYER_ACTIVITY, as in 0002 (tests/pipeline/test_clickhouse_schema.py checks that
-- they agree). GROUP BY makes every inserted part hold each (day, player) once.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_active_players
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, user_id)
AS SELECT
    event_date,
    user_id
FROM events_raw
WHERE user_id != 0 AND event_type NOT IN ('event.progress', 'mission.progress', 'achievement.unlocked', 'shop.settlement')
GROUP BY event_date, user_id;

INSERT INTO mv_active_players
SELECT event_date, user_id
FROM events_raw
WHERE user_id != 0 AND event_type NOT IN ('event.progress', 'mission.progress', 'achievement.unlocked', 'shop.settlement')
GROUP BY event_date, user_id
SETTINGS max_execution_time = 0;

-- mv_purchases: one row per shop.purchase event (attempts, successes, gold spent, and
-- the whales' 30-day spend). ok = 1 for status 'success'; price_gold is the ingester's
-- amount_gold (0 for a refusal). Every copy of an event has the same key and values, so
-- FINAL (cheap here: purchases are a few percent of events) sums each purchase once.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_purchases
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, user_id, event_id)
AS SELECT
    event_date,
    user_id,
    event_id,
    amount_gold AS price_gold,
    toUInt8(status = 'success') AS ok
FROM events_raw
WHERE event_type = 'shop.purchase';

INSERT INTO mv_purchases
SELECT event_date, user_id, event_id, amount_gold AS price_gold, toUInt8(status = 'success') AS ok
FROM events_raw
WHERE event_type = 'shop.purchase'
SETTINGS max_execution_time = 0;

-- mv_event_players: live-event claims and progress per UTC day (event_claims and
-- claim_conversion). claim_id is an event.claim's event_id (claims = distinct claim_id);
-- an event.progress row has claim_id '', so a player's progress that day is one key
-- however many envelopes and items it had (progressed players = distinct user_id).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_event_players
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, event_type, user_id, claim_id)
AS SELECT
    event_date,
    event_type,
    user_id,
    if(event_type = 'event.claim', event_id, '') AS claim_id
FROM events_raw
WHERE event_type IN ('event.claim', 'event.progress')
GROUP BY event_date, event_type, user_id, claim_id;

INSERT INTO mv_event_players
SELECT event_date, event_type, user_id, if(event_type = 'event.claim', event_id, '') AS claim_id
FROM events_raw
WHERE event_type IN ('event.claim', 'event.progress')
GROUP BY event_date, event_type, user_id, claim_id
SETTINGS max_execution_time = 0;
