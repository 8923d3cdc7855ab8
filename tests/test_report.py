"""`sourcing report`: the HTML page renders in headless Chromium with every table and
chart, fits the window at 1280 and 700 px (no sideways scrolling of the page: wide
tables scroll in their own box), and reads as a briefing: a key table first,
policies in words, numbers with units and never in e-notation. The key table of the
Japan comparison fits a 1400 px window and stays readable at 800 px (it scrolls in
its own box, the policy column stays in view, no cell narrower than a few
characters); every cell of the full tables and of comparison.md is the CSV's value.

Chromium is Debian's `chromium` package (`.ci/run` installs it when missing).
Outside CI a machine without it skips these tests; in CI (CI=true) they fail.
Screenshots are written to the test's temporary folder, or to
$REPORT_SCREENSHOTS when set (to look at them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


WIDTHS = (1280, 700)
# written into the page's DOM once it has loaded (charts decoded), read back with
# --dump-dom: the page's width against the window's
MEASURE = ("<script>window.addEventListener('load',function(){var d=document.documentElement;"
           "d.dataset.scrollWidth=d.scrollWidth;d.dataset.clientWidth=d.clientWidth;"
           "d.dataset.innerWidth=window.innerWidth;});</script>")
E_NOTATION = re.compile(r"\d\.?\d*e[+-]\d+", re.I)


def _chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run should install it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def _dom(page: Path, profile: Path, width: int | None = None) -> str:
    size = [f"--window-size={width},900"] if width else []
    proc = subprocess.run([_chromium(), *FLAGS, *size, f"--user-data-dir={profile}",
                           "--dump-dom", page.resolve().as_uri()], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _screenshot(page: Path, profile: Path, width: int, out: Path) -> Path:
    proc = subprocess.run([_chromium(), *FLAGS, f"--window-size={width},1400",
                           "--hide-scrollbars", f"--user-data-dir={profile}",
                           f"--screenshot={out}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and out.exists(), proc.stderr[-2000:]
    return out


def _measured(page: Path, tmp: Path) -> Path:
    """A copy of `page` with the measuring script (the report itself has no script)."""
    copy = tmp / f"measured-{page.parent.name}.html"
    copy.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    return copy


def _overflow(page: Path, tmp: Path, width: int) -> tuple[int, int, int]:
    """(page width, window content width, window width) in CSS pixels."""
    dom = _dom(_measured(page, tmp), tmp / f"profile-{page.parent.name}-{width}", width)
    found = {k: int(v) for k, v in re.findall(r'data-(scroll|client|inner)-width="(\d+)"',
                                              dom)}
    assert set(found) == {"scroll", "client", "inner"}, dom[:500]
    return found["scroll"], found["client"], found["inner"]


def _text(page_html: str) -> str:
    """What a reader sees: the page without its embedded images, tags or styles."""
    body = re.sub(r"<img[^>]*>", "", page_html)
    body = re.sub(r"<style>.*?</style>", "", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "model.cli", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from model.formulation.policies import policy_names
    from model.input.instance import load_instance

    tmp = tmp_path_factory.mktemp("report")
    inst = str(ROOT / "instances" / "example.yaml")
    _cli("solve", inst, "--policy", "crma", "--out", str(tmp / "run"))
    _cli("compare", inst, "-p", "none", "-p", "crma", "-p", "no-china", "--out",
         str(tmp / "cmp"))
    _cli("sweep", inst, "--cap", "1.0:0.6:0.2", "--out", str(tmp / "sw"))
    # the briefing's case: every policy of the Japan instance (some mined in one
    # country and refined in another: crma65 has AU at mining, CN at refining)
    japan = ROOT / "instances" / "japan_2026.yaml"
    every = [a for p in policy_names(load_instance(japan).instance) for a in ("-p", p)]
    _cli("compare", str(japan), *every, "--out", str(tmp / "jp"))
    for name in ("run", "cmp", "sw", "jp"):
        _cli("report", str(tmp / name))
    return {"run": tmp / "run", "cmp": tmp / "cmp", "sw": tmp / "sw", "jp": tmp / "jp",
            "tmp": tmp}


@pytest.mark.parametrize("kind, tables, charts", [
    ("run", ["summary", "allocation", "scenarios", "shortage", "binding", "demand-duals",
             "assumptions-general", "assumptions-sources", "assumptions-scenarios"], 3),
    ("cmp", ["key", "comparison-cost", "comparison-shortage", "comparison-scenario",
             "comparison-avoided", "comparison-shares", "comparison-binds",
             "assumptions-sources", "assumptions-scenarios"], 1),
    ("sw", ["frontier", "assumptions-sources"], 1),
])
def test_report_renders_in_chromium(folders: dict[str, Path], kind: str, tables: list[str],
                                    charts: int) -> None:
    page = folders[kind] / "report.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html.replace(
        "https://json-schema.org", "")  # self-contained: nothing fetched
    dom = _dom(page, folders["tmp"] / f"profile-{kind}")
    for table_id in tables:
        assert re.search(rf'<table[^>]*id="{table_id}"', dom), table_id
        assert re.search(rf'<table[^>]*id="{table_id}"[^>]*>.*?<td', dom, re.S), table_id
    shown = re.findall(r'<img[^>]*data-ok="1"', dom)
    assert len(shown) == charts, f"{len(shown)} of {charts} charts decoded"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["run", "cmp", "sw"])
def test_report_fits_the_window(folders: dict[str, Path], kind: str, width: int) -> None:
    """The page is never wider than the window (a wide table scrolls in its own box),
    and its screenshot's right edge is blank: nothing runs off the side."""
    from PIL import Image

    page = folders[kind] / "report.html"
    scroll, client, inner = _overflow(page, folders["tmp"], width)
    assert inner == width, f"the window is {inner} px wide, not {width}"
    assert scroll <= client, f"{kind} at {width} px: the page is {scroll} px wide in " \
        f"a window of {client} px"
    shots = Path(os.environ.get("REPORT_SCREENSHOTS") or folders["tmp"])
    shots.mkdir(parents=True, exist_ok=True)
    shot = _screenshot(page, folders["tmp"] / f"shot-{kind}-{width}", width,
                       shots / f"report-{kind}-{width}.png")
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.width == width
        edge = rgb.crop((width - 4, 0, width, rgb.height)).getcolors(maxcolors=4 * 2048)
    assert edge is not None and {c for _, c in edge} == {(255, 255, 255)}, \
        f"{kind} at {width} px: something is drawn at the right edge"


