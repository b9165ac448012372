-- mv_daily_kpis: one row per UTC day (after merges) with the states behind the daily
-- KPIs, so that GET /api/admin/analytics/kpis reads ~30 rows for 30 days instead of one
-- row per player-day (mv_user_daily). Measured on 18.16 with 1 000 000 events from
-- 20 000 players: the same numbers from mv_user_daily took ~450 ms (deserialising
-- ~350 000 small states), from this view a few ms.
-- Replay-proof like 0002: players and events are uniqExact sets, spend is the set of
-- (event_id, price_gold) pairs, so a batch inserted twice changes nothing.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_daily_kpis
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY event_date
AS SELECT
    event_date,
    uniqExactIfState(user_id, user_id != 0 AND event_type NOT IN ('event.progress', 'mission.progress', 'achievement.unlocked', 'shop.settlement')) AS active,
    uniqExactIfState(event_id, event_type = 'shop.purchase') AS purchases_all,
    uniqExactIfState(event_id, event_type = 'shop.purchase' AND status = 'success') AS purchases_ok,
    groupUniqArrayIfState((event_id, amount_gold), event_type = 'shop.purchase' AND status = 'success') AS spent_gold
FROM events_raw
GROUP BY event_date;
