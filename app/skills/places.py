"""Places people ask the time of ("what time is it in Tokyo"), read from the system's time
zone database (the `tzdata` package, in every Debian and Raspberry Pi OS install:
/usr/share/zoneinfo), so nothing is downloaded and the offsets follow the system's
updates:

- each zone's city: "America/New_York" is New York, "America/Argentina/Buenos_Aires" is
  Buenos Aires (the old names the database keeps as links too: Calcutta and Kolkata);
- each country of `iso3166.tab` with the zones `zone.tab` lists for it: France has one,
  the United States many ("Korea (South)" is also "South Korea"; "Antigua & Barbuda" is
  "Antigua and Barbuda"; a name two countries share, like Korea, is neither's);
- a few names people use for places that are no zone's name (`ALIASES`: Beijing, San
  Francisco, the UK).

Keys are spoken forms (`spoken_key`): lower case, no accents, hyphens as spaces, no
leading "the".
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_AREAS = ("Africa", "America", "Asia", "Atlantic", "Australia", "Europe", "Indian",
          "Pacific")
"""The zone names' first parts that are places (not Etc/, US/, Antarctica/ ...)."""

ALIASES: dict[str, tuple[str, str]] = {
    # place people name: (as said back, the zone or the country code)
    "beijing": ("Beijing", "Asia/Shanghai"),
    "delhi": ("Delhi", "Asia/Kolkata"), "new delhi": ("New Delhi", "Asia/Kolkata"),
    "mumbai": ("Mumbai", "Asia/Kolkata"), "bangalore": ("Bangalore", "Asia/Kolkata"),
    "osaka": ("Osaka", "Asia/Tokyo"), "kyoto": ("Kyoto", "Asia/Tokyo"),
    "tel aviv": ("Tel Aviv", "Asia/Jerusalem"), "mecca": ("Mecca", "Asia/Riyadh"),
    "san francisco": ("San Francisco", "America/Los_Angeles"),
    "seattle": ("Seattle", "America/Los_Angeles"),
    "las vegas": ("Las Vegas", "America/Los_Angeles"),
    "washington": ("Washington", "America/New_York"),
    "washington dc": ("Washington", "America/New_York"),
    "boston": ("Boston", "America/New_York"), "miami": ("Miami", "America/New_York"),
    "atlanta": ("Atlanta", "America/New_York"),
    "new york city": ("New York", "America/New_York"),
    "houston": ("Houston", "America/Chicago"), "dallas": ("Dallas", "America/Chicago"),
    "montreal": ("Montreal", "America/Toronto"), "ottawa": ("Ottawa", "America/Toronto"),
    "rio de janeiro": ("Rio de Janeiro", "America/Sao_Paulo"),
    "munich": ("Munich", "Europe/Berlin"), "frankfurt": ("Frankfurt", "Europe/Berlin"),
    "hamburg": ("Hamburg", "Europe/Berlin"), "milan": ("Milan", "Europe/Rome"),
    "barcelona": ("Barcelona", "Europe/Madrid"), "geneva": ("Geneva", "Europe/Zurich"),
    "saint petersburg": ("Saint Petersburg", "Europe/Moscow"),
    "st petersburg": ("Saint Petersburg", "Europe/Moscow"),
    "edinburgh": ("Edinburgh", "Europe/London"), "manchester": ("Manchester", "Europe/London"),
    "uk": ("the UK", "GB"), "united kingdom": ("the United Kingdom", "GB"),
    "great britain": ("Great Britain", "GB"), "england": ("England", "GB"),
    "scotland": ("Scotland", "GB"), "wales": ("Wales", "GB"),
    "us": ("the US", "US"), "usa": ("the USA", "US"), "america": ("America", "US"),
    "united states of america": ("the United States", "US"),
    "holland": ("Holland", "NL"), "samoa": ("Samoa", "WS"), "korea": ("Korea", "KR"),
}


