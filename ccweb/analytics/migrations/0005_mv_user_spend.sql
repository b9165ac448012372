-- mv_user_spend: per UTC day and player, the successful shop purchases as a set of
-- (event_id, price_gold) pairs — only purchase rows reach it, so the whales query
-- (30 days, sum per player ≥ 50 000) reads one small row per buyer-day instead of one
-- per active player-day (mv_user_daily). Replay-proof: a repeated pair is one element.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_user_spend
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, user_id)
AS SELECT
    event_date,
    user_id,
    groupUniqArrayState((event_id, amount_gold)) AS spent_gold
FROM events_raw
WHERE event_type = 'shop.purchase' AND status = 'success'
GROUP BY event_date, user_id;
