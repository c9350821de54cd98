"""MATLAB `.mat` scenes: v5 (scipy, loaded once) and v7.3 (HDF5, h5py, windowed, transposed)."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

from hsicodec.errors import InputError
from hsicodec.io.dtypes import native
from hsicodec.io.meta import SceneMeta
from hsicodec.io.scene import SceneReader, check_shape, first_line

NUMERIC_CLASSES = (
    "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"
)
WAVELENGTH_VARS = ("wavelength", "wavelengths")


def _byteorder(dtype: np.dtype) -> str:
    if dtype.byteorder in "<>":
        return dtype.byteorder
    return "<" if sys.byteorder == "little" else ">"


def _pick(path: Path, var: str | None, names: list[str], cubes: list[str]) -> str:
    """The variable to read: `var` if given, else the only 3-D numeric array."""
    if var is not None:
        if var not in names:
            listed = ", ".join(names) or "none"
            raise InputError(f"{path}: no variable {var!r} (variables: {listed})")
        return var
    if not cubes:
        raise InputError(f"{path}: no 3-D numeric array in the file")
    if len(cubes) > 1:
        raise InputError(
            f"{path}: several 3-D arrays ({', '.join(cubes)}); choose one with --var"
        )
    return cubes[0]


class MatReader(SceneReader):
    """A 3-D array of a MATLAB file, as (H, W, B)."""

    def __init__(self, path: Path, var: str | None = None) -> None:
        self.path = path
        self.storage_bytes = path.stat().st_size
        self._array: np.ndarray | None = None
        self._h5: h5py.File | None = None
        self._dataset: h5py.Dataset | None = None
        if h5py.is_hdf5(path):
            self._open_v73(var)
        else:
            self._open_v5(var)

    def _open_v5(self, var: str | None) -> None:
        import scipy.io  # here, not at the top: it takes 0.1 s to import and most scenes are not MATLAB v5

        path = self.path
        try:
            info = scipy.io.whosmat(path)
            names = [name for name, _, _ in info]
            cubes = [n for n, shape, cls in info if len(shape) == 3 and cls in NUMERIC_CLASSES]
            name = _pick(path, var, names, cubes)
            shape, cls = next((shape, cls) for n, shape, cls in info if n == name)
            if len(shape) != 3 or cls not in NUMERIC_CLASSES:
                raise InputError(f"{path}: variable {name!r} is not a 3-D numeric array ({cls})")
            extra = [  # a wavelength vector with one entry per band, if the file has one
                n for n, s, c in info
                if n.lower() in WAVELENGTH_VARS and c in NUMERIC_CLASSES
                and int(np.prod(s)) == max(s) == shape[-1]
            ][:1]
            loaded = scipy.io.loadmat(path, variable_names=[name, *extra])
        except InputError:
            raise
        except Exception as e:  # scipy raises many types on files it cannot parse
            raise InputError(f"{path}: not a readable MATLAB file ({first_line(e)})") from None
        array = loaded[name]
        self.shape = check_shape(array.shape, str(path))
        self.dtype = native(array.dtype, f"{path} variable {name!r}")
        self._array = array
        wavelengths = [float(x) for x in loaded[extra[0]].ravel()] if extra else None
        self.meta = SceneMeta(
            byteorder=_byteorder(array.dtype), wavelengths=wavelengths, source_format="mat"
        )

    def _open_v73(self, var: str | None) -> None:
        path = self.path
        self._h5 = h5py.File(path, "r")
        try:
            names = [n for n in self._h5 if not n.startswith("#")]
            cubes = [n for n in names if _is_cube(self._h5[n])]
            name = _pick(path, var, names, cubes)
            if not _is_cube(self._h5[name]):
                raise InputError(f"{path}: variable {name!r} is not a 3-D numeric array")
            ds = self._h5[name]
            b, w, h = ds.shape
            self.shape = check_shape((h, w, b), str(path))
            self.dtype = native(ds.dtype, f"{path} variable {name!r}")
        except BaseException:
            self.close()
            raise
        self._dataset = ds
        self.meta = SceneMeta(byteorder=_byteorder(ds.dtype), source_format="mat")

    def _read(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        rows, cols = slice(row0, row0 + height), slice(col0, col0 + width)
        if self._array is not None:
            block = self._array[rows, cols, :]
        elif self._dataset is not None:
            block = self._dataset[:, cols, rows].transpose(2, 1, 0)
        else:
            raise ValueError(f"{self.path}: reader is closed")
        return np.ascontiguousarray(block, dtype=self.dtype)

    def close(self) -> None:
        self._array = None
        self._dataset = None
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None


def _is_cube(obj: object) -> bool:
    """A 3-D numeric HDF5 dataset that MATLAB did not mark as logical or char."""
    if not isinstance(obj, h5py.Dataset) or obj.ndim != 3 or obj.dtype.kind not in "iuf":
        return False
    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    return cls not in ("logical", "char")
