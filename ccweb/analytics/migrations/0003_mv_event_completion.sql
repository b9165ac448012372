-- mv_event_completion: per UTC day and live event (entity_id = the event's id), who
-- joined, progressed, reached claimable and claimed (seed 002 §4.2), replay-proof for
-- the same reason as mv_user_daily: counts are uniqExact over event_id, player counts
-- uniqExact over user_id, so a batch inserted twice changes nothing.
-- Merging the player states across entities of one day gives distinct players that day
-- (the KPI claim_conversion); per entity they give the seed's completion rate.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_event_completion
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, entity_id)
AS SELECT
    event_date,
    entity_id,
    uniqExactIfState(user_id, event_type = 'event.participate') AS participants,
    uniqExactIfState(event_id, event_type = 'event.progress') AS progress_updates,
    uniqExactIfState(user_id, event_type = 'event.progress') AS progress_players,
    uniqExactIfState(user_id, event_type = 'event.progress' AND status = 'claimable') AS completed_players,
    uniqExactIfState(event_id, event_type = 'event.claim') AS claims,
    uniqExactIfState(user_id, event_type = 'event.claim') AS claimers
FROM events_raw
WHERE event_type IN ('event.participate', 'event.progress', 'event.claim')
GROUP BY event_date, entity_id;
