"""Cell values: exact decimals, unknown as empty, and formula neutralisation for spreadsheets."""

from __future__ import annotations

import re
from decimal import Decimal

# A spreadsheet reads a cell starting with one of these as a formula (or DDE): prefix it with "'".
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
# XML 1.0 cannot carry these: openpyxl refuses them, Excel would reject the file.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def exact(value: Decimal) -> Decimal:
    """143.00 → 143, 143.50 → 143.5: the value as measured, without storage padding."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def decimal_text(value: Decimal) -> str:
    return format(exact(value), "f")


def json_number(value: Decimal) -> int | float:
    """An int or the float whose shortest repr is the exact decimal (≤ 6 significant digits here)."""
    value = exact(value)
    return int(value) if value == value.to_integral_value() else float(value)


def neutralise(text: str) -> str:
    """Make a text cell inert in spreadsheets. Numbers are never passed here: they stay numeric."""
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def xml_safe(text: str) -> str:
    return _ILLEGAL_XML.sub("", text)


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def xlsx_cell(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, int):
        return value
    return neutralise(xml_safe(str(value)))


def json_value(value):
    if isinstance(value, Decimal):
        return json_number(value)
    return value
