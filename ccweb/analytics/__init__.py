"""Analytics on ClickHouse (SPEC §4, seed 002 §4): the schema and its migrations
(``migrate``), the envelope → row mapping (``ingest``, used by the worker's ``analytics``
group), the KPIs (``kpis``) and their admin route (``routes``)."""
