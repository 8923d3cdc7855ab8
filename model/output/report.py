"""`sourcing report`: a self-contained HTML page of a run, comparison or sweep folder.

The page embeds its charts as base64 PNG and its styles inline, so it opens
from a file in any browser without a server. It shows the headline numbers,
the tables, the charts and the instance's assumptions (sources, scenarios,
the policy's rules), read from the folder alone.

The folder is not trusted: its files are read only as regular files, never
through a symbolic link (model.input.folders.read_member), every text goes through
html.escape, and the page names the folder but holds no absolute path. The
page is written to a fresh temporary file (mkstemp) beside its target and
renamed over it, so a planted link is replaced, never written through.
"""

from __future__ import annotations

import base64
import html
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..analysis.binding import binding_rows
from ..errors import UsageError
from ..input.folders import has_table, read_member, read_summary, read_table, table_limits
from .describe import policy_in_words
from .formatting import (MACHINE, cell, format_frame, key_scenarios, numeric_columns,
                         period_word, spec)
from ..input.instance import load_instance
from ..input.regimes import describe as describe_scenarios
from ..input.regimes import (MANY_SCENARIOS, is_generated, scenario_list, scenario_paths,
                             state_tokens, summarised)
from .scenario_summary import (WORST_LISTED, by_regime_grid, comparison_distribution,
                               comparison_worst, distribution, event_summary,
                               regime_probability, shortage_by_regime, worst_scenarios)
