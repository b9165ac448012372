-- mv_user_daily: per UTC day and player, the states behind DAU, ARPDAU, purchases and
-- whales (seed 002 §4.2, made replay-proof).
--
-- Why no sumState/countState: a materialized view sees every INSERT, so a batch that is
-- inserted again (a worker that died after the INSERT but before its ack, a batch split
-- in two whose second half failed) would count twice, and ReplacingMergeTree collapsing
-- the raw copies later does not undo what the view already added. Every column here is
-- a state that absorbs a repeated event:
--   * counts are uniqExact over event_id (a repeated event_id is the same element);
--   * "was active" flags are uniqExact over user_id (merged per day they give DAU);
--   * sums keep the set of (event_id, amount) pairs (groupUniqArray), summed at query
--     time, so a repeated pair is one element. Only successful purchases are kept (a few
--     per player-day), so the sets stay small.
-- The alternative, an ingester that skips event_ids already in events_raw, was rejected:
-- on a server where the raw insert succeeded but the view's insert failed it would skip
-- the retry and lose the view's rows for good; re-inserting into replay-proof states
-- repairs it instead. It would also cost a query per batch.
--
-- -If combinators keep one row per (day, player); the state types
-- (AggregateFunction(uniqExactIf, ...)) are read with uniqExactIfMerge and friends.
-- Activity excludes the events the system derives from the player's (event.progress,
-- mission.progress, achievement.unlocked) and shop.settlement (ccweb.events
-- NOT_PLAYER_ACTIVITY), and events without a player (user_id 0).
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_user_daily
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, user_id)
AS SELECT
    event_date,
    user_id,
    uniqExactIfState(user_id, user_id != 0 AND event_type NOT IN ('event.progress', 'mission.progress', 'achievement.unlocked', 'shop.settlement')) AS active,
    uniqExactIfState(event_id, event_type = 'shop.purchase') AS purchases_all,
    uniqExactIfState(event_id, event_type = 'shop.purchase' AND status = 'success') AS purchases_ok,
    groupUniqArrayIfState((event_id, amount_gold), event_type = 'shop.purchase' AND status = 'success') AS spent_gold,
    uniqExactIfState(event_id, event_type = 'event.claim') AS event_claims
FROM events_raw
GROUP BY event_date, user_id;
