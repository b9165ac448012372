"""Which offers a player sees: ordered rules per RFM segment (seed 003 §3.6), pure.

The rules choose from :class:`Candidates` — what this player may act on right now, read
by :mod:`ccweb.recommendations.service` with the shop's and LiveOps' own visibility
conditions (on sale, tier allowed, in stock, a ``limit_once`` package not yet bought; an
active event the tier may join; the current period's missions). So a rule never
recommends something the purchase or the join would refuse, and nothing here names a
product or mission id: every pick is a condition on the live catalog.

Per segment, the rules run in order; each adds up to ``take`` picks not already chosen,
at most :data:`MAX_ITEMS` in all. A segment whose rules find nothing (its package sold
out, bought or off sale, no open mission…) falls back to :data:`FALLBACK_RULES`, the
cold-start offers also shown to a player with no segment, and the answer says
``result="fallback"``. A label without rules (a new one) falls back the same way.

The catalog conditions, defended:

* **return package** (AtRisk) — a package whose sku starts with ``pkg_return``. A
  win-back offer is a deliberate operator choice, not a property the catalog can infer
  (any bonus package "gives gold"), and the shop has no tag column; the sku is unique,
  stable and set by the operator, so the prefix is the tag. Return packages are reserved
  for this rule: the other rules skip them, so a lapsed payer's offer stays theirs.
* **limited package** (Whale) — a package with a stock limit or an end date (scarcity by
  count or by time), the priciest first: big spenders are the ones who buy them out. A
  ``limit_once`` package alone is not "limited": once per player is the starter deal.
* **mission extension** (HighEngaged) — the current period's missions still open
  (``status="active"``: neither completed nor claimed), weekly first: a player who plays
  every day gets the longer goal that carries their play past today's missions.
* **value package** (Medium) — the package with the most gold per gold paid.
* **entry package** (Low, fallback) — the cheapest package: the smallest step back in.
* **starter package** (fallback) — the cheapest ``limit_once`` package (the seed's
  Starter Pack), which the candidates only hold while the player has not bought it.
* **event to join** — an active event the player has not joined, the one ending first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

MAX_ITEMS = 3
RETURN_SKU_PREFIX = "pkg_return"

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Everything one player may be offered now (already filtered for availability).

    ``products``: packages the player may buy (``id, sku, name, price_gold, gold_amount,
    limit_once, stock_remaining, ends_at``: catalog columns); ``missions``: ``{"daily":
    [...], "weekly": [...]}`` of the current periods (``ccweb.liveops.views.mission_out``);
    ``events``: active events the tier may join, ending first, each with its
    ``participation`` or None (the dashboard's ``active_events``)."""

    label: str | None
    products: Sequence[Row]
    missions: Mapping[str, Sequence[Row]]
    events: Sequence[Row]


def is_return_package(product: Row) -> bool:
    return str(product["sku"]).startswith(RETURN_SKU_PREFIX)


def _packages(c: Candidates) -> list[Row]:
    """The packages open to every rule (return packages are AtRisk's alone)."""
    return [p for p in c.products if not is_return_package(p)]


def return_packages(c: Candidates) -> list[Row]:
    return sorted(
        (p for p in c.products if is_return_package(p)), key=lambda p: (p["price_gold"], p["id"])
    )


def limited_packages(c: Candidates) -> list[Row]:
    limited = (
        p for p in _packages(c) if p["stock_remaining"] is not None or p["ends_at"] is not None
    )
    return sorted(limited, key=lambda p: (-p["price_gold"], p["id"]))


def top_packages(c: Candidates) -> list[Row]:
    return sorted(_packages(c), key=lambda p: (-p["price_gold"], p["id"]))


def value_packages(c: Candidates) -> list[Row]:
    # price_gold > 0 for every package (CHECK gold_products_cost_gold)
    return sorted(
        _packages(c), key=lambda p: (-p["gold_amount"] / p["price_gold"], p["price_gold"], p["id"])
    )


