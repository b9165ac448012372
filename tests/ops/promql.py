"""The series a PromQL expression selects — enough of PromQL's lexical rules to check
dashboards and alert rules against what the processes export, without a PromQL parser
dependency (``promtool`` checks the syntax itself where it is installed).

A selector is a metric name, optionally with label matchers: ``name{a="x", b=~"y"}``.
Everything else an expression holds is left out before names are looked for: string
literals, range and subquery brackets (``[5m]``, ``[$__rate_interval]``), the label lists
of ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``, function and
aggregation calls (a name followed by ``(``), keywords, numbers and durations, and
Grafana's ``$variables``.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_BRACKETS = re.compile(r"\[[^\]]*\]")
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan", "atan2"}
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*(\"(?:\\.|[^\"\\])*\"|'[^']*')")


def selectors(expr: str) -> list[tuple[str, dict[str, str]]]:
    """Every ``(metric name, {label: matched value})`` the expression selects."""
    matchers: list[str] = []

    def keep_matchers(m: re.Match[str]) -> str:
        matchers.append(m.group(0))
        return f"{{#{len(matchers) - 1}}}"

    text = re.sub(r"\{[^{}]*\}", keep_matchers, expr)  # before strings: they hold regexes
    text = _STRING.sub('""', text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    found: list[tuple[str, dict[str, str]]] = []
    for m in _NAME.finditer(text):
        name, rest = m.group(1), text[m.end() :].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue
        labels: dict[str, str] = {}
        block = re.match(r"\{#(\d+)\}", rest)
        if block:
            for label, value in _MATCHER.findall(matchers[int(block.group(1))]):
                labels[label] = value[1:-1]
        found.append((name, labels))
    return found
