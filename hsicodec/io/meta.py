"""Scene metadata that travels with the pixels: `SceneMeta` and its JSON form."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from hsicodec.errors import ContainerError

SOURCE_FORMATS = ("envi", "gtiff", "mat")
INTERLEAVES = ("bsq", "bil", "bip")
MAX_DECIMALS = 12  # per-band numbers with more decimals than this are stored as a plain list
MAX_LEVEL = 2**50  # nor are those whose integer levels reach this (their differences stay exact in any JSON reader)


def names_from_template(template: str, wavelengths: list[float]) -> list[str]:
    """Every band's name from a template: "{i}" is the band's number (from 1), "{w}" its wavelength as Python
    writes a float (418.24, 400.0) and "{g}" in the shortest general form (418.24, 400)."""
    return [template.replace("{i}", str(i)).replace("{w}", repr(w)).replace("{g}", format(w, "g"))
            for i, w in enumerate(map(float, wavelengths), start=1)]


def _name_template(names: list[str], wavelengths: list[float] | None) -> str | None:
    """A template that writes exactly these names from the bands' numbers and wavelengths, or None. Tried:
    the first name with its wavelength's text (either form) and any one "1" (its number) made placeholders."""
    if not names or wavelengths is None or len(wavelengths) != len(names):
        return None
    first, w = names[0], float(wavelengths[0])
    with_wavelength = [first.replace(text, token, 1) for token, text in (("{w}", repr(w)), ("{g}", format(w, "g")))
                       if text in first]
    for base in with_wavelength + [first]:
        numbered = [base[:at] + "{i}" + base[at + 1:] for at in range(len(base)) if base[at] == "1"]
        for template in [*numbered, base]:
            if names_from_template(template, wavelengths) == list(names):
                return template
    return None