from .palette import country_color

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1400px;color:#222;padding:0 1em;overflow-wrap:anywhere}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
.scroll{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;overflow-wrap:normal}
th{background:#f3f3f3;vertical-align:bottom}td:first-child,th:first-child{text-align:left}
td.text,th.text{text-align:left}td.wide{min-width:18em;max-width:36em;overflow-wrap:anywhere}
.kv td:first-child{font-weight:600}.note{color:#666;font-size:.9em}
#key{font-size:.85em}#key td{white-space:nowrap;padding:3px 6px}#key th{padding:3px 6px}
#key td.wide{white-space:normal;min-width:10em}#key td.base{color:#666}
#key th.group{text-align:center}
#key caption{caption-side:bottom;text-align:left;color:#666;font-size:.9em;padding:.3em 0}
#key-supply{font-size:.85em}#key-supply td{padding:3px 6px;vertical-align:top}
#key-supply td.contracts{white-space:nowrap}#key-supply td.binds{min-width:16em}
#key td:first-child,#key th:first-child,#key-supply td:first-child,
#key-supply th:first-child{position:sticky;left:0;background:#fff;white-space:nowrap}
#key-supply th:first-child{background:#f3f3f3}
#key td:first-child,#key th:first-child{position:sticky;left:0;background:#fff}
#key th:first-child{background:#f3f3f3}
.d{color:#666;font-size:.85em;white-space:nowrap}
details p{white-space:pre-line;max-width:60em}details{margin:.3em 0}
.sw{display:inline-block;width:.8em;height:.8em;border:1px solid #999;margin-right:.3em;
vertical-align:-.05em}
dl.policies dt{font-weight:600;margin-top:.5em}dl.policies dd{margin-left:1.5em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;font-size:.8em;overflow-x:auto}
.bad{color:#b00;font-weight:600}
@media (max-width:800px){body{margin:1em auto;padding:0 .5em}table{font-size:.75em}}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _swatch(code: Any) -> str:
    """A small square in the country's chart colour (model.output.palette), before its code."""
    return f'<span class="sw" style="background:{country_color(str(code))}"></span>'


def _table(df: pd.DataFrame, table_id: str, max_rows: int = 400, currency: str = "",
           per: str = "period", kinds: dict[str, str] | None = None) -> str:
    """A table for people (model.output.formatting: units in the headers, no e-notation) in
    a box that scrolls sideways, so a wide table never widens the page."""
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">first {max_rows:,} of {len(df):,} rows; the CSV has all.</p>'
        df = df.head(max_rows)
    shown = format_frame(df, currency, per, kinds)
    numeric = numeric_columns(df, kinds)
    head = "".join(f'<th{"" if n else " class=text"}>{_esc(h)}</th>'
                   for h, n in zip(shown.columns, numeric))
    rows = []
    for values in shown.itertuples(index=False):
        cells = []
        for name, v, n in zip(df.columns, values, numeric):
            cls = "" if n else (" class='text wide'" if len(v) > 60 else " class=text")
            text = _esc(v)
            if name in COUNTRY_COLUMNS and v:
                text = _swatch(v) + text
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table id="{_esc(table_id)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{note}')


COUNTRY_COLUMNS = {"mined_in", "refined_in", "max_share_of_demand_mining_country",
                   "max_share_of_demand_refining_country", "country"}


def _kv(pairs: list[tuple[str, Any]], table_id: str) -> str:
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv" id="{table_id}">{rows}</table></div>'


def _csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    return read_table(path, **kwargs)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(read_member(path)).decode()
    return (f'<img alt="{_esc(alt)}" data-chart="{_esc(path.name)}" '
            f'onload="this.dataset.ok=1" src="data:image/png;base64,{data}">')


def _num(v: Any, unit: str = "") -> str:
    """A number for people: 6 significant digits, whole units from a million up."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}{unit}" if abs(v) < 1e6 else f"{v:,.0f}{unit}"
    return f"{v}{unit}"


format_number = _num


def sampling_lines(sampling: Any, cur: str = "") -> list[tuple[str, str]]:
    """The ``sampling`` object of a summary (model.studies.sampling) as (label, text)
    rows, for the report's table and the `solve` printout; none without one."""
    if not isinstance(sampling, dict):
        return []
    unit = f" {cur}" if cur else ""
    c = sampling.get("confidence", 0.95)
    level = f"{c * 100:g} %"
    head = (f"{sampling.get('replications')} replications of {sampling.get('paths'):,} "
            f"paths (seed {sampling.get('seed')}); the first stage evaluated on "
            f"{sampling.get('evaluate'):,} paths; {level} confidence")
    rows = [("sampling statistics", head)]
    if sampling.get("status") != "optimal":
        return rows + [("sampling statistics: not complete",
                        f"{sampling.get('status')}: {sampling.get('message', '')}")]
    lb, ub, gap = sampling["lower_bound"], sampling["upper_bound"], sampling["gap"]

    def pm(value: Any, half: Any) -> str:
        text = _num(value, unit)
        return text if half is None else f"{text} ± {_num(half, '')}"
    rows.append(("lower bound: mean of the replications' optima",
                 pm(lb["mean"], lb["half_width"]) + f" ({level} interval)"))
    rows.append(("upper bound: this plan's first stage, the rest re-solved",
                 pm(ub["value"], ub["half_width"])
                 + (f" ({level} interval)" if ub["half_width"] is not None
                    else " (no interval: the objective is not a mean of path costs: "
                         "CVaR or ambiguity)")))
    rel = gap.get("relative_upper")
    rows.append(("optimality gap of this plan (Mak, Morton and Wood)",
                 f"estimate {_num(gap['mean'], unit)}; at most {_num(gap['upper'], unit)}"
                 + (f" ({rel:.3%} of the lower bound)" if rel is not None else "")
                 + f" with {level} confidence"))
    cand = sampling.get("candidate") or {}
    rows.append(("first-stage decisions fixed",
                 f"{cand.get('contracts_fixed', 0):,} contracts, "
                 f"{cand.get('builds_fixed', 0):,} builds"))
    if sampling.get("seconds") is not None:
        rows.append(("sampling statistics took", f"{sampling['seconds']:,.1f} s"))
    return rows


def _rules_words(holder: Any) -> str:
    """The rules of a scenario (or regime, event, `always`) in words."""
    rules = []
    for r in holder.disruptions:
        rules.append(f"availability x{r.availability:g} for "
                     f"{_sel(r.match)} {r.elements or 'all elements'} {r.periods or ''}")
    for r in holder.price_shocks:
        rules.append(f"price x{r.multiplier:g} for {_sel(r.match)} "
                     f"{r.elements or 'all elements'} {r.periods or ''}")
    for r in holder.demand_shocks:
        rules.append(f"demand x{r.multiplier:g} for {r.elements or 'all elements'} "
                     f"{r.periods or ''}")
    return "; ".join(rules)


def _regime_tables(inst: Any) -> list[str]:
    """Scenarios from regimes and events: the regimes, the transition matrices, the
    events and the rules that always hold (model.input.regimes)."""
    model, paths = inst.scenarios, scenario_paths(inst)
    parts = ["<h3>Scenarios from regimes and events</h3>",
             f"<p>{_esc(describe_scenarios(inst))}: each scenario is a regime path and the "
             "events that happen; its id reads the path (the regimes' initials by period, then "
             "+event).</p>"]
    reg = model.regimes
    if reg is not None:
        tokens = dict(zip(paths.states, state_tokens(paths.states)))
        parts.append(_table(pd.DataFrame([
            {"regime": name, "in ids": tokens[name], "description": st.description or "",
             "rules": _rules_words(st) or "none"} for name, st in reg.states.items()]),
            "assumptions-regimes"))
        start = {reg.start: 1.0} if isinstance(reg.start, str) else reg.start
        rows = [{"matrix": "start (before the first period)", "from": "",
                 **{s: start.get(s, 0.0) for s in reg.states}}]
        matrices = [("transition", reg.transition)] + \
            [(f"by_period {k} (from {k} on)", m) for k, m in reg.by_period.items()]
        for label, matrix in matrices:
            rows += [{"matrix": label, "from": f, **{s: row.get(s, 0.0) for s in reg.states}}
                     for f, row in matrix.items()]
        parts += ['<p class="note">P(next regime | current regime), one row per current '
                  'regime:</p>', _table(pd.DataFrame(rows), "assumptions-transitions",
                                        kinds={s: "probability" for s in reg.states})]
    if model.events:
        parts.append(_table(pd.DataFrame([
            {"event": e.id, "probability": e.probability, "description": e.description or "",
             "rules": _rules_words(e)} for e in model.events]), "assumptions-events"))
    always = _rules_words(model.always)
    if always:
        parts.append(f"<p>In every scenario: {_esc(always)}</p>")
    return parts


def _assumptions(inst: Any, policy: str | None) -> str:
    if inst is None:
        return '<p class="note">no instance.yaml in this folder</p>'
    src_rows = []
    for s in inst.sources:
        window = ""
        if s.available is not None:
            window = f"{s.available.from_ or ''}..{s.available.until or ''}"
        for e, sup in s.supply.items():
            cap = sup.capacity if not isinstance(sup.capacity, dict) else \
                f"{min(sup.capacity.values()):,.6g}..{max(sup.capacity.values()):,.6g}"
            price = sup.price if not isinstance(sup.price, dict) else \
                f"{min(sup.price.values()):,.6g}..{max(sup.price.values()):,.6g}"
            if sup.index is not None:        # priced on a price index
                price = f"{sup.premium if sup.premium is not None else 1:g} x {sup.index}"
            src_rows.append({"source": s.id, "name": s.name or "", "mined_in": s.mined_in,
                             "refined_in": s.refined_in, "mode": s.mode,
                             "recycled": s.recycled, "reservation_fee": s.reservation_fee,
                             "window": window, "element": e, "capacity_t": cap,
                             "price": price})
    generated = is_generated(inst)
    scen_rows = []
    listed = [] if generated else scenario_list(inst)
    if len(listed) > MANY_SCENARIOS:      # the most probable few, the CSV has all
        order = sorted(range(len(listed)), key=lambda i: -listed[i].probability)
        listed = [listed[i] for i in sorted(order[:WORST_LISTED])]
    for w in listed:
        scen_rows.append({"scenario": w.id, "probability": w.probability,
                          "description": w.description or "", "rules": _rules_words(w)})
    n_scen = len(scenario_list(inst))
    parts = [f"<h2>Assumptions: instance {_esc(inst.name)}</h2>",
             f"<p>{_esc(inst.description)}</p>",
             _kv([("home country", inst.home) if inst.buyers is None else
                  ("buyers", "; ".join(f"{b.id} (home {' '.join(b.home)})"
                                       for b in inst.buyers)),
                  ("currency", inst.currency),
                  ("periods", ", ".join(map(str, inst.periods))),
                  ("elements", ", ".join(inst.elements)),
                  ("discount rate", inst.discount_rate),
                  ("risk", f"lambda {inst.risk.lambda_:g}, alpha {inst.risk.alpha:g}")],
                 "assumptions-general"),
             "<h3>Sources</h3>",
             _table(pd.DataFrame(src_rows), "assumptions-sources", currency=inst.currency,
                    kinds={"reservation_fee": "share", "price": "per_t"})]
    if generated:
        parts += _regime_tables(inst)
    if scen_rows:
        parts += ["<h3>Scenarios</h3>", _table(pd.DataFrame(scen_rows), "assumptions-scenarios")]
        if len(scen_rows) < n_scen:
            parts.append(f'<p class="note">The {len(scen_rows)} most probable of {n_scen:,} '
                         "scenarios; the instance lists all.</p>")
    if policy and policy != "none" and policy in inst.policies:
        rules = inst.policies[policy].model_dump(by_alias=True, exclude_defaults=True,
                                                 exclude_none=True,
                                                 exclude={"notes", "sources"})
        words = "".join(f"<li>{_esc(w)}</li>"
                        for w in policy_in_words(policy, inst.policies[policy], inst))
        parts += [f"<h3>Policy {_esc(policy)}</h3>", f"<ul>{words}</ul>",
                  '<p class="note">As written in the instance:</p>',
                  f"<pre>{_esc(yaml.safe_dump(rules, sort_keys=False))}</pre>"]
    parts += _provenance(inst, policy)
    return "\n".join(parts)


def _provenance(inst: Any, policy: str | None) -> list[str]:
    """Where the figures come from: each item's `notes` and `sources` (citations),
    folded (one <details> per item), as the instance writes them."""
    # a long list of scenarios: the first MANY_SCENARIOS with notes (the instance has all)
    noted = [w for w in ([] if is_generated(inst) else scenario_list(inst))
             if w.notes or w.sources][:MANY_SCENARIOS]
    items: list[tuple[str, Any]] = [("source", s) for s in inst.sources] + \
        [("project", p) for p in inst.projects] + [("scenario", w) for w in noted]
    if policy and policy in inst.policies:
        items.append(("policy", inst.policies[policy]))
    blocks = []
    for kind, item in items:
        notes, cites = getattr(item, "notes", None), getattr(item, "sources", None) or []
        if not notes and not cites:
            continue
        name = policy if kind == "policy" else item.id
        body = (f"<p>{_esc(notes)}</p>" if notes else "") + (
            "<ul>" + "".join(f"<li>{_esc(c)}</li>" for c in cites) + "</ul>" if cites else "")
        blocks.append(f"<details><summary>{kind} {_esc(name)}</summary>{body}</details>")
    if not blocks:
        return []
    return ["<h3>Where the figures come from</h3>",
            '<p class="note">Each item\'s notes (sourced, derived or estimate) and citations, '
            "as the instance gives them.</p>", *blocks]


def _sel(sel: Any) -> str:
    d = sel.model_dump(exclude_none=True)
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "all sources"


def _run_body(folder: Path, s: dict[str, Any], inst: Any = None) -> list[str]:
    cur = s.get("currency", "")
    # tables no larger than this folder's instance allows (a crafted balance.csv of
    # 40,000 elements and scenarios is refused, not pivoted)
    limits = table_limits(inst) if inst is not None else {}

    def _csv(path: Path, **kwargs: Any) -> pd.DataFrame:
        return read_table(path, limits.get(path.stem), **kwargs)

    head = [("status", s["status"]), ("message", s.get("message", "")),
            ("policy", s["policy"]), ("objective", _num(s["objective"], f" {cur}")),
            ("expected cost", _num(s["expected_cost"], f" {cur}")),
            (f"CVaR {s['risk']['alpha']:g}", _num(s["cvar"], f" {cur}"))]
    for e, t in (s.get("expected_shortage_by_element_t") or {}).items():
        head.append((f"expected shortage of {e}", _num(float(t), " t")))
    if s.get("expected_shortage_value") is not None:
        head.append(("expected shortage at the penalty prices (discounted)",
                     _num(float(s["expected_shortage_value"]), f" {cur}")))
    head += [("expected shortage, all elements summed", _num(s["expected_shortage_t"], " t")),
             ("worst-scenario shortage, all elements summed",
              _num(s["worst_shortage_t"], " t"))]
    for stage, v in (s.get("max_single_country_share") or {}).items():
        head.append((f"max third-country share of demand, {stage} (deliveries into stock count)",
                     f"{v['share']:.1%} ({v['country']}, {v['element']} {v['period']}, "
                     f"{v['scenario']})" if v["country"] else "0"))
    for key in ("ws", "eev", "evpi", "vss"):
        if key in s:
            head.append((key.upper(), _num(s[key], f" {cur}")))
    head += [("solver", f"HiGHS {s['solver_version']}, {s['solve_seconds']:.3f} s"),
             ("instance sha256", s["instance_sha256"]), ("tool version", s["version"])]
    head += [("warning", w) for w in s.get("warnings") or []]
    parts = ["<h2>Summary</h2>", _kv(head, "summary")]
    sampling = sampling_lines(s.get("sampling"), cur)
    if sampling:
        parts += ["<h2>How good is this sample: bounds and gap</h2>",
                  '<p class="note">The instance solves a sample of its regime paths. '
                  "Further independent samples bound the optimum over every path from "
                  "below; this plan's first-stage decisions, fixed on another sample (the "
                  "rest re-solved), bound it from above; the gap says how much better any "
                  "plan could do (docs/mathematics.md, Sampling statistics).</p>",
                  _kv(sampling, "sampling")]
    at_limit = bool((s.get("mip") or {}).get("plan_at_limit"))
    if s["status"] != "optimal" and not at_limit:
        parts.append(f'<p class="bad">No allocation: the model is {_esc(s["status"])}. '
                     f'{_esc(s.get("message", ""))}</p>')
        return parts
    if at_limit:
        gap = s["mip"].get("gap")
        parts.append(f'<p class="bad">Not optimal: stopped at a limit ({_esc(s["status"])}); '
                     f"the best plan found is shown, within {gap:.2%} of the best bound.</p>"
                     if gap is not None else '<p class="bad">Not optimal: stopped at a '
                     "limit; the best plan found is shown.</p>")
    many = inst is not None and summarised(inst)
    paths = scenario_paths(inst) if inst is not None else None
    for png, title in (("allocation_by_country.png", "Supply by country"),
                       ("scenarios.png", "Cost and shortage across the scenarios" if many
                        else "Cost and shortage per scenario"),
                       ("regimes.png", "Regimes by period: probability and shortage"),
                       ("tree.png", "What is known when: the information tree"),
                       ("projects.png", "Investment: capacity the builds add")):
        if os.path.lexists(folder / png):
            parts += [f"<h2>{title}</h2>", _img(folder / png, title)]
    alloc = _csv(folder / "allocation.csv")
    alloc = alloc[alloc.contracted_t > 1e-9].drop(columns=["excluded"])
    parts += ["<h2>Contracts (first stage)</h2>"] + _contracts(alloc, cur)
    if os.path.lexists(folder / "projects.csv"):
        parts += ["<h2>Investment: builds decided</h2>"] + \
            _builds(_csv(folder / "projects.csv"), cur)
    scen = _csv(folder / "scenarios.csv", dtype={"scenario": str})
    bal = _csv(folder / "balance.csv", columns=("element", "scenario", "shortage_t"),
               dtype={"element": str, "scenario": str})
    bal["shortage_t"] = pd.to_numeric(bal.shortage_t, errors="coerce")
    if many:
        parts += _many_scenarios(scen, bal, paths, cur)
    else:
        parts += ["<h2>Scenarios</h2>",
                  '<p class="note">Costs discounted as in the objective.</p>',
                  _table(scen, "scenarios", currency=cur)]
    if paths is None or not paths.states:
        parts += _shortage_pivot(bal, WORST_LISTED if many else MAX_SCENARIO_COLUMNS)
    if not has_table(folder / "duals.csv"):
        return parts + ["<h2>What binds: marginal values</h2>",
                        '<p class="note">This run has no duals.csv: it was solved by scenario '
                        "decomposition (mpi-sppy), which does not give the extensive form's "
                        "marginal values. Solve it with the default engine to see them.</p>"]
    duals = _csv(folder / "duals.csv", na_values=[])
    binding = duals[(duals.constraint != "demand") & (pd.to_numeric(duals.value) != 0)]
    binding = binding.reindex(pd.to_numeric(binding.value).sort_values().index)
    # a budget row's value is per unit of currency, every other row's per tonne
    per_t = {"value": "number" if (binding.constraint == "budget").any() else "per_t"}
    per = period_word(inst.period_days) if inst is not None else "period"
    words = binding_rows(duals, inst, cur, per, families=None, top=12)
    parts += ["<h2>What binds: marginal values</h2>",
              '<p class="note">The rules and capacities whose relaxation saves the most, '
              "each added up over its periods and scenarios (the saving in expected "
              "discounted cost from relaxing it in every one of them):</p>",
              '<ol id="binding-words">' + "".join(f"<li>{_esc(b.words)}</li>" for b in words)
              + "</ol>" if words else '<p class="note">Nothing binds.</p>',
              '<p class="note">Row by row: the change in the objective per tonne of '
              "relaxation (policy rows) or per extra tonne of capacity; negative means "
              "relaxing saves money.</p>",
              _table(binding.head(60), "binding", currency=cur, kinds=per_t),
              "<h3>Marginal cost of demand</h3>",
              _table(duals[duals.constraint == "demand"][["element", "period", "value"]],
                     "demand-duals", currency=cur, kinds={"value": "per_t"})]
    return parts


MAX_NODES_LISTED = 20      # contracts and builds at more nodes are summarised per period


def _contracts(alloc: pd.DataFrame, cur: str) -> list[str]:
    """The contracts with tonnes: one row each when they are decided at a few nodes;
    else per source, element and period the expected tonnes over the nodes (each node
    weighted by its probability) and the least and most of any node."""
    if alloc["node"].nunique() <= MAX_NODES_LISTED:
        return [_table(alloc, "allocation", currency=cur)]
    w = pd.to_numeric(alloc.node_probability, errors="coerce").fillna(0.0)
    g = alloc.assign(weighted=alloc.contracted_t * w).groupby(
        ["source", "element", "period", "decided_in"], sort=False)
    table = pd.DataFrame({"nodes": g.size(), "expected_contracted_t": g.weighted.sum(),
                          "least_contracted_t": g.contracted_t.min(),
                          "most_contracted_t": g.contracted_t.max()}).reset_index()
    table = table.groupby(["source", "element", "period"], sort=False).agg(
        decided_in=("decided_in", "first"), nodes=("nodes", "sum"),
        expected_contracted_t=("expected_contracted_t", "sum"),
        least_contracted_t=("least_contracted_t", "min"),
        most_contracted_t=("most_contracted_t", "max")).reset_index()
    return [f'<p class="note">Contracts decided at {alloc["node"].nunique():,} information '
            "nodes: per source, element and period, the expected tonnes (each node weighted "
            "by its probability; nodes without a contract count as 0) and the least and "
            "most of the nodes that contract; allocation.csv has every node.</p>",
            _table(table, "allocation", currency=cur)]


def _builds(projects: pd.DataFrame, cur: str) -> list[str]:
    """The builds decided: one row per node when few, else per project and period
    decided the probability of a build and the expected size."""
    note = ('<p class="note">One row per project, period and node with a build; size in '
            "units of the project's full size; nothing listed: nothing built.</p>")
    if projects.empty or projects["node"].nunique() <= MAX_NODES_LISTED:
        return [note, _table(projects, "projects", currency=cur)]
    w = pd.to_numeric(projects.node_probability, errors="coerce").fillna(0.0)
    size = pd.to_numeric(projects["size"], errors="coerce").fillna(0.0)
    g = projects.assign(p_built=w.where(size > 1e-9, 0.0), weighted=w * size).groupby(
        ["project", "period_decided"], sort=False)
    table = pd.DataFrame({"nodes": g.size(), "probability_built": g.p_built.sum(),
                          "expected_size": g.weighted.sum()}).reset_index()
    return ['<p class="note">Builds decided at many information nodes: per project and '
            "period decided, the probability that it is built then and the expected size "
            "(in units of the full size); projects.csv has every node.</p>",
            _table(table, "projects", currency=cur)]


def _many_scenarios(scen: pd.DataFrame, bal: pd.DataFrame, paths: Any, cur: str
                    ) -> list[str]:
    """Many scenarios, summarised (model.output.scenario_summary): the distribution of
    cost and shortage, the costliest few, and for scenarios from regimes and events the
    regimes by period and the events."""
    dist = distribution(scen)
    n = len(scen)
    parts = ["<h2>Scenarios: the distribution</h2>",
             f'<p class="note">{n:,} scenarios ({_esc(_how_made(paths, n))}): '
             "the expected value and quantiles of each scenario's discounted cost and total "
             "shortage (all elements and periods summed), each scenario weighted by its "
             "probability; a quantile q is the smallest value with probability at least q "
             "of being at or below it. Probability of some shortage: "
             f"{dist.attrs['probability_of_shortage']:.4g}. scenarios.csv lists every "
             "scenario.</p>",
             _table(dist, "scenario-distribution", currency=cur),
             f"<h3>The {min(WORST_LISTED, n)} costliest scenarios</h3>",
             _table(worst_scenarios(scen, paths), "worst-scenarios", currency=cur)]
    if paths is None:
        return parts
    if paths.states:
        prob = regime_probability(paths)
        by = shortage_by_regime(paths, bal)
        period_cols = [c for c in prob.columns if c != "regime"]
        given = by.pivot_table(index=["element", "regime"], columns="period",
                               values="shortage_given_regime_t", sort=False, dropna=False)
        given = given.reindex(columns=period_cols)
        given.columns.name = None
        given = given.reset_index()
        parts += ["<h3>Regimes by period</h3>",
                  '<p class="note">The probability of each regime in each period (each '
                  "period sums to 1):</p>",
                  _table(prob, "regime-probability",
                         kinds={c: "probability" for c in period_cols}),
                  '<p class="note">Expected shortage by the regime of the period, t, all '
                  "elements summed: the shortage of the scenarios in that regime then, "
                  "weighted by their probability; each period's regimes add up to its "
                  "expected shortage.</p>",
                  _table(by_regime_grid(by, "weighted_shortage_t"), "shortage-by-regime",
                         kinds={c: "t" for c in period_cols}),
                  '<p class="note">Shortage expected in a period of each regime (given '
                  "the regime), t, per element and all elements summed; empty where the "
                  "regime cannot occur:</p>",
                  _table(given, "shortage-given-regime",
                         kinds={c: "t" for c in period_cols})]
    if paths.events:
        parts += ["<h3>Events</h3>",
                  '<p class="note">Each event\'s probability in these scenarios and the '
                  "expected cost and total shortage given that it happens, and given that "
                  "it does not:</p>",
                  _table(event_summary(paths, scen), "events", currency=cur)]
    return parts


def _how_made(paths: Any, n: int) -> str:
    """How the scenarios were made, in words, from their paths (or a list)."""
    if paths is None:
        return "a list"
    how = (f"a sample of {paths.sample_paths:,} paths, seed {paths.seed}" if paths.sampled
           else "every path")
    what = ", ".join(x for x in (f"{len(paths.states)} regimes" if paths.states else "",
                                 f"{len(paths.events)} events" if paths.events else "") if x)
    return f"from {what}, {how}"


def _shortage_pivot(bal: pd.DataFrame, most: int) -> list[str]:
    """Shortage by element (rows) and scenario (columns, at most `most`: the largest
    shortage) and 400 elements: the pivot is never larger than the page can show."""
    by_scenario = bal.groupby("scenario", sort=False).shortage_t.sum()
    shown_scen = by_scenario.nlargest(most).index if len(by_scenario) > most \
        else by_scenario.index
    by_element = bal.groupby("element", sort=False).shortage_t.sum()
    shown_elem = by_element.index[:400]
    part = bal[bal.scenario.isin(shown_scen) & bal.element.isin(shown_elem)]
    short = part.pivot_table(index="element", columns="scenario", values="shortage_t",
                             aggfunc="sum", sort=False).reset_index()
    short.columns.name = None
    parts = ["<h2>Shortage by element and scenario (t)</h2>",
             _table(short, "shortage", kinds={str(c): "t" for c in short.columns[1:]})]
    if len(shown_scen) < len(by_scenario):
        parts.append(f'<p class="note">{len(shown_scen)} of {len(by_scenario):,} scenarios '
                     "(the largest shortage); balance.csv has all.</p>")
    return parts


def render_report(folder: str | Path, out: str | Path | None = None,
                  force: bool = False) -> Path:
    """Write the HTML report of a folder (default: FOLDER/report.html).

    FOLDER/report.html is regenerated in place (a link there is replaced, not
    followed). An `out` elsewhere must not exist, or with `force` be a
    regular file (never a folder or a link).
    """
    from ..input.folders import check_file_target, check_output_parent
    from .export import record_file

    folder = Path(folder)
    if out is not None:
        check_file_target(Path(out), force)
    s = read_summary(folder)
    try:
        page = _page(folder, s)
    except KeyError as err:
        raise UsageError(f"{folder / 'summary.json'}: no key {err} (not a summary written "
                         "by sourcing?)") from None
    target = Path(out) if out else folder / "report.html"
    if out is None:
        check_output_parent(target)
        if os.path.lexists(target) and not target.is_symlink() and not target.is_file():
            raise UsageError(f"{target} is not a regular file; remove it to write the report")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)      # as a plain new file (mkstemp makes it 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, target)     # replaces a link itself, never its target
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    if out is None:
        record_file(folder, target.name)    # its SHA-256 beside the others (verify)
    return target


def _instance_of(folder: Path) -> Any:
    """The folder's instance (instance.yaml, never through a link), or None."""
    path = folder / "instance.yaml"
    if not os.path.lexists(path):
        return None
    return load_instance(path, follow=False).instance


# The key table of a comparison, first on the page: (column, header, kind). A
# column the comparison does not have is skipped (a folder written by an older
# version still reports). {per} is "year" for yearly periods.
KEY_COSTS: list[tuple[str, str, str]] = [
    ("delta_expected_cost_per_period", "cost", "delta_money_rate"),
    ("delta_cash_per_year", "money spent", "delta_money_rate"),
    ("delta_penalty_per_year", "shortage penalty", "delta_money_rate"),
]
KEY_SHORTAGE = ("expected_shortage_t", "avoided_expected_shortage_t", "all elements summed")
KEY_VALUE = ("shortage_value_per_year", "value at the penalty prices")
KEY_SCENARIOS = 8          # scenarios in the key table: all up to this many, else the worst

# the full comparison table, split by column group (model.output.formatting.COLUMNS)
GROUPS: list[tuple[str, str]] = [
    ("cost", "Cost (discounted, as in the objective; undiscounted where the header says so)"),
    ("shortage", "Shortage"),
    ("scenario", "Shortage per scenario (t, all elements summed)"),
    ("avoided", "Shortage avoided per scenario against the baseline (t, all elements "
                "summed; negative: more shortage)"),
    ("shares", "Shares of supply"),
    ("projects", "Projects"),
    ("binds", "Suppliers and what binds"),
    ("status", "Status"),
    ("other", "Other columns"),
]
MAX_SCENARIO_COLUMNS = 30

_SCI = re.compile(r"(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/t\b")


def _binding_text(text: Any, cur: str) -> str:
    """A `binding` cell of an older folder ("min_take Tb: -2.286e+06/t") with its values
    written out ("USD -2,286,000/t"); the words of a current folder stay as they are."""
    if not isinstance(text, str):
        return ""
    return _SCI.sub(lambda m: cell(float(m.group(1)), "per_t", cur, unit=True), text)


def _basis(inst: Any, per: str) -> str:
    """The money basis of the key table in words: "discounted at 5 %/yr; per year =
    total / 7"."""
    word = "year" if per == "yr" else "period"
    if inst is None:
        return f"discounted as in the objective; per {word} = total / number of periods"
    rate = float(inst.discount_rate)
    disc = f"discounted at {rate * 100:.4g} %/{'yr' if per == 'yr' else 'period'}" \
        if rate else "not discounted (discount rate 0)"
    return f"{disc}; per {word} = total / {len(inst.periods)}"


def _hyphens(text: str) -> str:
    """Escaped text that may break after a hyphen or an underscore (long scenario ids)."""
    return _esc(text).replace("-", "-<wbr>").replace("_", "_<wbr>")


def _key_table(table: pd.DataFrame, cur: str, per: str, scenarios: list[str],
               basis: str = "") -> str:
    """Policy by policy: cost per year against the baseline with its split (one money
    basis, stated in the header), expected shortage per element and its value,
    shortage per named scenario (under each: the change from the baseline), China's
    share, the largest contracts and what binds most. Units in the group headers."""
    word = "year" if per == "yr" else per
    costs = [(c, h, k) for c, h, k in KEY_COSTS if c in table.columns]
    totals = not costs and "expected_cost" in table.columns   # no deltas: baseline failed
    if totals:
        costs = [("expected_cost", "expected cost", "money")]
    elements = [c[len("expected_shortage_t["):-1] for c in table.columns
                if c.startswith("expected_shortage_t[") and c.endswith("]")]
    expected = [(f"expected_shortage_t[{e}]", f"avoided_expected_shortage_t[{e}]", e)
                for e in elements] or [t for t in [KEY_SHORTAGE] if t[0] in table.columns]
    value = KEY_VALUE if KEY_VALUE[0] in table.columns else None
    per_scenario = [(f"shortage_t[{w}]", f"avoided_shortage_t[{w}]", w) for w in scenarios]
    per_scenario = [t for t in per_scenario if t[0] in table.columns]
    n_cols = 1 + len(costs) + len(expected) + bool(value) + len(per_scenario)
    base_value = None

    def tonnes(row: dict[str, Any], col: str, avoided: str, first: bool) -> str:
        text = _esc(cell(row.get(col), "t"))
        change = cell(-float(row[avoided]), "delta_t") \
            if not first and avoided in row and cell(row[avoided], "t") != "" else ""
        if change.lstrip("+-") not in ("", "0", "0.0"):   # unchanged: nothing under it
            text += f"<br><span class=d>{_esc(change)}</span>"
        return f"<td>{text}</td>"

    rows = []
    for i, row in enumerate(table.to_dict("records")):
        cells = [_policy_cell(row, i)]
        if row.get("status") != "optimal":
            rows.append("<tr>" + cells[0] + _not_optimal(row, n_cols - 1) + "</tr>")
            continue
        for col, _, kind in costs:
            if i == 0 and kind.startswith("delta"):
                cells.append("<td class=base>baseline</td>")
            else:
                cells.append(f"<td>{_esc(cell(row.get(col), kind, cur, per))}</td>")
        for col, avoided, _ in expected:
            cells.append(tonnes(row, col, avoided, i == 0))
        if value:
            text = _esc(cell(row.get(value[0]), "money_rate", cur, per))
            v = pd.to_numeric(row.get(value[0]), errors="coerce")
            if i == 0:
                base_value = v
            elif base_value is not None and pd.notna(v) and pd.notna(base_value):
                change = cell(v - base_value, "delta_money_rate", cur, per)
                if change.lstrip("+-") not in ("0", "0.0"):
                    text += f"<br><span class=d>{_esc(change)}</span>"
            cells.append(f"<td>{text}</td>")
        for col, avoided, _ in per_scenario:
            cells.append(tonnes(row, col, avoided, i == 0))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    money = f"{_esc(cur)} m/{_esc(per)}" if cur else f"million/{_esc(per)}"
    cost_head = (f"expected cost, {_esc(cur)} m" if totals else
                 f"cost per {_esc(word)} against the baseline, {money}") + \
        (f" ({_esc(basis)})" if basis else "")
    top = ['<th class=text rowspan=2>policy</th>',
           f'<th colspan="{len(costs)}" class=group>{cost_head}</th>']
    n_short = len(expected) + bool(value)
    if n_short:
        top.append(f'<th colspan="{n_short}" class=group>expected shortage, t'
                   + (f", and its value at the penalty prices, {money}" if value else "")
                   + "</th>")
    if per_scenario:
        top.append(f'<th colspan="{len(per_scenario)}" class=group>shortage in the '
                   "scenarios, t, all elements summed</th>")
    sub = [f"<th>{_esc(h)}</th>" for _, h, _ in costs] + \
        [f"<th>{_esc(h)}</th>" for _, _, h in expected] + \
        ([f"<th>{_esc(value[1])}</th>"] if value else []) + \
        [f"<th>{_hyphens(h)}</th>" for _, _, h in per_scenario]
    caption = ("<caption>under each figure: the change from the baseline (+: more, "
               "-: less; nothing: unchanged)</caption>")
    return (f'<div class="scroll" id="key-box"><table id="key">{caption}<thead>'
            f'<tr>{"".join(top)}</tr><tr>{"".join(sub)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _policy_cell(row: dict[str, Any], i: int) -> str:
    return (f"<td class=text><b>{_esc(row['policy'])}</b>"
            + ("<br><span class=d>baseline</span>" if i == 0 else "") + "</td>")


def _not_optimal(row: dict[str, Any], span: int) -> str:
    msg = f"not optimal: {row.get('status')}"
    if isinstance(row.get("message"), str) and row["message"]:
        msg += f" ({row['message']})"
    return f'<td class="text bad wide" colspan="{span}">{_esc(msg)}</td>'


def _supply_table(table: pd.DataFrame, cur: str, per: str) -> str:
    """Policy by policy: China's share of deliveries, the largest contracts and what
    binds (each rule in words), beside the key table (apart, so both fit the page)."""
    word = "year" if per == "yr" else per
    shares = [c for c in table.columns if c.startswith("china_share")]
    suppliers = "largest_contracts" in table.columns
    binds = "binding" in table.columns
    if not (shares or suppliers or binds):
        return ""
    share_head = "China's share of deliveries, " + " / ".join(
        c.removeprefix("china_share").removeprefix("_of_deliveries").strip("_").replace("_", " ")
        or "all" for c in shares)
    head = ["<th class=text>policy</th>"] + \
        ([f"<th>{_esc(share_head)}</th>"] if shares else []) + \
        ([f"<th class=text>largest contracts (expected t per {_esc(word)})</th>"]
         if suppliers else []) + \
        (["<th class=text>what binds most: the rules whose relaxation saves most</th>"]
         if binds else [])
    rows = []
    for i, row in enumerate(table.to_dict("records")):
        cells = [_policy_cell(row, i)]
        if row.get("status") != "optimal":
            rows.append("<tr>" + cells[0] + _not_optimal(row, len(head) - 1) + "</tr>")
            continue
        if shares:
            cells.append(f"<td>{_swatch('CN')}" + " / ".join(
                _esc(cell(row.get(c), "share", unit=True)) for c in shares) + "</td>")
        if suppliers:
            cells.append("<td class='text contracts'>" + "<br>".join(
                _esc(s) for s in str(row.get("largest_contracts") or "").split("; ")) + "</td>")
        if binds:
            items = [_binding_short(b, cur) for b in str(row.get("binding") or "").split("; ")]
            cells.append("<td class='text binds'>" + ("<br>".join(_esc(b) for b in items if b)
                                                      or "nothing") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll" id="key-supply-box"><table id="key-supply"><thead><tr>'
            f'{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


# rule kinds as an older folder's `binding` names them, in a few words
_RULE_WORDS = {"max_single_country_share": "cap", "min_domestic_share": "domestic floor",
               "min_recycled_share": "recycled floor", "min_stock_days": "stock floor",
               "min_take": "take-or-pay", "committed": "signed volume",
               "capacity": "capacity", "budget": "budget"}


def _binding_short(item: str, cur: str) -> str:
    """One `binding` item for the key table: a current folder's words as they are; an
    older folder's "min_take Tb: -2.286e+06/t" as "take-or-pay Tb: USD -2.3 m/t"."""
    item = item.strip()
    if not item or not _SCI.search(item):
        return item
    kind, _, rest = item.partition(" ")
    item = f"{_RULE_WORDS.get(kind, kind)} {rest}".strip()

    def money(m: re.Match[str]) -> str:
        v = float(m.group(1))
        return f"{cur} {v / 1e6:,.1f} m/t" if abs(v) >= 1e6 else f"{cur} {v:,.0f}/t"
    return _SCI.sub(money, item).replace("  ", " ")


def _comparison_body(folder: Path, inst: Any) -> list[str]:
    table = _csv(folder / "comparison.csv")
    cur = inst.currency if inst is not None else ""
    per = period_word(inst.period_days) if inst is not None else "period"
    n_periods = len(inst.periods) if inst is not None else None
    scen_all = [c[len("shortage_t["):-1] for c in table.columns
                if c.startswith("shortage_t[") and c.endswith("]")]
    scenarios = key_scenarios(table, KEY_SCENARIOS)
    which = ("every scenario" if len(scenarios) == len(scen_all) else
             f"the {len(scenarios)} scenarios of {len(scen_all)} with the largest baseline "
             "shortage")
    long = None
    if os.path.lexists(folder / "comparison_scenarios.csv"):      # many scenarios
        limit = table_limits(inst, len(table)).get("comparison_scenarios") \
            if inst is not None else None
        long = read_table(folder / "comparison_scenarios.csv", limit,
                          columns=("policy", "scenario", "probability", "shortage_t",
                                   "avoided_shortage_t"),
                          dtype={"policy": str, "scenario": str})
        which = (f"the {long.scenario.nunique():,} scenarios, as a distribution (below the "
                 "key table)")
    base = _esc(table.policy.iloc[0]) if len(table) else ""
    word = "year" if per == "yr" else "period"
    basis = _basis(inst, per)
    parts = ["<h2>Policies at a glance</h2>",
             f'<p class="note">Against the baseline, policy {base} (the first). Money is on '
             f"one basis, that of the objective: expected cost {basis}"
             + (f" periods" if n_periods else "")
             + f"; the money spent and the shortage penalty add up to the cost. Expected "
             "shortage: per element, over all periods, and its value at the penalty prices "
             f"(expected, on the same basis, per {word}). Shortage in the scenarios: "
             f"tonnes of all elements summed, in {which}. Under each figure the change from "
             "the baseline (+: more, -: less; nothing: unchanged). China's share: of expected "
             "delivered tonnes, all elements and periods. What binds most: the rule whose "
             f"relaxation by one tonne a {word} (in every {word} and scenario) would save the "
             "most, in expected discounted cost (all figures below list three).</p>",
             _key_table(table, cur, per, scenarios, basis),
             _supply_table(table, cur, per)]
    if long is not None:
        paths = scenario_paths(inst) if inst is not None else None
        n = long.scenario.nunique()
        parts += ["<h2>Shortage across the scenarios</h2>",
                  f'<p class="note">{n:,} scenarios: each policy\'s total shortage per '
                  "scenario (t, all elements and periods summed), as a distribution with each "
                  "scenario weighted by its probability, and against the baseline scenario by "
                  "scenario. comparison_scenarios.csv has every policy and scenario.</p>",
                  _table(comparison_distribution(long), "comparison-distribution"),
                  f"<h3>The {min(WORST_LISTED, n)} scenarios with the largest baseline "
                  "shortage (t)</h3>",
                  _table(comparison_worst(long, paths), "comparison-worst")]
    if inst is not None:
        items = []
        for p in table.policy:
            words = policy_in_words(str(p), inst.policies.get(str(p)), inst)
            items.append(f"<dt>{_esc(p)}</dt>" + "".join(f"<dd>{_esc(w)}</dd>" for w in words))
        parts += ["<h2>The policies</h2>", f'<dl class="policies">{"".join(items)}</dl>']
    if os.path.lexists(folder / "comparison.png"):
        parts += ["<h2>Against the baseline</h2>", _img(folder / "comparison.png", "comparison")]
    parts.append("<h2>All figures</h2>")
    shown_scen = set(key_scenarios(table, MAX_SCENARIO_COLUMNS))
    full = table.copy()
    if "binding" in full.columns:
        full["binding"] = [_binding_text(v, cur) for v in full["binding"]]
    groups: dict[str, list[str]] = {}
    for col in full.columns:
        if col == "policy":
            continue
        if col.startswith(("shortage_t[", "avoided_shortage_t[")) and \
                col[col.index("[") + 1:-1] not in shown_scen:
            continue
        if spec(col).group != MACHINE:       # binding_rows: for programs, in the CSV
            groups.setdefault(spec(col).group, []).append(col)
    for key, heading in GROUPS:
        cols = groups.pop(key, [])
        if cols:
            parts += [f"<h3>{_esc(heading)}</h3>",
                      _table(full[["policy", *cols]], f"comparison-{key}", currency=cur,
                             per=per)]
    for key, cols in groups.items():      # a group without a heading of its own
        parts += [f"<h3>{_esc(key)}</h3>",
                  _table(full[["policy", *cols]], f"comparison-{key}", currency=cur, per=per)]
    if len(shown_scen) < len(scen_all):
        parts.append(f'<p class="note">Per-scenario columns: {len(shown_scen)} of '
                     f"{len(scen_all)} scenarios (largest baseline shortage); "
                     "comparison.csv has all.</p>")
    return parts


def _robustness_body(folder: Path, s: dict[str, Any], inst: Any) -> list[str]:
    """A robustness folder: first what holds in every draw and what does not (with the
    inputs that flip it), then the cost over the draws, the tornado, one input at a
    time, the switch points and the ranges."""
    cur = inst.currency if inst is not None else ""
    policies = [str(p) for p in s.get("policies") or []]
    n_draws = int(s.get("draws") or 0)
    conclusions = _csv(folder / "conclusions.csv")
    every = conclusions[conclusions["holds_in_every_draw"].astype(str) == "True"]
    some = conclusions[conclusions["holds_in_every_draw"].astype(str) == "False"]
    plan = policies[0] if policies else "none"
    others = f", compared with {', '.join(policies[1:])}" if len(policies) > 1 else ""
    inputs = s.get("inputs") or []
    parts = ["<h2>How sure are we?</h2>",
             f'<p class="note">The plan: policy {_esc(plan)}{_esc(others)}. {len(inputs)} '
             f"inputs varied over the ranges of {_esc((s.get('ranges') or {}).get('file', ''))}"
             f"; {n_draws} joint draws of all of them (seed {_esc(s.get('seed', 0))}). A "
             "conclusion holds in a draw when the plan decides the same there: a project "
             "funded or not, its size within 0.01 of its maximum, a source's contracted "
             "tonnes within 1 % (and 1 t), the same order of the policies by expected "
             "cost.</p>"]
    if n_draws:
        parts.append(f"<h3>Holds in every one of the {n_draws} draws</h3>")
        parts.append('<ul id="holds">' + "".join(f"<li>{_esc(t)}</li>"
                                                 for t in every["statement"]) + "</ul>"
                     if len(every) else '<p class="note">Nothing holds in every draw.</p>')
        parts.append("<h3>Does not hold in every draw</h3>")
        if len(some):
            # projects first, then the policies' order, then the sources' tonnes; within
            # each, the least often holding first
            order = some["conclusion"].astype(str).map(
                lambda c: 0 if c.startswith(("funded[", "size[", "first_size[")) else
                1 if c in ("ranking", "cheapest") else 2)
            shown = some.assign(_order=order).sort_values(["_order", "holds_share"],
                                                          kind="stable")
            parts.append(_table(shown[["statement", "holds_share", "flipped_by",
                                       "draws_failing_with"]], "fails", currency=cur))
        else:
            parts.append('<p class="note">Every conclusion holds in every draw.</p>')
    else:
        parts.append('<p class="note">No draws: the conclusions of the plan and where one '
                     "input at a time flips them.</p>")
        parts.append(_table(conclusions[["statement", "flipped_by"]], "fails", currency=cur))
    if n_draws and os.path.lexists(folder / "draws.csv"):
        draws = _csv(folder / "draws.csv")
        ok = draws[draws["status"].astype(str) == "optimal"]
        measures = [c for c in draws.columns
                    if c == "expected_cost" or c.startswith(("cost[", "expected_shortage_t["))
                    and c != f"cost[{plan}]"]
        rows = []
        for c in measures:
            v = pd.to_numeric(ok[c], errors="coerce").dropna()
            if len(v):
                rows.append({"measure": _measure_words(c, plan), "mean": v.mean(),
                             "p05": v.quantile(0.05), "median": v.median(),
                             "p95": v.quantile(0.95)})
        if rows:
            money = {k: ("t" if "shortage" in r["measure"] else "money")
                     for r in rows for k in ("mean", "p05", "median", "p95")}
            table = pd.DataFrame(rows)
            parts += [f"<h2>Over the draws ({len(ok)} of {len(draws)} solved to "
                      "optimality)</h2>",
                      '<p class="note">Money: expected cost over the whole horizon, '
                      "discounted as in the objective; tonnes: expected shortage over the "
                      "horizon. p05 and p95: the 5th and 95th percentiles of the draws.</p>"]
            for unit in ("money", "t"):
                part = table[[("shortage" in m) == (unit == "t") for m in table["measure"]]]
                if len(part):
                    parts.append(_table(part, f"draws-{unit}", currency=cur,
                                        kinds={k: unit for k in money}))
    if os.path.lexists(folder / "tornado.png"):
        parts += ["<h2>One input at a time: the tornado</h2>",
                  _img(folder / "tornado.png", "tornado")]
    oat = _csv(folder / "robustness.csv")
    cols = [c for c in ("label", "low", "high", "expected_cost_low", "expected_cost_high",
                        "cost_swing", "decisions_changed_low", "decisions_changed_high")
            if c in oat.columns]
    parts += ["<h2>One input at a time</h2>",
              '<p class="note">Each input at the low and at the high end of its range, the '
              "others as the instance gives them; largest swing of the plan's expected cost "
              "first. robustness.csv has every column (shortage per element, each policy's "
              "cost).</p>", _table(oat[cols], "one-at-a-time", currency=cur)]
    switch = _csv(folder / "switch_points.csv")
    parts += ["<h2>Switch points</h2>",
              f'<p class="note">Where a decision of the plan changes as one input moves '
              f"through its range (a grid of {_esc(s.get('grid', ''))} steps, then bisection "
              f"to {_esc(s.get('resolution', ''))} of the range). jump: the decision jumps "
              "there; gradual: it drifts past the tolerance.</p>"]
    if len(switch):
        parts.append(_table(switch[["text", "at", "kind"]], "switch-points", currency=cur))
    else:
        parts.append('<p class="note">No decision changes inside any range.</p>')
    ranges = _csv(folder / "ranges.csv")
    parts += ["<h2>The inputs and their ranges</h2>",
              _table(ranges[[c for c in ("label", "paths", "scale", "base", "low", "high",
                                         "dist", "note") if c in ranges.columns]],
                     "ranges", currency=cur)]
    return parts


def _measure_words(column: str, plan: str) -> str:
    if column == "expected_cost":
        return f"expected cost of the plan ({plan})"
    if column.startswith("cost["):
        return f"expected cost of {column[5:-1]}"
    return f"expected shortage of {column[len('expected_shortage_t['):-1]}"


def _page(folder: Path, s: dict[str, Any]) -> str:
    kind = s.get("kind", "run")
    title = f"{s['instance']}: {kind}" + (f" / policy {s['policy']}" if kind == "run" else "")
    name = Path(os.path.abspath(folder)).name
    # the folder's name only: an absolute path would tell readers about this machine
    inst = _instance_of(folder)
    cur = inst.currency if inst is not None else ""
    parts = [f"<h1>{_esc(title)}</h1>",
             f'<p class="note">Generated from the {_esc(kind)} folder {_esc(name)} by '
             f"sourcing {_esc(s.get('version', ''))}</p>"]
    if kind == "run":
        parts += _run_body(folder, s, inst)
        policy = s["policy"]
    elif kind == "comparison":
        parts += _comparison_body(folder, inst)
        policy = None
    elif kind == "robustness":
        parts += _robustness_body(folder, s, inst)
        policy = None
    elif kind == "coalition":       # several buyers (model.studies.coalition)
        from .coalition_report import coalition_body

        parts += coalition_body(folder, s, cur)
        policy = s["policy"]
    elif kind == "projects":
        parts += [f"<h2>What each project is worth under policy {_esc(s['policy'])}</h2>",
                  '<p class="note">saving_if_allowed: expected cost without the project '
                  "minus with it; value_per_cost: what a full build saves per unit it costs "
                  "(above 1 it pays for itself).</p>",
                  _table(_csv(folder / "project_values.csv"), "project-values",
                         currency=cur)]
        policy = s["policy"]
    else:
        table = _csv(folder / "frontier.csv")
        heading = (f"What-if on policy {_esc(s['policy'])}: {_esc(s['param'])}"
                   if "param" in s else
                   f"Cap sweep on policy {_esc(s['policy'])} "
                   f"(stage {_esc(s['stage'])}, per {_esc(s['per'])})")
        parts.append(f"<h2>{heading}</h2>")
        if os.path.lexists(folder / "frontier.png"):
            parts.append(_img(folder / "frontier.png", "frontier"))
        parts.append(_table(table, "frontier", currency=cur))
        policy = s["policy"]
    parts.append(_assumptions(inst, policy if isinstance(policy, str) else None))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