def test_the_overflow_check_can_fail(folders: dict[str, Path]) -> None:
    """A table wider than the window outside a scrolling box is seen as overflow."""
    page = folders["tmp"] / "wide" / "report.html"
    page.parent.mkdir(exist_ok=True)
    row = "".join(f"<td>{i:,}.0 t</td>" for i in range(60))
    page.write_text(f"<!DOCTYPE html><html><body><table><tr>{row}</tr></table></body></html>")
    scroll, client, _ = _overflow(page, folders["tmp"], 700)
    assert scroll > client


def test_comparison_report_reads_as_a_briefing(folders: dict[str, Path]) -> None:
    html = (folders["cmp"] / "report.html").read_text()
    # the key table comes first, then the policies in words, then the chart and the rest
    order = [html.index(x) for x in ('id="key"', "<h2>The policies</h2>",
                                     'data-chart="comparison.png"', 'id="comparison-cost"',
                                     'id="assumptions-sources"')]
    assert order == sorted(order)
    key = html[html.index('id="key"'):html.index("</table>", html.index('id="key"'))]
    # one money basis, stated in the header; units in the headers, signed figures
    assert "baseline" in key and "USD m/yr" in key and re.search(r"<td>\+\d", key)
    assert "not discounted (discount rate 0); per year = total / 3" in key
    for e in ("Nd", "Pr", "Dy", "Tb"):                               # shortage per element
        assert f"<th>{e}</th>" in key
    assert "value at the penalty prices" in key
    for scenario in ("normal", "china-<wbr>heavy-<wbr>ban"):         # both named scenarios
        assert f"<th>{scenario}</th>" in key
    assert "all elements summed" in key                # the only summed tonnes, labelled
    supply = html[html.index('id="key-supply"'):]
    supply = supply[:supply.index("</table>")]
    assert re.search(r"\d+ %", supply)                                # China's share
    assert "cap on CN-mined" in supply and "relaxing it by 1 t a year saves USD" in supply
    assert "At most 65 % of each element&#x27;s demand from any single country other " \
        "than Japan, at mining and at refining, in every scenario." in html
    assert "Excluded: no source mined in China and no source refined in China." in html
    for kind in ("run", "cmp", "sw"):
        text = _text((folders[kind] / "report.html").read_text())
        assert not E_NOTATION.search(text), (kind, E_NOTATION.findall(text)[:5])


