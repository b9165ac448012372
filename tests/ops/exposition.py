"""Reading Prometheus text exposition (what ``/metrics`` answers) in tests: the value of
one series, and every name a PromQL expression may use for what a target exports."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

# the series a family of each type exposes (the parser names a counter family without
# its _total, a histogram's by its base name; neither is a series a query can select)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` whose labels include ``labels``; None when there is none."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def exported(text: str) -> dict[str, set[str]]:
    """Every series name the exposition offers → the label names seen on its samples.
    A family announced without samples (a labelled metric nobody used yet, in one
    process's registry) still counts, with no labels known."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            out.setdefault(family.name + suffix, set())
        for s in family.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out
