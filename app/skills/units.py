"""Unit conversions with pint: "how many grams in a pound", "5英里等于多少公里".

Only the units named in `UNITS` are understood (kitchen, distance, weight,
temperature, speed, time, area); a phrase naming anything else makes the skill
decline, so "what is love in French" still goes to the language model.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from app.skills.numbers import parse_number


@dataclass(frozen=True)
class Unit:
    key: str
    pint_name: str
    singular: str
    plural: str
    zh: str
    kind: str
    """Units convert only within a kind ("length", "mass", ...)."""


UNITS: dict[str, Unit] = {u.key: u for u in (
    Unit("km", "kilometer", "kilometer", "kilometers", "公里", "length"),
    Unit("m", "meter", "meter", "meters", "米", "length"),
    Unit("cm", "centimeter", "centimeter", "centimeters", "厘米", "length"),
    Unit("mm", "millimeter", "millimeter", "millimeters", "毫米", "length"),
    Unit("mi", "mile", "mile", "miles", "英里", "length"),
    Unit("yd", "yard", "yard", "yards", "码", "length"),
    Unit("ft", "foot", "foot", "feet", "英尺", "length"),
    Unit("in", "inch", "inch", "inches", "英寸", "length"),
    Unit("kg", "kilogram", "kilogram", "kilograms", "公斤", "mass"),
    Unit("g", "gram", "gram", "grams", "克", "mass"),
    Unit("mg", "milligram", "milligram", "milligrams", "毫克", "mass"),
    Unit("lb", "pound", "pound", "pounds", "磅", "mass"),
    Unit("oz", "ounce", "ounce", "ounces", "盎司", "mass"),
    Unit("st", "stone", "stone", "stone", "英石", "mass"),
    Unit("jin", "jin", "jin", "jin", "斤", "mass"),
    Unit("l", "liter", "liter", "liters", "升", "volume"),
    Unit("ml", "milliliter", "milliliter", "milliliters", "毫升", "volume"),
    Unit("gal", "gallon", "gallon", "gallons", "加仑", "volume"),
    Unit("qt", "quart", "quart", "quarts", "夸脱", "volume"),
    Unit("pt", "pint", "pint", "pints", "品脱", "volume"),
    Unit("cup", "cup", "cup", "cups", "杯", "volume"),
    Unit("floz", "fluid_ounce", "fluid ounce", "fluid ounces", "液量盎司", "volume"),
    Unit("tbsp", "tablespoon", "tablespoon", "tablespoons", "汤匙", "volume"),
    Unit("tsp", "teaspoon", "teaspoon", "teaspoons", "茶匙", "volume"),
    Unit("degc", "degC", "degree Celsius", "degrees Celsius", "摄氏度", "temperature"),
    Unit("degf", "degF", "degree Fahrenheit", "degrees Fahrenheit", "华氏度", "temperature"),
    Unit("kelvin", "kelvin", "kelvin", "kelvin", "开尔文", "temperature"),
    Unit("kmh", "kilometer_per_hour", "kilometer per hour", "kilometers per hour", "公里每小时",
         "speed"),
    Unit("mph", "mile_per_hour", "mile per hour", "miles per hour", "英里每小时", "speed"),
    Unit("s", "second", "second", "seconds", "秒", "time"),
    Unit("min", "minute", "minute", "minutes", "分钟", "time"),
    Unit("h", "hour", "hour", "hours", "小时", "time"),
    Unit("day", "day", "day", "days", "天", "time"),
    Unit("week", "week", "week", "weeks", "周", "time"),
    Unit("acre", "acre", "acre", "acres", "英亩", "area"),
    Unit("ha", "hectare", "hectare", "hectares", "公顷", "area"),
    Unit("sqm", "square_meter", "square meter", "square meters", "平方米", "area"),
    Unit("sqft", "square_foot", "square foot", "square feet", "平方英尺", "area"),
)}

_EN_ALIASES = {
    "kilometre": "km", "kilometres": "km", "kms": "km", "k": "km",
    "metre": "m", "metres": "m", "centimetre": "cm", "centimetres": "cm",
    "millimetre": "mm", "millimetres": "mm", "kilo": "kg", "kilos": "kg",
    "lbs": "lb", "ounce": "oz", "grammes": "g", "litre": "l", "litres": "l",
    "millilitre": "ml", "millilitres": "ml", "celsius": "degc", "centigrade": "degc",
    "degrees celsius": "degc", "degree celsius": "degc", "degrees centigrade": "degc",
    "fahrenheit": "degf", "degrees fahrenheit": "degf", "degree fahrenheit": "degf",
    "kelvins": "kelvin", "km/h": "kmh", "kph": "kmh", "kilometres per hour": "kmh",
    "kilometre per hour": "kmh", "tablespoon": "tbsp", "teaspoon": "tsp", "tbsps": "tbsp",
    "tsps": "tsp", "fl oz": "floz", "feet": "ft", "foot": "ft", "inch": "in", "inches": "in",
    "hrs": "h", "mins": "min", "secs": "s", "sec": "s", "square metres": "sqm",
    "square metre": "sqm",
}
_ZH_ALIASES = {"千米": "km", "公尺": "m", "千克": "kg", "公升": "l", "摄氏": "degc",
               "华氏": "degf", "度": "degc", "个小时": "h", "分": "min", "英里每小时": "mph",
               "里": "km"}


def _lookup() -> tuple[dict[str, str], dict[str, str]]:
    en: dict[str, str] = {}
    zh: dict[str, str] = {}
    for unit in UNITS.values():
        for name in (unit.key, unit.singular.lower(), unit.plural.lower()):
            en[name] = unit.key
        zh[unit.zh] = unit.key
    en.update(_EN_ALIASES)
    zh.update(_ZH_ALIASES)
    del zh["里"]  # "里" alone is ambiguous (Chinese li, 500 m): not a unit here
    return en, zh


_EN_NAMES, _ZH_NAMES = _lookup()


def find_unit(text: str, language: str) -> Unit | None:
    """The unit `text` names ("kilometers", "a cup" is not; "公斤"), or None."""
    text = text.strip().lower()
    if language == "zh":
        key = _ZH_NAMES.get(text.replace(" ", "").removeprefix("多少"))
    else:
        text = re.sub(r"^(the|a|an)\s+", "", text)
        key = _EN_NAMES.get(text) or _EN_NAMES.get(text.removeprefix("degrees "))
    return UNITS.get(key) if key else None


def parse_quantity(text: str, language: str) -> tuple[float, Unit] | None:
    """ "five miles" -> (5, mile); "一百华氏度" -> (100, °F); else None."""
    text = text.strip().lower()
    if language == "zh":
        text = text.replace(" ", "")
        for size in range(min(len(text) - 1, 6), 0, -1):
            unit = find_unit(text[-size:], "zh")
            value = parse_number(text[:-size].removesuffix("个"), "zh") if unit else None
            if unit is not None and value is not None:
                return value, unit
        return None
    text = re.sub(r"(\d)([a-z°])", r"\1 \2", text)
    words = text.split()
    for split in range(len(words) - 1, 0, -1):
        unit = find_unit(" ".join(words[split:]), "en")
        if unit is None:
            continue
        number_text = " ".join(words[:split])
        one = ("a", "an", "one", "the", "per")  # "how many ounces in the pound"
        value = 1.0 if number_text in one else parse_number(number_text, "en")
        if value is not None:
            return value, unit
    return None


class Converter:
    """pint's registry, built on first use (it takes a few hundred milliseconds)."""

    def __init__(self) -> None:
        self._registry: Any = None
        self._lock = threading.Lock()

    def prepare(self) -> Any:
        """The registry, built now if it was not yet."""
        with self._lock:
            if self._registry is None:
                import pint

                registry = pint.UnitRegistry()
                registry.define("jin = 500 * gram")  # the Chinese market pound, 斤
                registry.define("square_meter = meter ** 2")
                self._registry = registry
            return self._registry

    def convert(self, value: float, source: Unit, target: Unit) -> float | None:
        """`value` in `source` expressed in `target`; None when they do not convert."""
        if source.kind != target.kind:
            return None
        registry = self.prepare()
        with self._lock:
            quantity = registry.Quantity(value, source.pint_name)
            return float(quantity.to(target.pint_name).magnitude)