@dataclass(kw_only=True)
class SceneMeta:
    """Everything needed to write a scene back besides its pixels, shape and dtype."""

    byteorder: str = "<"
    interleave: str | None = None
    nodata: float | None = None
    wavelengths: list[float] | None = None
    wavelength_units: str | None = None
    fwhm: list[float] | None = None
    bbl: list[float] | None = None
    band_names: list[str] | None = None
    description: str | None = None
    envi: dict[str, str] = field(default_factory=dict)
    crs_wkt: str | None = None
    transform: list[float] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    band_tags: list[dict[str, str]] = field(default_factory=list)
    source_format: str

    def to_json(self, compact: bool = True) -> dict:
        """Plain JSON types only; non-finite floats become the strings 'nan', 'inf', '-inf'.

        Fields that are None or empty are left out (`from_json` gives them their
        defaults): on a small scene every byte of metadata counts in the rate. So,
        when `compact` (the stored form), per-band numbers that are short decimals
        are in difference form and band names that follow from the bands' numbers
        and wavelengths are a template; otherwise (for people and other programs)
        every list is written out.
        """
        per_band = _enc_per_band if compact else _enc_list
        full = {
            "byteorder": self.byteorder,
            "interleave": self.interleave,
            "nodata": None if self.nodata is None else _enc(self.nodata),
            "wavelengths": per_band(self.wavelengths),
            "wavelength_units": self.wavelength_units,
            "fwhm": per_band(self.fwhm),
            "bbl": per_band(self.bbl),
            "band_names": self._names_json() if compact else self.band_names,
            "description": self.description,
            "envi": dict(self.envi),
            "crs_wkt": self.crs_wkt,
            "transform": _enc_list(self.transform),
            "tags": dict(self.tags),
            "band_tags": [dict(t) for t in self.band_tags],
            "source_format": self.source_format,
        }
        return {k: v for k, v in full.items() if k == "source_format" or v not in (None, {}, [])}

    def _names_json(self) -> list[str] | dict[str, str] | None:
        """The band names, or {"template": t} when `names_from_template(t, wavelengths)` writes them exactly:
        names such as ENVI's defaults are much of a small file's metadata as a list."""
        if self.band_names is None:
            return None
        template = _name_template(list(self.band_names), self.wavelengths)
        return list(self.band_names) if template is None else {"template": template}

    def windowed(self, row0: int, col0: int) -> "SceneMeta":
        """The metadata of the sub-scene whose top-left pixel is (row0, col0) of this one."""
        envi = dict(self.envi)
        if "map info" in envi:
            envi["map info"] = _shift_map_info(envi["map info"], row0, col0, self.transform)
        transform = self.transform
        if transform is not None:
            x0, a, b, y0, d, e = transform
            transform = [x0 + col0 * a + row0 * b, a, b, y0 + col0 * d + row0 * e, d, e]
        return replace(self, envi=envi, transform=transform)

    def check_bands(self, bands: int) -> None:
        """ContainerError unless every per-band list has `bands` entries (and the transform 6)."""
        per_band = {
            "wavelengths": self.wavelengths,
            "fwhm": self.fwhm,
            "bbl": self.bbl,
            "band_names": self.band_names,
            "band_tags": self.band_tags or None,
        }
        for name, values in per_band.items():
            if values is not None and len(values) != bands:
                raise ContainerError(
                    f"scene metadata has {len(values)} {name} for {bands} bands"
                )
        if self.transform is not None and len(self.transform) != 6:
            raise ContainerError("scene metadata 'transform' must have 6 numbers")

    @classmethod
    def from_json(cls, d: dict) -> SceneMeta:
        """Rebuild from `to_json` output, checking every type; ContainerError if malformed.

        Missing keys take their defaults (except `source_format`); unknown keys are ignored.
        """
        if not isinstance(d, dict):
            raise ContainerError("scene metadata is not a JSON object")
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "source_format" not in d:
            raise ContainerError("scene metadata lacks 'source_format'")
        template = d.get("band_names") if isinstance(d.get("band_names"), dict) else None
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if not (key == "band_names" and template is not None):
                kw[key] = _PARSERS[key](key, value)
        if template is not None:
            if set(template) != {"template"} or not isinstance(template["template"], str):
                raise _bad("band_names", 'a list of strings or {"template": string}')
            if kw.get("wavelengths") is None:
                raise ContainerError("scene metadata writes band names from wavelengths it does not have")
            kw["band_names"] = names_from_template(template["template"], kw["wavelengths"])
        if kw.get("transform") is not None and len(kw["transform"]) != 6:
            raise ContainerError("scene metadata 'transform' must have 6 numbers")
        return cls(**kw)


def _enc(x: float) -> float | str:
    return float(x) if math.isfinite(x) else str(float(x))


def _enc_list(xs: list[float] | None) -> list[float | str] | None:
    return None if xs is None else [_enc(x) for x in xs]


def _enc_per_band(xs: list[float] | None) -> list[float | str] | dict | None:
    """A per-band list in difference form when every value is a short decimal, else as `_enc_list`.

    Wavelengths and band widths rise smoothly band by band: as integers in units of
    10^-decimals their second differences are small and repeat, and deflate to about
    a third of the plain list (1.0 kB less metadata on a 224-band EnMAP tile).
    """
    exact = _decimal_levels(xs)
    if exact is None:
        return _enc_list(xs)
    decimals, levels = exact
    firsts = [b - a for a, b in zip([0, *levels], levels)]
    seconds = [b - a for a, b in zip([0, *firsts], firsts)]
    return {"decimals": decimals, "second_differences": seconds}


def _decimal_levels(xs: list[float] | None) -> tuple[int, list[int]] | None:
    """(d, levels) such that each value is exactly levels[i] / 10^d, with the fewest decimals d that
    write every value as its shortest repr; None when `xs` is empty, or a value is not finite, is
    -0.0, needs more than MAX_DECIMALS decimals or a level of MAX_LEVEL or more."""
    if not xs:
        return None
    values = [float(x) for x in xs]
    if not all(math.isfinite(x) and not (x == 0 and math.copysign(1.0, x) < 0) for x in values):
        return None
    written = [Decimal(repr(x)) for x in values]
    decimals = max(0, *(-d.normalize().as_tuple().exponent for d in written))
    if decimals > MAX_DECIMALS:
        return None
    levels = [int(d.scaleb(decimals)) for d in written]
    if any(abs(level) >= MAX_LEVEL or level / 10**decimals != x for level, x in zip(levels, values)):
        return None
    return decimals, levels


