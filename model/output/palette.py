"""One colour per country, source and project, the same in every chart and report.

A chart that colours its series by their order shows China blue in one run
and orange in the next (issue 16). Here a colour depends only on the name:

* countries: a fixed colour for the producers and buyers that matter in rare
  earths (China red, Australia amber, Malaysia green, Japan dark blue, ...);
  any other ISO code gets a colour derived from a hash of the code, the same
  on every machine and in every run (never Python's salted ``hash``);
* sources and projects: a colour from a hash of the id, in the hue family of
  the source's country when it is given, so a country's sources read as a
  family and two sources of one country still differ in lightness.

Grey is left for shortage (the hatched segments of the supply chart), so no
country is grey, and series that are not countries (cost, shortage) use
colours no country has. Colours are hex strings: matplotlib and CSS both take them.
"""

from __future__ import annotations

import colorsys
import hashlib

# Fixed choices, far apart in hue or lightness. China is the red that the
# briefing readers look for first; the home country (JP in the bundled
# instances) a dark blue.
COUNTRY_COLORS: dict[str, str] = {
    "CN": "#d62728",   # red
    "AU": "#e6a000",   # amber
    "MY": "#2ca02c",   # green
    "JP": "#1f4e9c",   # dark blue
    "FR": "#9467bd",   # purple
    "US": "#5fb4e6",   # light blue
    "VN": "#e377c2",   # pink
    "MM": "#8c564b",   # brown
    "LA": "#c49c94",   # rose brown
    "CA": "#ff7f0e",   # orange
    "EE": "#17becf",   # teal
    "NA": "#bcbd22",   # olive (Namibia)
    "BR": "#006d5b",   # dark teal
    "IN": "#f7b6d2",   # light pink
    "GL": "#9edae5",   # pale cyan
    "SE": "#393b79",   # indigo
    "NO": "#8ca252",   # moss
    "KR": "#aec7e8",   # pale blue
    "DE": "#7b4173",   # plum
    "GB": "#637939",   # dark olive
    "RU": "#843c39",   # dark red-brown
    "TZ": "#bd9e39",   # ochre
    "ZA": "#e7ba52",   # sand
    "KZ": "#ad494a",   # brick
    "MG": "#a55194",   # magenta
    "TH": "#6b6ecf",   # periwinkle
}
SHORTAGE_COLOR = "lightgrey"   # reserved: never a country's colour
# Series that are not countries stay out of the countries' colours (China's red
# above all): cost in steel blue, shortage in greys, as in the supply chart.
COST_COLOR = "#3b6ea8"
SHORTAGE_DARK = "#4d4d4d"
SHORTAGE_LIGHT = "#a6a6a6"
CASH_COLOR = "#7fa7d1"
PENALTY_COLOR = "#8c8c8c"
# projects by their place in the instance's list (stable across runs of an
# instance): a qualitative palette that shares no colour with a country
PROJECT_COLORS = ["#1f77b4", "#fd8d3c", "#74c476", "#756bb1", "#ffbb78", "#98df8a",
                  "#6baed6", "#dbdb8d", "#9c9ede", "#e7cb94"]
COST_PART_COLORS = {"reservation_cost": "#a6c8e0", "delivery_cost": COST_COLOR,
                    "holding_cost": "#c5b0d5", "shortage_cost": "#8c8c8c"}


def _unit(text: str, salt: str) -> float:
    """A number in [0, 1) from `text`, stable across processes and machines."""
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _hex(h: float, l: float, s: float) -> str:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, l, s)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def country_color(code: str) -> str:
    """The colour of a country (ISO code); unknown codes: a fixed colour from a hash."""
    code = str(code)
    if code in COUNTRY_COLORS:
        return COUNTRY_COLORS[code]
    # mid lightness and saturation: never near grey (shortage) or white (page)
    return _hex(_unit(code, "country"), 0.42 + 0.16 * _unit(code, "light"),
                0.55 + 0.3 * _unit(code, "sat"))


def source_color(source: str, country: str | None = None) -> str:
    """The colour of a source (or project) id: with its country, a shade of the
    country's hue (lighter or darker by the id's hash); without, a hue from the hash."""
    if country is None:
        return _hex(_unit(source, "source"), 0.35 + 0.3 * _unit(source, "light"),
                    0.5 + 0.35 * _unit(source, "sat"))
    r, g, b = (int(country_color(country)[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, l, s = colorsys.rgb_to_hls(r, g, b)
    # a hue shift of at most +-0.04 and a lightness in [0.3, 0.7]: the family stays visible
    return _hex(h + 0.08 * (_unit(source, "hue") - 0.5), 0.3 + 0.4 * _unit(source, "light"),
                max(0.45, s))


def project_color(index: int) -> str:
    """The colour of the instance's `index`-th project."""
    return PROJECT_COLORS[index % len(PROJECT_COLORS)]


def regime_color(index: int) -> str:
    """The colour of the instance's `index`-th regime (its place in `states`): the
    qualitative palette of projects, no country's colour, no grey."""
    return PROJECT_COLORS[index % len(PROJECT_COLORS)]


def country_order(codes: list[str]) -> list[str]:
    """Countries in a fixed order (those with fixed colours first, in the table's
    order, then the rest alphabetically), so stacks and legends never reshuffle."""
    fixed = [c for c in COUNTRY_COLORS if c in codes]
    return fixed + sorted(set(codes) - set(fixed))


COUNTRY_NAMES: dict[str, str] = {
    "CN": "China", "AU": "Australia", "MY": "Malaysia", "JP": "Japan", "FR": "France",
    "US": "the United States", "VN": "Vietnam", "MM": "Myanmar", "LA": "Laos",
    "CA": "Canada", "EE": "Estonia", "NA": "Namibia", "BR": "Brazil", "IN": "India",
    "GL": "Greenland", "SE": "Sweden", "NO": "Norway", "KR": "South Korea",
    "DE": "Germany", "GB": "the United Kingdom", "RU": "Russia", "TZ": "Tanzania",
    "ZA": "South Africa", "KZ": "Kazakhstan", "MG": "Madagascar", "TH": "Thailand",
}


def country_name(code: str) -> str:
    """A country's name in English for the codes above, else the code itself."""
    return COUNTRY_NAMES.get(str(code), str(code))