def test_comparison_report_skips_missing_columns_and_shows_new_ones(
        folders: dict[str, Path], tmp_path: Path) -> None:
    """A comparison without some columns still reports; a cost-by-year column added
    later appears in the key table, formatted."""
    import shutil

    import pandas as pd

    folder = tmp_path / "cmp"
    shutil.copytree(folders["cmp"], folder)
    table = pd.read_csv(folder / "comparison.csv", keep_default_na=False, na_values=[""])
    table = table.drop(columns=[c for c in table.columns
                                if c.startswith(("china_share", "hhi", "binding"))
                                or c == "delta_cash_per_year"])
    table["delta_cash_per_year"] = [0.0, 1.25e6, 2.5e8][:len(table)]
    table.to_csv(folder / "comparison.csv", index=False)
    _cli("report", str(folder))
    html = (folder / "report.html").read_text()
    key = html[html.index('id="key"'):html.index("</table>", html.index('id="key"'))]
    assert "money spent" in key and "<td>+1.2</td>" in key
    supply = html[html.index('id="key-supply"'):]
    supply = supply[:supply.index("</table>")]
    assert "China" not in supply and "binds" not in supply
    binds = html[html.index('id="comparison-binds"'):]
    binds = binds[:binds.index("</table>")]
    assert "largest contracts" in binds and "what binds" not in binds


def test_every_policy_rule_kind_has_words() -> None:
    from model.output.describe import policy_in_words
    from model.input.instance import load_instance
    from model.input.schema import Policy

    inst = load_instance(ROOT / "instances" / "example.yaml").instance
    samples = {"max_single_country_share": {"share": 0.5, "countries": ["CN"],
                                            "stages": ["refining"], "applies_to": "plan"},
               "min_domestic_share": {"share": 0.1, "elements": ["Dy"]},
               "min_recycled_share": {"share": 0.2, "periods": [2028]},
               "exclude": [{"refined_in": "CN"}, {"project": "x"}, {"id": "s1"}],
               "min_stock_days": {"days": 60, "refill": 2, "deficit_cost": 5e4},
               "budget": {"amount": 2e10}, "build": {"project": "x", "min_size": 0.5},
               "build_stock": False}
    described = set(Policy.model_fields) - {"notes", "sources"}     # provenance, not rules
    assert set(samples) == described, "a rule kind without a sample here"
    sentences = policy_in_words("p", Policy.model_validate(samples), inst)
    words = " ".join(sentences)
    for expected in ("At most 50 % of each element's demand from China, at refining, in "
                     "the contracts signed", "At least 10 % of each element's demand from "
                     "Japan at mining, for Dy", "from recycled sources, in 2028",
                     "no source refined in China", "project x is not built",
                     "not source s1", "at least 60 days of demand of every element",
                     "for 2 periods after it", "USD 50,000", "at most USD 20,000.0 m",
                     "Build project x to at least 0.5 of its full size",
                     "Stock may be drawn but never raised"):
        assert expected in words, expected
    # the fallback for a kind without words starts with its key
    assert not [w for w in sentences if w.startswith(tuple(Policy.model_fields))]


