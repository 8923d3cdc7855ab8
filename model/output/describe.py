"""Policies in words: what each rule of a policy asks, for the reports.

"At most 50 % of each element's demand from China, at mining and at refining,
in every scenario" reads better in a briefing than the YAML it comes from.
Every rule kind of :class:`model.input.schema.Policy` has a sentence here; a rule
kind added to the schema without one is shown by its YAML keys, so nothing
is silently left out (tests/test_report.py checks every kind).
"""

from __future__ import annotations

from typing import Any, Sequence

from .palette import country_name
from ..input.schema import RULE_KINDS, Instance, Policy, Selector


def _and(items: Sequence[Any], word: str = "and") -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def _pct(share: float | dict[Any, float]) -> str:
    """'65 %', or for a phased share '65 % from 2028' / '80 % in 2027, 65 % from 2028'."""
    if not isinstance(share, dict):
        return f"{share * 100:.4g} %"
    items = list(share.items())
    parts: list[str] = []
    i = 0
    while i < len(items):                  # runs of equal shares: "65 % in 2028-2032"
        j = i
        while j + 1 < len(items) and items[j + 1][1] == items[i][1]:
            j += 1
        span = str(items[i][0]) if i == j else f"{items[i][0]}-{items[j][0]}"
        parts.append(f"{items[i][1] * 100:.4g} % in {span}")
        i = j + 1
    return _and(parts) + " (phased: no rule in the other periods)"


def _scope(rule: Any) -> str:
    """', for Dy and Tb, in 2028' from a rule's elements and periods."""
    out = ""
    if getattr(rule, "elements", None):
        out += f", for {_and(rule.elements)}"
    if getattr(rule, "periods", None):
        out += f", in {_and(rule.periods)}"
    return out


def _whose(rule: Any) -> str:
    return "each element group's demand (a group's elements counted together)" \
        if getattr(rule, "per", "element") == "group" else "each element's demand"


def _where(rule: Any) -> str:
    return ("in the contracts signed (the plan, against base demand)"
            if getattr(rule, "applies_to", "every_scenario") == "plan"
            else "in every scenario")


def _stages(stages: Sequence[str]) -> str:
    return _and([f"at {s}" for s in stages])


def selector_words(sel: Selector) -> str:
    """An `exclude` entry in words: "no source refined in China"."""
    if sel.project is not None:
        names = sel.project if isinstance(sel.project, list) else [sel.project]
        return f"project {_and(names, 'or')} is not built"
    parts = []
    if sel.mode is not None:
        modes = sel.mode if isinstance(sel.mode, list) else [sel.mode]
        parts.append(f"{_and(modes, 'or')}-mode")
    if sel.recycled is not None:
        parts.append("recycled" if sel.recycled else "primary (not recycled)")
    what = " ".join(parts + ["source"])
    where = []
    for key, verb in (("mined_in", "mined"), ("refined_in", "refined")):
        v = getattr(sel, key)
        if v is not None:
            codes = v if isinstance(v, list) else [v]
            where.append(f"{verb} in {_and([country_name(c) for c in codes], 'or')}")
    if sel.id is not None:
        ids = sel.id if isinstance(sel.id, list) else [sel.id]
        return f"not source {_and(ids, 'or')}" + (f" ({what} {_and(where)})" if where else "")
    if not where and not parts:
        return "no source at all"
    return f"no {what}" + (" " + _and(where) if where else "")


def policy_in_words(name: str, policy: Policy | None, inst: Instance) -> list[str]:
    """One sentence per rule of policy `name` (`none`: no rule)."""
    if policy is None:
        return ["No policy rule: the cheapest plan under the instance's own terms "
                "(capacities, signed contracts, prices)." if name == "none" else
                "Not defined in this instance."]
    cur = inst.currency
    # several buyers: each rule holds for each buyer, with that buyer's home countries
    home = country_name(inst.home) if inst.buyers is None else "the buyer's home countries"
    out: list[str] = []
    for r in policy.max_single_country_share:
        src = (f"from {_and([country_name(c) for c in r.countries], 'or')}"
               if r.countries and len(r.countries) == 1 else
               f"from any one of {_and([country_name(c) for c in r.countries], 'or')}"
               if r.countries else f"from any single country other than {home}")
        out.append(f"At most {_pct(r.share)} of {_whose(r)} {src}, {_stages(r.stages)}"
                   f"{_scope(r)}, {_where(r)}.")
    for r in policy.min_domestic_share:
        out.append(f"At least {_pct(r.share)} of {_whose(r)} from {home} at {r.stage}"
                   f"{_scope(r)}, {_where(r)}.")
    for r in policy.min_recycled_share:
        out.append(f"At least {_pct(r.share)} of {_whose(r)} from recycled sources"
                   f"{_scope(r)}, {_where(r)}.")
    if policy.exclude:
        out.append(f"Excluded: {_and([selector_words(s) for s in policy.exclude], 'and')}.")
    for r in policy.min_stock_days:
        what = f"of {_and(r.elements)}" if r.elements else "of every element"
        soft = (f"; a soft floor: each tonne below it costs {cur} {r.deficit_cost:,.6g} "
                "per period" if r.deficit_cost is not None else "")
        out.append(f"A stock of at least {r.days:g} days of demand {what} at the end of "
                   f"every period{', in ' + _and(r.periods) if r.periods else ''}, released "
                   f"in an emergency and for {r.refill} period{'s' if r.refill != 1 else ''} "
                   f"after it{soft}.")
    for r in policy.budget:
        out.append(f"Expected discounted cost at most {cur} {r.amount / 1e6:,.1f} m.")
    for r in policy.build:
        size = "in full" if r.min_size == 1 else f"to at least {r.min_size:g} of its full size"
        out.append(f"Build project {r.project} {size} (on every scenario path).")
    if not policy.build_stock:
        out.append("Stock may be drawn but never raised: no stock is bought to be held "
                   "(what holding stock is worth, against a policy without this rule).")
    known = {"max_single_country_share", "min_domestic_share", "min_recycled_share",
             "exclude", "min_stock_days", "budget", "build"}
    for key in RULE_KINDS:           # a rule kind without a sentence yet
        if key not in known and getattr(policy, key):
            out.append(f"{key}: {getattr(policy, key)}")
    return out or ["No rule (an empty policy): the cheapest plan."]
