"""compressai's entropy models, imported without compressai's package ``__init__``.

That ``__init__`` imports compressai's datasets, transforms and model zoo,
which pull in torchvision (whose PyPI wheel cannot be imported against the CPU
build of torch), torch-geometric and pandas, and take about 2.5 s of every
command's start. hsicodec needs only ``compressai.entropy_models`` (with the
``ops``, ``_CXX`` and ``ans`` extensions it loads), so unless compressai is
already imported, the package is a bare module of the same path that offers
what those need of it: the name of the default entropy coder, "ans" (the
constriction range coder codes hsicodec's files; compressai's own coder is
never called).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_CODERS = ["ans"]


def _bare_package() -> types.ModuleType:
    """compressai without its ``__init__``: its submodules import from it only the entropy-coder names."""
    spec = importlib.util.find_spec("compressai")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("compressai is not installed (pip install --no-deps compressai==1.2.8)")
    package = types.ModuleType("compressai")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.available_entropy_coders = lambda: list(_CODERS)
    package.get_entropy_coder = lambda: _CODERS[0]
    return package


if "compressai" not in sys.modules:
    sys.modules["compressai"] = _bare_package()
_entropy_models = importlib.import_module("compressai.entropy_models")
EntropyBottleneck = _entropy_models.EntropyBottleneck
GaussianConditional = _entropy_models.GaussianConditional
