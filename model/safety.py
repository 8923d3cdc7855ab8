"""What user text and numbers may do: the limits shared by the loader, the API and the CLI.

Everything a user names (an id, a policy, a path) eventually reaches a file
name, a terminal, a CSV cell, an HTML page or a chart label. Rather than
trusting each of those places to be careful, this module holds the few rules
they all use (docs/cli.md, "Safety"):

* ids (elements, groups, source and scenario ids, policy names, text period
  labels) match :data:`ID_PATTERN`, so they are safe as file names, cannot
  start a spreadsheet formula and hold no markup or control characters;
* free text (names, descriptions) is shown through :func:`printable` on a
  terminal and neutralised by :func:`csv_cell` in CSV files;
* numbers stay far below HiGHS's infinity (1e20), see the ``MAX_*`` bounds;
* grids and generated sizes are bounded before anything is allocated;
* :func:`check_settings` checks the run settings for the CLI and the API alike;
* country codes are ISO 3166-1 alpha-2 codes (:data:`ISO_3166_ALPHA2`);
* :func:`shown` quotes a value in a message at a bounded cost, whatever its size;
* :func:`check_model_size` bounds every model before it is built.

No third-party imports: the schema and the command line's first lines use it.
"""

from __future__ import annotations

import math
import numbers
import re
import reprlib
import unicodedata
from typing import Any

from .errors import UsageError

# --------------------------------------------------------------------------- ids
MAX_ID_LENGTH = 100
# a letter, digit or _ first (not . - + = @: no hidden file, no option, no
# formula, no `..`), then letters, digits and . _ + - (`+` joins event ids)
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,%d}" % (MAX_ID_LENGTH - 1))
ID_RULE = (f"letters, digits and . _ + - only, starting with a letter, digit or _, "
           f"at most {MAX_ID_LENGTH} characters")


def is_id(value: str) -> bool:
    """Whether `value` is a safe id (see :data:`ID_PATTERN`)."""
    return ID_PATTERN.fullmatch(value) is not None


# --------------------------------------------------------------------------- free text
MAX_NAME_LENGTH = 200      # instance and source names: one line of text
MAX_CURRENCY_LENGTH = 40
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def is_control(char: str) -> bool:
    """C0/C1 control characters, DEL, line separators and bidirectional overrides:
    characters that move the cursor, recolour a terminal or reorder what is shown."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI


# the characters is_control accepts, as one class: Unicode's Cc category is exactly
# U+0000-U+001F and U+007F-U+009F, Zl is U+2028 and Zp U+2029, then _BIDI
# (tests/test_robustness.py checks the two agree on every code point)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]")
_CONTROL_BUT_LINES = re.compile(            # the same without \t and \n
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def has_control(text: str, lines: bool = False) -> bool:
    """Whether `text` holds a character that :func:`is_control` accepts (with `lines`,
    a line break or a tab is allowed): one regular-expression scan, not a Unicode
    lookup per character (instance notes run to thousands of characters)."""
    return (_CONTROL_BUT_LINES if lines else _CONTROL).search(text) is not None


def printable(text: Any) -> str:
    """`text` for a terminal: every control character shown as its escape (``\\x1b``).

    The one helper every terminal message goes through; with rich's markup and
    emoji off (the CLI prints rich ``Text``), the result is shown literally.
    """
    text = str(text)
    if not has_control(text):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if is_control(c) else c
                   for c in text)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (prefix ``'``).

    OWASP's advice for CSV injection: a cell starting with = + - @ tab or CR
    is a formula in Excel, LibreOffice and Google Sheets. Only text cells are
    changed; numbers (also negative ones) are written as numbers.
    """
    return "'" + text if text.startswith(FORMULA_START) else text


def shown(value: Any, most: int = 60) -> str:
    """`value` for a message: a repr of at most `most` characters, built at a bounded cost.

    ``repr()`` of a YAML alias bomb (a list of lists sharing themselves) would
    build the whole expansion, and a huge integer's digits take quadratic time:
    :mod:`reprlib` stops after a few items and levels.
    """
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = _REPR.repr(value)
    return text if len(text) <= most else text[:most - 3] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 4, 6, 6
_REPR.maxset, _REPR.maxfrozenset, _REPR.maxstring, _REPR.maxother = 6, 6, 80, 80
_REPR.maxlong = 80


# --------------------------------------------------------------------------- countries
# ISO 3166-1 alpha-2: the 249 officially assigned codes, as published by the ISO 3166
# Maintenance Agency (ISO Online Browsing Platform, https://www.iso.org/obp) and
# mirrored by Debian's iso-codes 4.15.0 (iso_3166-1.json). User-assigned codes (AA,
# QM-QZ, XA-XZ, ZZ) and exceptionally reserved ones (EU, UK, ...) are not countries
# here: a look-alike letter (Cyrillic С in СN) must not pass for China.
ISO_3166_ALPHA2 = frozenset((
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW",
    "AX", "AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN",
    "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG",
    "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ",
    "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI",
    "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL",
    "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR",
    "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME",
    "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU",
    "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP",
    "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR",
    "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD",
    "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
    "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE",
    "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
))
COUNTRY_RULE = "an ISO 3166-1 alpha-2 country code (two ASCII capitals such as JP)"


