"""`sourcing report`: a self-contained HTML page of a run, comparison or sweep folder.

The page embeds its charts as base64 PNG and its styles inline, so it opens
from a file in any browser without a server. It shows the headline numbers,
the tables, the charts and the instance's assumptions (sources, scenarios,
the policy's rules), read from the folder alone.

The folder is not trusted: its files are read only as regular files, never
through a symbolic link (model.folders.read_member), every text goes through
html.escape, and the page names the folder but holds no absolute path. The
page is written to a fresh temporary file (mkstemp) beside its target and
renamed over it, so a planted link is replaced, never written through.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import UsageError
from .folders import read_member, read_summary, read_table
from .instance import load_instance

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.kv td:first-child{font-weight:600}.note{color:#666;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;font-size:.8em;overflow-x:auto}
.bad{color:#b00;font-weight:600}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _table(df: pd.DataFrame, table_id: str, max_rows: int = 400) -> str:
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">first {max_rows} of {len(df):,} rows; the CSV has all.</p>'
        df = df.head(max_rows)
    body = df.to_html(index=False, border=0, float_format=lambda v: f"{v:,.6g}",
                      na_rep="", table_id=table_id, escape=True)
    return body + note


def _kv(pairs: list[tuple[str, Any]], table_id: str) -> str:
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv" id="{table_id}">{rows}</table>'


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


def _assumptions(folder: Path, policy: str | None) -> str:
    path = folder / "instance.yaml"
    if not os.path.lexists(path):
        return '<p class="note">no instance.yaml in this folder</p>'
    inst = load_instance(path, follow=False).instance
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
            src_rows.append({"source": s.id, "name": s.name or "", "mined_in": s.mined_in,
                             "refined_in": s.refined_in, "mode": s.mode,
                             "recycled": s.recycled, "fee": s.reservation_fee,
                             "window": window, "element": e, "capacity_t": cap,
                             f"price ({inst.currency}/t)": price})
    scen_rows = []
    for w in inst.scenarios or []:
        rules = []
        for r in w.disruptions:
            rules.append(f"availability x{r.availability:g} for "
                         f"{_sel(r.match)} {r.elements or 'all elements'} {r.periods or ''}")
        for r in w.price_shocks:
            rules.append(f"price x{r.multiplier:g} for {_sel(r.match)} "
                         f"{r.elements or 'all elements'} {r.periods or ''}")
        for r in w.demand_shocks:
            rules.append(f"demand x{r.multiplier:g} for {r.elements or 'all elements'} "
                         f"{r.periods or ''}")
        scen_rows.append({"scenario": w.id, "probability": w.probability,
                          "description": w.description or "", "rules": "; ".join(rules)})
    parts = [f"<h2>Assumptions: instance {_esc(inst.name)}</h2>",
             f"<p>{_esc(inst.description)}</p>",
             _kv([("home country", inst.home), ("currency", inst.currency),
                  ("periods", ", ".join(map(str, inst.periods))),
                  ("elements", ", ".join(inst.elements)),
                  ("discount rate", inst.discount_rate),
                  ("risk", f"lambda {inst.risk.lambda_:g}, alpha {inst.risk.alpha:g}")],
                 "assumptions-general"),
             "<h3>Sources</h3>", _table(pd.DataFrame(src_rows), "assumptions-sources")]
    if scen_rows:
        parts += ["<h3>Scenarios</h3>", _table(pd.DataFrame(scen_rows), "assumptions-scenarios")]
    if policy and policy != "none" and policy in inst.policies:
        rules = inst.policies[policy].model_dump(by_alias=True, exclude_defaults=True,
                                                 exclude_none=True)
        parts += [f"<h3>Policy {_esc(policy)}</h3>",
                  f"<pre>{_esc(yaml.safe_dump(rules, sort_keys=False))}</pre>"]
    return "\n".join(parts)


def _sel(sel: Any) -> str:
    d = sel.model_dump(exclude_none=True)
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "all sources"


def _run_body(folder: Path, s: dict[str, Any]) -> list[str]:
    cur = s.get("currency", "")
    head = [("status", s["status"]), ("message", s.get("message", "")),
            ("policy", s["policy"]), ("objective", _num(s["objective"], f" {cur}")),
            ("expected cost", _num(s["expected_cost"], f" {cur}")),
            (f"CVaR {s['risk']['alpha']:g}", _num(s["cvar"], f" {cur}")),
            ("expected shortage", _num(s["expected_shortage_t"], " t")),
            ("worst-scenario shortage", _num(s["worst_shortage_t"], " t"))]
    for stage, v in (s.get("max_single_country_share") or {}).items():
        head.append((f"max third-country share of demand, {stage} (deliveries into stock count)",
                     f"{v['share']:.1%} ({v['country']}, {v['element']} {v['period']}, "
                     f"{v['scenario']})" if v["country"] else "0"))
    for key in ("ws", "eev", "evpi", "vss"):
        if key in s:
            head.append((key.upper(), _num(s[key], f" {cur}")))
    head += [("solver", f"HiGHS {s['solver_version']}, {s['solve_seconds']:.3f} s"),
             ("instance sha256", s["instance_sha256"]), ("tool version", s["version"])]
    parts = ["<h2>Summary</h2>", _kv(head, "summary")]
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
    for png, title in (("allocation_by_country.png", "Supply by country"),
                       ("scenarios.png", "Cost and shortage per scenario"),
                       ("tree.png", "What is known when: the information tree"),
                       ("projects.png", "Investment: capacity the builds add")):
        if os.path.lexists(folder / png):
            parts += [f"<h2>{title}</h2>", _img(folder / png, title)]
    alloc = _csv(folder / "allocation.csv")
    parts += ["<h2>Contracts (first stage)</h2>",
              _table(alloc[alloc.contracted_t > 1e-9].drop(columns=["excluded"]), "allocation")]
    if os.path.lexists(folder / "projects.csv"):
        parts += ["<h2>Investment: builds decided</h2>",
                  '<p class="note">One row per project, period and node with a build; size '
                  "in units of the project's full size; nothing listed: nothing built.</p>",
                  _table(_csv(folder / "projects.csv"), "projects")]
    parts += ["<h2>Scenarios</h2>", _table(_csv(folder / "scenarios.csv"), "scenarios")]
    bal = _csv(folder / "balance.csv")
    short = bal.pivot_table(index="element", columns="scenario", values="shortage_t",
                            aggfunc="sum").reset_index()
    short.columns.name = None
    parts += ["<h2>Shortage by element and scenario (t)</h2>", _table(short, "shortage")]
    if not os.path.lexists(folder / "duals.csv"):
        return parts + ["<h2>What binds: marginal values</h2>",
                        '<p class="note">This run has no duals.csv: it was solved by scenario '
                        "decomposition (mpi-sppy), which does not give the extensive form's "
                        "marginal values. Solve it with the default engine to see them.</p>"]
    duals = _csv(folder / "duals.csv", na_values=[])
    binding = duals[(duals.constraint != "demand") & (pd.to_numeric(duals.value) != 0)]
    binding = binding.reindex(pd.to_numeric(binding.value).sort_values().index)
    parts += ["<h2>What binds: marginal values</h2>",
              '<p class="note">Change in the objective per tonne of relaxation (policy rows) '
              "or per extra tonne of capacity; negative means relaxing saves money.</p>",
              _table(binding.head(60), "binding"),
              "<h3>Marginal cost of demand</h3>",
              _table(duals[duals.constraint == "demand"][["element", "period", "value"]],
                     "demand-duals")]
    return parts


def render_report(folder: str | Path, out: str | Path | None = None,
                  force: bool = False) -> Path:
    """Write the HTML report of a folder (default: FOLDER/report.html).

    FOLDER/report.html is regenerated in place (a link there is replaced, not
    followed). An `out` elsewhere must not exist, or with `force` be a
    regular file (never a folder or a link).
    """
    from .export import check_file_target, check_output_parent

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
    return target


def _page(folder: Path, s: dict[str, Any]) -> str:
    kind = s.get("kind", "run")
    title = f"{s['instance']}: {kind}" + (f" / policy {s['policy']}" if kind == "run" else "")
    name = Path(os.path.abspath(folder)).name
    # the folder's name only: an absolute path would tell readers about this machine
    parts = [f"<h1>{_esc(title)}</h1>",
             f'<p class="note">Generated from the {_esc(kind)} folder {_esc(name)} by '
             f"sourcing {_esc(s.get('version', ''))}</p>"]
    if kind == "run":
        parts += _run_body(folder, s)
        policy = s["policy"]
    elif kind == "comparison":
        table = _csv(folder / "comparison.csv")
        parts += ["<h2>Policies compared</h2>",
                  '<p class="note">Deltas are against the first policy: the cost of '
                  "resilience and the shortage it avoids.</p>", _table(table, "comparison")]
        if os.path.lexists(folder / "comparison.png"):
            parts.append(_img(folder / "comparison.png", "comparison"))
        policy = None
    elif kind == "projects":
        parts += [f"<h2>What each project is worth under policy {_esc(s['policy'])}</h2>",
                  '<p class="note">saving_if_allowed: expected cost without the project '
                  "minus with it; value_per_cost: what a full build saves per unit it costs "
                  "(above 1 it pays for itself).</p>",
                  _table(_csv(folder / "project_values.csv"), "project-values")]
        policy = s["policy"]
    else:
        table = _csv(folder / "frontier.csv")
        heading = (f"What-if on policy {_esc(s['policy'])}: {_esc(s['param'])}"
                   if "param" in s else
                   f"Cap sweep on policy {_esc(s['policy'])} "
                   f"(stage {_esc(s['stage'])}, per {_esc(s['per'])})")
        parts += [f"<h2>{heading}</h2>", _table(table, "frontier")]
        if os.path.lexists(folder / "frontier.png"):
            parts.append(_img(folder / "frontier.png", "frontier"))
        policy = s["policy"]
    parts.append(_assumptions(folder, policy if isinstance(policy, str) else None))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
