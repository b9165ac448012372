-- events_raw: one row per domain event (SPEC §4 envelope), the single fact table.
--
-- Runs on ClickHouse 18.16 and current servers: DateTime (seconds) plus ts_ms for the
-- milliseconds instead of DateTime64; payload is JSON text in a String (read it with
-- visitParamExtract* on 18.16, JSONExtract* on newer servers); plain String instead of
-- LowCardinality. Typed columns (entity_id, delta_gold, amount_gold, balance_after,
-- status, game_type, version) are filled by the ingester (ccweb/analytics/ingest.py) so
-- that KPIs never parse JSON.
--
-- A replayed event collapses: the sorting key ends with (event_id, entity_id), and every
-- copy of an event has the same event_date, event_type and user_id, so all copies share
-- one key and ReplacingMergeTree(version) keeps one of them at merge time. Until a merge
-- ran, a copy may still be visible: exact readers use FINAL or count distinct event_id.
-- entity_id is in the key because a progress envelope can carry several items (events or
-- missions); the ingester stores one row per item with the same event_id.
CREATE TABLE IF NOT EXISTS events_raw
(
    event_id String,
    event_type String,
    user_id UInt64,
    ts DateTime('UTC'),
    ts_ms UInt16,
    event_date Date,
    entity_id UInt64,
    delta_gold Int64,
    amount_gold Int64,
    balance_after Int64,
    status String,
    game_type String,
    version UInt64,
    payload String,
    dedupe_key String,
    schema_version UInt16,
    trace_id String,
    source_service String,
    source_host String,
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, event_type, user_id, event_id, entity_id)
SETTINGS index_granularity = 8192;