def _bad(key: str, what: str) -> ContainerError:
    return ContainerError(f"scene metadata '{key}' must be {what}")


def _num(key: str, v: Any) -> float:
    if isinstance(v, bool):
        raise _bad(key, "a number")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    raise _bad(key, "a number")


def _opt_num(key: str, v: Any) -> float | None:
    return None if v is None else _num(key, v)


def _opt_nums(key: str, v: Any) -> list[float] | None:
    if v is None:
        return None
    if not isinstance(v, list):
        raise _bad(key, "a list of numbers")
    return [_num(key, x) for x in v]


def _opt_per_band(key: str, v: Any) -> list[float] | None:
    """A per-band list, plain or in the difference form of `_enc_per_band`."""
    if not isinstance(v, dict):
        return _opt_nums(key, v)
    decimals, seconds = v.get("decimals"), v.get("second_differences")
    if (set(v) != {"decimals", "second_differences"} or not _is_int(decimals)
            or not 0 <= decimals <= MAX_DECIMALS or not isinstance(seconds, list)
            or not all(_is_int(d) for d in seconds)):
        raise _bad(key, "a list of numbers or {decimals, second_differences} of integers")
    levels = list(itertools.accumulate(itertools.accumulate(seconds)))
    if any(abs(level) >= MAX_LEVEL for level in levels):
        raise _bad(key, f"made of levels below 2^{MAX_LEVEL.bit_length() - 1}")
    return [level / 10**decimals for level in levels]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt_str(key: str, v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise _bad(key, "a string")
    return v


def _opt_strs(key: str, v: Any) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _bad(key, "a list of strings")
    return list(v)


def _str_dict(key: str, v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(
        isinstance(k, str) and isinstance(x, str) for k, x in v.items()
    ):
        raise _bad(key, "an object of strings")
    return dict(v)


def _str_dicts(key: str, v: Any) -> list[dict[str, str]]:
    if not isinstance(v, list):
        raise _bad(key, "a list of objects of strings")
    return [_str_dict(key, x) for x in v]


def _choice(options: tuple[str, ...], optional: bool):
    def parse(key: str, v: Any) -> str | None:
        if v is None and optional:
            return None
        if v not in options:
            raise _bad(key, "one of " + ", ".join(options))
        return v

    return parse


_PARSERS = {
    "byteorder": _choice(("<", ">"), optional=False),
    "interleave": _choice(INTERLEAVES, optional=True),
    "nodata": _opt_num,
    "wavelengths": _opt_per_band,
    "wavelength_units": _opt_str,
    "fwhm": _opt_per_band,
    "bbl": _opt_per_band,
    "band_names": _opt_strs,
    "description": _opt_str,
    "envi": _str_dict,
    "crs_wkt": _opt_str,
    "transform": _opt_nums,
    "tags": _str_dict,
    "band_tags": _str_dicts,
    "source_format": _choice(SOURCE_FORMATS, optional=False),
}


def _shift_map_info(value: str, row0: int, col0: int, transform: list[float] | None) -> str:
    """ENVI map info for a window whose top-left pixel is (row0, col0).

    The reference pixel keeps its index; its map coordinates become those of the
    pixel it now names, from the GDAL geotransform (rotations included). Without
    a transform the reference pixel index is moved instead.
    """
    items = [item.strip() for item in value.strip().strip("{}").split(",")]
    try:
        ref_x, ref_y = float(items[1]), float(items[2])
        if transform is None:
            items[1], items[2] = f"{ref_x - col0:.3f}", f"{ref_y - row0:.3f}"
        else:
            x0, a, b, y0, d, e = transform
            col, row = ref_x - 1 + col0, ref_y - 1 + row0
            items[3], items[4] = f"{x0 + col * a + row * b:.6f}", f"{y0 + col * d + row * e:.6f}"
    except (IndexError, ValueError):
        return value
    return "{" + ", ".join(items) + "}"
