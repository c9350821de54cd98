"""ENVI header text: parsing, formatting, and the split into `SceneMeta` fields."""
from __future__ import annotations

import math
from typing import Any

from hsicodec.errors import InputError
from hsicodec.io.meta import SceneMeta

# Derived from the pixels on write; never carried in `SceneMeta.envi`.
STRUCTURAL = (
    "samples",
    "lines",
    "bands",
    "header offset",
    "file type",
    "data type",
    "interleave",
    "byte order",
)
# Parsed into dedicated `SceneMeta` attributes when valid, else kept verbatim in `envi`.
STRUCTURED = (
    "description",
    "wavelength units",
    "data ignore value",
    "band names",
    "wavelength",
    "fwhm",
    "bbl",
)


def parse_header(text: str, where: str) -> dict[str, str]:
    """`key = value` fields of an ENVI header, keys lower-case, values verbatim (braces kept)."""
    lines = text.splitlines()
    if not lines or lines[0].strip().lstrip("\ufeff") != "ENVI":
        raise InputError(f"{where}: not an ENVI header (first line is not 'ENVI')")
    out: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line or line.lstrip().startswith(";"):
            continue
        key, _, value = line.partition("=")
        key = " ".join(key.split()).lower()
        value = value.strip()
        if value.startswith("{"):
            while "}" not in value and i < len(lines):
                value += "\n" + lines[i]
                i += 1
            if "}" not in value:
                raise InputError(f"{where}: header field '{key}' has no closing brace")
            value = value[: value.index("}") + 1]
        out[key] = value
    return out


def format_header(fields: dict[str, str]) -> str:
    """Header text for `fields` (values as stored by `parse_header`)."""
    return "ENVI\n" + "".join(f"{k} = {v}\n" for k, v in fields.items())


def unbrace(value: str) -> str:
    """Inner text of a `{...}` value, stripped; other values stripped."""
    v = value.strip()
    if v.startswith("{") and v.endswith("}"):
        v = v[1:-1]
    return v.strip()


def parse_list(value: str) -> list[str] | None:
    """Items of a `{a, b, ...}` value (a trailing comma is tolerated); None if not braced."""
    v = value.strip()
    if not (v.startswith("{") and v.endswith("}")):
        return None
    items = [s.strip() for s in v[1:-1].split(",")]
    if items and items[-1] == "":
        items.pop()
    return items


def parse_numbers(value: str, count: int) -> list[float] | None:
    """`count` numbers from a braced list, or None if the value is anything else."""
    items = parse_list(value)
    if items is None or len(items) != count:
        return None
    try:
        return [float(s) for s in items]
    except ValueError:
        return None


def fmt_number(x: float) -> str:
    """Shortest text that reads back as the same float (integers without '.0')."""
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def fmt_list(items: list[str]) -> str:
    return "{" + ", ".join(items) + "}"


def split_fields(fields: dict[str, str], bands: int) -> dict[str, Any]:
    """`SceneMeta` keyword arguments from header fields (structural ones dropped)."""
    kw: dict[str, Any] = {"envi": {}}
    for key, value in fields.items():
        if key in STRUCTURAL:
            continue
        parsed = _parse_structured(key, value, bands)
        if parsed is None:
            kw["envi"][key] = value
        else:
            kw[parsed[0]] = parsed[1]
    return kw


def _parse_structured(key: str, value: str, bands: int) -> tuple[str, Any] | None:
    if key == "description":
        return "description", unbrace(value)
    if key == "wavelength units":
        return "wavelength_units", unbrace(value)
    if key == "data ignore value":
        try:
            return "nodata", float(unbrace(value))
        except ValueError:
            return None
    if key == "band names":
        names = parse_list(value)
        return ("band_names", names) if names is not None and len(names) == bands else None
    if key in ("wavelength", "fwhm", "bbl"):
        numbers = parse_numbers(value, bands)
        attr = "wavelengths" if key == "wavelength" else key
        return (attr, numbers) if numbers is not None else None
    return None


def meta_fields(meta: SceneMeta) -> dict[str, str]:
    """Header fields (non-structural) for a `SceneMeta`: its structured attributes, then `envi`."""
    out: dict[str, str] = {}
    if meta.description is not None:
        out["description"] = clean_value("{" + meta.description + "}")
    if meta.wavelength_units is not None:
        out["wavelength units"] = clean_value(meta.wavelength_units)
    if meta.nodata is not None:
        out["data ignore value"] = fmt_number(meta.nodata)
    if meta.band_names is not None:
        names = [_one_line(n.replace(",", ";").replace("}", ")")).strip() for n in meta.band_names]
        out["band names"] = fmt_list(names)
    for key, values in (("wavelength", meta.wavelengths), ("fwhm", meta.fwhm), ("bbl", meta.bbl)):
        if values is not None:
            out[key] = fmt_list([fmt_number(x) for x in values])
    for key, value in meta.envi.items():
        k = " ".join(key.split()).lower()
        if k and "=" not in k and k not in STRUCTURAL and k not in out:
            out[k] = clean_value(value)
    return out


def clean_value(value: str) -> str:
    """A value that cannot break the header: one line, or one `{...}` block."""
    v = value.strip()
    if v.startswith("{"):
        inner = v[1:-1] if v.endswith("}") else v[1:]
        return "{" + inner.replace("}", ")") + "}"
    return _one_line(v)


def _one_line(s: str) -> str:
    return s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
