"""compressai's entropy models, imported without torchvision.

compressai's package ``__init__`` imports ``torchvision.transforms`` for its
dataset registry, which hsicodec never uses. The PyPI torchvision wheel cannot
be imported against the CPU build of torch, so when the real torchvision is
not importable an empty placeholder module is registered for the duration of
the import only, then removed again.
"""
from __future__ import annotations

import sys
import types


def _import_entropy_models() -> tuple[type, type]:
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        pass
    else:
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional

        return EntropyBottleneck, GaussianConditional

    names = ("torchvision", "torchvision.transforms")
    saved = {name: sys.modules.get(name) for name in names}
    placeholder = types.ModuleType("torchvision")
    placeholder.transforms = types.ModuleType("torchvision.transforms")
    sys.modules.update({"torchvision": placeholder, "torchvision.transforms": placeholder.transforms})
    try:
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return EntropyBottleneck, GaussianConditional


EntropyBottleneck, GaussianConditional = _import_entropy_models()