def entry_packages(c: Candidates) -> list[Row]:
    return sorted(_packages(c), key=lambda p: (p["price_gold"], p["id"]))


def starter_packages(c: Candidates) -> list[Row]:
    return [p for p in entry_packages(c) if p["limit_once"]]


def open_missions(c: Candidates) -> list[Row]:
    return [
        m
        for period in ("weekly", "daily")
        for m in c.missions.get(period, ())
        if m["status"] == "active"
    ]


def events_to_join(c: Candidates) -> list[Row]:
    return [e for e in c.events if e["participation"] is None]


Kind = Literal["product", "mission", "event"]


@dataclass(frozen=True, slots=True)
class Rule:
    reason: str  # machine code, also the offer's ``reason``
    kind: Kind
    pick: Callable[[Candidates], list[Row]]
    cta: str
    take: int = 1  # how many of its picks one answer shows


RETURN_PACKAGE = Rule("return_package", "product", return_packages, "Welcome back: claim your pack")
LIMITED_PACKAGE = Rule(
    "limited_package", "product", limited_packages, "Limited: get it before it's gone"
)
TOP_PACKAGE = Rule("top_package", "product", top_packages, "Our biggest pack")
MISSION_EXTENSION = Rule("mission_extension", "mission", open_missions, "Keep going", take=2)
VALUE_PACKAGE = Rule("value_package", "product", value_packages, "Best value")
ENTRY_PACKAGE = Rule("entry_package", "product", entry_packages, "A small step back in")
STARTER_PACKAGE = Rule("starter_package", "product", starter_packages, "Starter deal, once only")
JOIN_EVENT = Rule("join_event", "event", events_to_join, "Join the event")

SEGMENT_RULES: dict[str, tuple[Rule, ...]] = {
    "AtRisk": (RETURN_PACKAGE, JOIN_EVENT),
    "Whale": (LIMITED_PACKAGE, TOP_PACKAGE),
    "HighEngaged": (MISSION_EXTENSION, JOIN_EVENT),
    "Medium": (VALUE_PACKAGE, JOIN_EVENT),
    "Low": (JOIN_EVENT, ENTRY_PACKAGE),
}
FALLBACK_RULES: tuple[Rule, ...] = (STARTER_PACKAGE, ENTRY_PACKAGE, JOIN_EVENT)


def _mission_cta(rule: Rule, mission: Row) -> str:
    """The cta with the first requirement still short of its target: "Keep going: 40/100"."""
    for p in mission.get("progress") or ():
        if p["current"] < p["target"]:
            return f"{rule.cta}: {p['current']}/{p['target']}"
    return rule.cta


def offer(rule: Rule, row: Row, segment: str | None) -> dict[str, Any]:
    """``{type, id, sku?, title, reason, segment, cta}``; ``segment`` is the label whose
    rule chose it (None for a fallback offer)."""
    out: dict[str, Any] = {"type": rule.kind, "id": row["id"]}
    if rule.kind == "product":
        out["sku"] = row["sku"]
        out["title"] = row["name"]
    else:
        out["title"] = row["title"]
    out["reason"] = rule.reason
    out["segment"] = segment
    out["cta"] = _mission_cta(rule, row) if rule.kind == "mission" else rule.cta
    return out


def _apply(rules: Sequence[Rule], c: Candidates, segment: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    chosen: set[tuple[str, int]] = set()
    for rule in rules:
        fresh = [r for r in rule.pick(c) if (rule.kind, r["id"]) not in chosen]
        for row in fresh[: min(rule.take, MAX_ITEMS - len(items))]:
            chosen.add((rule.kind, row["id"]))
            items.append(offer(rule, row, segment))
    return items


def recommend(c: Candidates) -> dict[str, Any]:
    """``{segment, result: "ok"|"fallback", items}`` for one player."""
    items = _apply(SEGMENT_RULES.get(c.label or "", ()), c, c.label)
    if items:
        return {"segment": c.label, "result": "ok", "items": items}
    return {"segment": c.label, "result": "fallback", "items": _apply(FALLBACK_RULES, c, None)}