@dataclass(frozen=True)
class Place:
    """A place whose time can be told."""

    name: str
    """As said back: "New York", "France"."""
    zones: tuple[str, ...]
    """Its time zone, or a country's several."""


def spoken_key(text: str) -> str:
    """The lookup form of a place's name: "Port-au-Prince" -> "port au prince", "the
    Netherlands" -> "netherlands", "Curaçao" -> "curacao"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("&", " and "))
    return re.sub(r"^the ", "", " ".join(text.split()))


def _read_tab(path: Path) -> list[list[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def _country_names(name: str) -> list[str]:
    """ "Korea (South)" -> ["Korea", "South Korea"]; "Britain (UK)" -> ["Britain", "UK"];
    "St Lucia" -> ["St Lucia", "Saint Lucia"]."""
    match = re.fullmatch(r"(.+?) \((.+)\)", name)
    names = [name]
    if match:
        base, note = match[1], match[2]
        names = [base]
        if note[:1].isupper() and " " not in note and note.isupper():
            names.append(note)  # "Britain (UK)"
        elif " " not in note and "." not in note:
            names.append(f"{note.capitalize()} {base}")  # "Samoa (American)"
    names = [_with_article(n.replace(" & ", " and ").replace(" Rep.", " Republic"))
             for n in names]
    return names + [_saint(n) for n in names if _saint(n) != n]


def _saint(name: str) -> str:
    """ "St Lucia" -> "Saint Lucia" (as said back, and a second name to look up)."""
    return re.sub(r"^(the )?St ", r"\1Saint ", name)


def zone_city(zone: str) -> str:
    """The city a zone is named after: "America/Argentina/Buenos_Aires" -> "Buenos Aires"."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")


_THE_COUNTRIES = ("Netherlands", "Philippines", "Bahamas", "Maldives", "Gambia",
                  "Vatican City")


def _with_article(name: str) -> str:
    """ "the United States", "the Cayman Islands" (as said back; `spoken_key` drops it)."""
    plural = name.endswith(("Islands", "Republic", "Emirates"))
    if name.startswith("United ") or plural or name in _THE_COUNTRIES:
        return "the " + name
    return name


def _zone_folder() -> Path | None:
    for folder in zoneinfo.TZPATH:
        if (Path(folder) / "zone.tab").is_file():
            return Path(folder)
    return None


@lru_cache(maxsize=1)
def places() -> dict[str, Place]:
    """Every place Hearth can tell the time of, by `spoken_key` (empty without tzdata)."""
    found: dict[str, Place] = {}
    available = zoneinfo.available_timezones()
    folder = _zone_folder()
    countries: dict[str, list[str]] = {}
    if folder is not None:
        for row in _read_tab(folder / "zone.tab"):
            if len(row) >= 3 and row[2] in available:
                countries.setdefault(row[0], []).append(row[2])
        named = [(row[0], _country_names(row[1])) for row in _read_tab(folder / "iso3166.tab")
                 if len(row) >= 2 and row[0] in countries]
        said = Counter(spoken_key(name) for _, names in named for name in names)
        for code, names in named:
            for name in names:  # not "Korea", "Congo" or "Samoa": two countries each
                if said[spoken_key(name)] == 1:
                    found[spoken_key(name)] = Place(_saint(name), tuple(countries[code]))
    # after the countries: an old zone name is no country ("Pacific/Samoa" is Pago Pago,
    # in American Samoa; Samoa is Apia)
    for zone in sorted(available):
        area, _, rest = zone.partition("/")
        if area in _AREAS and rest:
            city = zone_city(zone)
            found.setdefault(spoken_key(city), Place(city, (zone,)))
    for key, (name, target) in ALIASES.items():
        zones = countries.get(target) or ([target] if target in available else [])
        if zones:
            found[key] = Place(name, tuple(zones))
    return found


def find_place(text: str) -> Place | None:
    """The place named `text` ("tokyo", "the UK"), or None."""
    return places().get(spoken_key(text))