def test_report_of_a_non_folder_is_one_message(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "model.cli", "report", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a run, comparison or sweep folder" in proc.stderr


# --------------------------------------------------------------------------- every cell
class _Tables(HTMLParser):
    """The tables of a page by id: header texts and rows of (text, html) cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, list]] = {}
        self._id: str | None = None
        self._cell: list[str] | None = None
        self._raw: list[str] = []
        self._row: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._id = a.get("id") or ""
            self.tables[self._id] = {"head": [], "rows": []}
        elif tag in ("td", "th") and self._id is not None:
            self._cell, self._raw = [], []
        elif tag == "span" and self._cell is not None:
            self._raw.append(f"<span class={a.get('class', '')}>")
        elif tag == "tr":
            self._row = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._id is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.tables[self._id]["head"].append(text)
            else:
                self._row.append((text, "".join(self._raw)))
            self._cell = None
        elif tag == "tr" and self._row and self._id is not None:
            self.tables[self._id]["rows"].append(self._row)
        elif tag == "table":
            self._id = None


def _markdown(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a Markdown table (`\\|` inside a cell is a `|`)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]

    def cells(line: str) -> list[str]:
        parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        return [p.strip().replace("\\|", "|") for p in parts]
    return cells(lines[0]), [cells(ln) for ln in lines[2:]]


def _same_cell(shown: str, value: object, head: str, where: str) -> None:
    """A cell as shown against the CSV's value: text as it is; a number to the
    decimals shown, scaled by the header's unit (m: millions, %: percent)."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        assert shown == "", (where, shown, value)
        return
    if isinstance(value, str):
        assert shown == value, (where, shown, value)
        return
    scale = 1e6 if re.search(r" m(/\w+)?\)$", head) else 0.01 if head.endswith("(%)") else 1.0
    number = shown.replace(",", "").replace("+", "")
    assert re.fullmatch(r"-?\d+(\.\d+)?", number), (where, shown)
    decimals = len(number.partition(".")[2])
    assert abs(float(number) - float(value) / scale) <= 0.5 * 10 ** -decimals + 1e-9, \
        (where, shown, value)


@pytest.mark.parametrize("kind", ["cmp", "jp"])
def test_every_cell_of_the_comparison_is_the_csv_value(folders: dict[str, Path],
                                                       kind: str) -> None:
    """report.html's full tables and comparison.md show, cell by cell, comparison.csv:
    each column once, under its own header (the shares table has a mining country and a
    refining country column), and a country's colour swatch only in country cells."""
    import pandas as pd

    from model.input.instance import load_instance
    from model.output.formatting import header, period_word

    folder = folders[kind]
    csv = pd.read_csv(folder / "comparison.csv", keep_default_na=False, na_values=[""])
    csv = csv.astype(object).where(csv.notna(), None)
    inst = load_instance(folder / "instance.yaml").instance
    per = period_word(inst.period_days)
    column_of = {header(c, inst.currency, per): c for c in csv.columns}
    assert len(column_of) == len(csv.columns), "two columns share a header"
    by_policy = csv.set_index("policy")
    # the report: every full table, cell by cell
    parser = _Tables()
    parser.feed((folder / "report.html").read_text())
    groups = [t for t in parser.tables if t.startswith("comparison-")]
    assert "comparison-shares" in groups
    shown_columns: list[str] = []
    for table_id in groups:
        head = parser.tables[table_id]["head"]
        assert len(set(head)) == len(head), (table_id, head)
        cols = [column_of[h] for h in head]
        shown_columns += cols[1:]
        assert len(parser.tables[table_id]["rows"]) == len(csv)
        for row in parser.tables[table_id]["rows"]:
            assert len(row) == len(cols), (table_id, row)
            policy = row[0][0]
            for (text, raw), col, h in zip(row[1:], cols[1:], head[1:]):
                _same_cell(text, by_policy.loc[policy, col], h, (kind, table_id, policy, col))
                swatch = "class=sw" in raw
                assert swatch == (col.endswith("_country") and bool(text)), (col, raw)
    shares = parser.tables["comparison-shares"]["head"]
    assert "mining country" in shares and "refining country" in shares
    assert "binding_rows" not in shown_columns            # for programs: the CSV only
    # comparison.md: the same, in one table
    head, rows = _markdown((folder / "comparison.md").read_text())
    assert len(set(head)) == len(head)
    cols = [column_of[h] for h in head]
    assert set(cols) == set(csv.columns) - {"binding_rows"}
    assert len(rows) == len(csv)
    for row in rows:
        assert len(row) == len(cols)
        for text, col, h in zip(row, cols, head):
            _same_cell(text, by_policy.loc[row[0], col] if col != "policy" else row[0], h,
                       (kind, "md", row[0], col))
    if kind == "jp":     # the briefing's case: mined in Australia, refined in China
        md = dict(zip(cols, next(r for r in rows if r[0] == "crma65")))
        assert md["max_share_of_demand_mining_country"] == "AU"
        assert md["max_share_of_demand_refining_country"] == "CN"


# --------------------------------------------------------------------------- key table
KEY_MEASURE = (
    "<script>window.addEventListener('load',function(){var d=document.documentElement;"
    "var out={page:[d.scrollWidth,d.clientWidth]};"
    "['key','key-supply'].forEach(function(id){var t=document.getElementById(id);"
    "var box=t.parentElement;var cells=t.querySelectorAll('td,th');var least=1e9;"
    "for(var i=0;i<cells.length;i++){least=Math.min(least,"
    "cells[i].getBoundingClientRect().width);}"
    "var first=getComputedStyle(t.querySelector('tbody td'));"
    "out[id]=[t.offsetWidth,box.clientWidth,box.scrollWidth,Math.floor(least),"
    "getComputedStyle(box).overflowX,first.position];});"
    "d.dataset.key=JSON.stringify(out);});</script>")


def _key_widths(page: Path, tmp: Path, width: int) -> dict[str, list]:
    import html as _html
    import json

    copy = tmp / f"key-{width}.html"
    copy.write_text(page.read_text().replace("</body>", KEY_MEASURE + "</body>"))
    dom = _dom(copy, tmp / f"profile-key-{width}", width)
    found = re.search(r'data-key="([^"]*)"', dom)
    assert found, dom[:500]
    return json.loads(_html.unescape(found.group(1)))


def test_key_table_fits_at_1400_and_scrolls_in_its_box_at_800(
        folders: dict[str, Path]) -> None:
    """The Japan comparison (12 policies, 7 scenarios, 4 elements): at 1400 px both key
    tables fit their box (no scrolling); at 800 px the page still fits, a key table
    wider than the window scrolls inside its own box with the policy column kept in
    view (sticky), and no cell is narrower than 24 px (three characters)."""
    page = folders["jp"] / "report.html"
    wide = _key_widths(page, folders["tmp"], 1400)
    assert wide["page"][0] <= wide["page"][1], wide
    for table_id in ("key", "key-supply"):
        table, box, scrolled, least, overflow, first = wide[table_id]
        assert table <= box and scrolled <= box, (table_id, wide[table_id])
    narrow = _key_widths(page, folders["tmp"], 800)
    assert narrow["page"][0] <= narrow["page"][1], narrow
    for table_id in ("key", "key-supply"):
        table, box, scrolled, least, overflow, first = narrow[table_id]
        assert box <= 800 and overflow == "auto" and first == "sticky", narrow[table_id]
        assert least >= 24, (table_id, least)