def is_country(value: Any) -> bool:
    """Whether `value` is an officially assigned ISO 3166-1 alpha-2 code."""
    return isinstance(value, str) and value in ISO_3166_ALPHA2


# --------------------------------------------------------------------------- numbers
HIGHS_INFINITY = 1e20
# every plain number (tonnes, prices, penalties, budgets) is at most MAX_NUMBER;
# with multipliers at most MAX_MULTIPLIER and stock targets at most
# MAX_STOCK_PERIODS periods of demand, the largest product in the LP (a stock
# target: 100 periods x 100 x demand) stays at most 1e19 < HIGHS_INFINITY, and a
# price times a shock (the largest cost coefficient) at most 1e17
MAX_NUMBER = 1e15
MAX_MULTIPLIER = 100.0
MAX_STOCK_PERIODS = 100.0
MAX_DISCOUNT_RATE = 10.0
MIN_DISCOUNT_WEIGHT = 1e-100   # 1/(1+rate)^(T-1) of the last period
MAX_INT_DIGITS = 1000          # longer integer literals are refused while parsing
# CVaR's tail weight 1/(1 - alpha) multiplies scenario costs in the objective; closer
# to 1 it leaves double precision (1 - 0.9999999999999999 = 1.1e-16) and the LP breaks.
# Any alpha above 1 - (smallest scenario probability) is already the worst case.
MIN_CVAR_TAIL = 1e-6
MAX_ALPHA = 1.0 - MIN_CVAR_TAIL

# --------------------------------------------------------------------------- sizes
MAX_CAP_POINTS = 1_000
MAX_SAMPLE = 100_000
MAX_SYNTHETIC_SIZE = 100_000          # each of sources, elements, periods, scenarios
# sources x elements x periods x scenarios: a solve takes about 1.4 KB of memory per
# cell (measured: 1 x 100 x 100 x 200 = 2,000,000 cells, 2.8 GB peak for `solve`), so
# 5,000,000 cells is about 7 GB, within the 24 GiB machine; the largest recorded
# benchmark (20 x 17 x 10 x 1,000 = 3,400,000, mpi-sppy) is within it
MAX_SYNTHETIC_CELLS = 5_000_000
MAX_SWEEP_POINTS = MAX_CAP_POINTS
# every model: (sources + projects) x elements x periods x scenarios, the number of
# first- and second-stage cells of the extensive form; the information tree has at
# most periods x scenarios + 1 nodes, so the node-indexed variables are within it too
MAX_MODEL_CELLS = MAX_SYNTHETIC_CELLS


def check_model_size(sources: int, elements: int, periods: int, scenarios: int,
                     projects: int = 0) -> None:
    """Refuse a model too large to build, before anything is allocated (UsageError
    naming the sizes): (sources + projects) x elements x periods x scenarios at most
    :data:`MAX_MODEL_CELLS`."""
    cells = (sources + projects) * elements * periods * scenarios
    if cells > MAX_MODEL_CELLS:
        what = f"{sources:,} sources" + (f" + {projects:,} projects" if projects else "")
        raise UsageError(
            f"the model is too large to build: ({what}) x {elements:,} elements x "
            f"{periods:,} periods x {scenarios:,} scenarios = {cells:,} cells, above "
            f"{MAX_MODEL_CELLS:,} (docs/cli.md, Safety)")


# several buyers (DESIGN.md, "Several buyers"): every buyer multiplies the model (its own
# contracts, deliveries, stock); the coalition game solves 2^n - 1 models and has its
# own, lower bound (model.studies.coalition.MAX_COALITION_BUYERS)
MAX_BUYERS = 50


# scenarios generated from regimes and events (model.input.regimes): enumeration
# gives every reachable regime path times every subset of the events; above this
# many scenarios it is refused (an extensive form that large would not solve in
# reasonable time on one machine) and `sample: {paths: N, seed: S}` draws N paths
MAX_ENUMERATED_SCENARIOS = 20_000
MAX_REGIME_STATES = 50
MAX_EVENTS = 50
# sampling statistics (`solve --replications R --evaluate M`, model.studies.sampling):
# 2R + 1 solves after the run's own, each of a sample as large as the instance's;
# the evaluation sample has at most MAX_SAMPLE paths, as any sample
MAX_REPLICATIONS = 200
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.999


