-- mv_daily_kpis (0004) and mv_user_spend (0005) are superseded by the key views of
-- 0006 (mv_active_players, mv_purchases): nothing reads them any more, and every view
-- costs work on every INSERT into events_raw, so they go. Dropping a materialized view
-- drops its inner table; the facts stay in events_raw (and in the 0006 views).
-- mv_user_daily and mv_event_completion stay: they are the per-player and per-live-event
-- views of seed 002 §4.2, not KPI caches.
DROP TABLE IF EXISTS mv_daily_kpis;
DROP TABLE IF EXISTS mv_user_spend;