# robustness studies (`sourcing robustness`, model.studies.robustness): a ranges file is
# read within MAX_RANGES_FILE_BYTES and names at most MAX_RANGE_INPUTS inputs; at most
# MAX_DRAWS joint draws; switch points scan each range on at most MAX_GRID_STEPS
# intervals and bisect a change at most MAX_BISECTION_STEPS times (the default
# resolution, 1e-3 of the range within a grid step of 1/8, takes 7). A study solves
# at most inputs x (2 + grid + decisions x steps) + draws variants per policy: with
# every bound at its largest that is large, but each part is bounded before it starts
MAX_RANGES_FILE_BYTES = 1024 * 1024
MAX_RANGE_INPUTS = 100
MAX_DRAWS = 10_000
MAX_GRID_STEPS = 50
MAX_BISECTION_STEPS = 40


def check_synthetic_size(sources: int, elements: int, periods: int, scenarios: int,
                         flags: bool = False) -> None:
    """Refuse a synthetic instance too large to generate, before generating it."""
    names = ("--sources", "--elements", "--periods", "--scenarios") if flags else \
        ("n_sources", "n_elements", "n_periods", "n_scenarios")
    sizes = (sources, elements, periods, scenarios)
    for name, n in zip(names, sizes):
        if not 1 <= n <= MAX_SYNTHETIC_SIZE:
            raise UsageError(f"{name} must lie in [1, {MAX_SYNTHETIC_SIZE:,}], got {n}")
    if math.prod(sizes) > MAX_SYNTHETIC_CELLS:
        raise UsageError(
            f"sources x elements x periods x scenarios = {math.prod(sizes):,} is above "
            f"{MAX_SYNTHETIC_CELLS:,} (the size of the extensive form; see docs/cli.md)")


def check_count(name: str, n: int, most: int, least: int = 1) -> None:
    """`n` (a number of points, scenarios, ...) in [least, most], or a UsageError."""
    if not least <= n <= most:
        raise UsageError(f"{name} must lie in [{least:,}, {most:,}], got {n:,}")


# --------------------------------------------------------------------------- run settings
def check_settings(risk_lambda: float | None = None, risk_alpha: float | None = None,
                   time_limit: float | None = None, threads: int | None = None,
                   flags: bool = False) -> None:
    """The ranges of the run settings, for the command line and the API alike.

    `flags` names them as command-line options (``--lambda``) rather than as
    Python arguments (``risk_lambda``). NaN fails every range.
    """
    name = {"lambda": "--lambda" if flags else "risk_lambda",
            "alpha": "--alpha" if flags else "risk_alpha",
            "time": "--time-limit" if flags else "time_limit_s"}
    if risk_lambda is not None and not _real(risk_lambda, 0.0 <= _f(risk_lambda) <= 1.0):
        raise UsageError(f"{name['lambda']} must lie in [0, 1], got {risk_lambda}")
    if risk_alpha is not None and not _real(risk_alpha, 0.0 <= _f(risk_alpha) <= MAX_ALPHA):
        raise UsageError(f"{name['alpha']} must lie in [0, {MAX_ALPHA!r}] (at least "
                         f"{MIN_CVAR_TAIL:g} of probability in the CVaR tail), "
                         f"got {risk_alpha}")
    if time_limit is not None and not _real(
            time_limit, 0.0 < _f(time_limit) < math.inf):
        raise UsageError(f"{name['time']} must be a positive number of seconds, "
                         f"got {time_limit}")
    if threads is not None and (isinstance(threads, bool)
                                or not isinstance(threads, numbers.Integral) or threads < 1):
        raise UsageError(f"threads must be a positive integer, got {threads!r}")


def check_ambiguity(theta: Any, name: str = "--ambiguity") -> float:
    """A total-variation radius: a number in [0, 2] (2: every distribution)."""
    if not _real(theta, 0.0 <= _f(theta) <= 2.0):
        raise UsageError(f"{name} must lie in [0, 2] (the total-variation distance between "
                         f"two distributions is at most 2), got {theta}")
    return float(theta)


def check_gap(gap: Any, name: str = "--gap") -> float:
    """A relative optimality gap: a finite non-negative number (inf would call any
    bound optimal)."""
    if not _real(gap, 0.0 <= _f(gap) < math.inf):
        raise UsageError(f"{name} must be a finite non-negative number, got {gap}")
    return float(gap)


def check_caps(caps: list[float], name: str = "caps") -> list[float]:
    """Cap shares: between 1 and MAX_CAP_POINTS values, each finite and in [0, 1]."""
    check_count(f"the number of {name}", len(caps), MAX_CAP_POINTS)
    bad = [c for c in caps if not _real(c, 0.0 <= _f(c) <= 1.0)]
    if bad:
        raise UsageError(f"{name} must be finite numbers in [0, 1]; got {bad[:5]}")
    return [float(c) for c in caps]


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _real(value: Any, in_range: bool) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and in_range
