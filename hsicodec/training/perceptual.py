"""LPIPS-style perceptual loss term for training, with user-supplied weights.

The training loss can add an LPIPS distance (Zhang et al. 2018, "The
Unreasonable Effectiveness of Deep Features as a Perceptual Metric") between
the scene and its reconstruction, as HiFiC does. Nothing can be downloaded
when hsicodec runs, so the network architecture is defined here and its
weights come from a state-dict file the user supplies (`load_lpips`).

The trunk is AlexNet-shaped and its layers sit at the indices of torchvision's
``alexnet().features``, so its weights keep their names (``features.0.weight``
... ``features.10.bias``); the LPIPS v0.1 linear heads ``lin{i}.model.1.weight``
become ``lins.{i}.weight``. A converted file is written with `save_lpips`.

Hyperspectral scenes are shown to the network as a false-colour rendering of
three bands (`rgb_planes`): the metric is perceptual only in that sense.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hsicodec.errors import ModelError

MIN_SIDE = 32  # smallest height/width the trunk's strides and two max-pools accept (31, rounded up)
TAPPED = (1, 4, 7, 9, 11)  # indices in `features` of the ReLUs whose outputs are compared
CHANNELS = (64, 192, 384, 256, 256)
EPS = 1e-10


def _trunk() -> nn.Sequential:
    """AlexNet's convolutional layers up to the fifth ReLU, at torchvision's indices."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
    )


def _unit_normalise(x: torch.Tensor) -> torch.Tensor:
    """x / (||x||_2 over channels + 1e-10).

    `vector_norm` has the same value as sqrt(sum x^2) but a zero gradient where
    the norm is zero (a ReLU output of all zeros), where sqrt's would be NaN.
    """
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + EPS)


class LpipsNetwork(nn.Module):
    """LPIPS distance with an AlexNet trunk and per-layer linear heads.

    `forward(x, y)` takes two (N, 3, H, W) images scaled to [-1, 1] and returns
    (N,) distances. Images with H or W below 32 are bilinearly upsampled to at
    least 32 along that axis (reflect padding cannot grow a side by more than
    its length, upsampling works for any size).

    The linear heads start non-negative, as trained LPIPS heads are, so an
    untrained network is still a distance that grows with the difference.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _trunk()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        for lin in self.lins:
            nn.init.uniform_(lin.weight, 0.0, 2.0 / lin.in_channels)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised outputs of the five tapped ReLUs."""
        h, w = x.shape[-2:]
        if h < MIN_SIDE or w < MIN_SIDE:
            x = F.interpolate(x, size=(max(h, MIN_SIDE), max(w, MIN_SIDE)), mode="bilinear", align_corners=False)
        x = (x - self.shift) / self.scale
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPPED:
                taps.append(_unit_normalise(x))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) LPIPS distances between images x and y, both (N, 3, H, W) in [-1, 1]."""
        distance = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self._taps(x), self._taps(y)):
            distance = distance + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return distance


def save_lpips(network: LpipsNetwork, path: Path) -> None:
    """Write the network's state dict to `path` (loadable by `load_lpips`)."""
    torch.save(network.state_dict(), path)


def _read_state_dict(path: Path) -> dict[str, object]:
    """The contents of a state-dict file, loaded with weights_only=True."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"LPIPS weights {path}: no such file") from None
    except OSError as exc:
        raise ModelError(f"LPIPS weights {path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc).upper():
            raise ModelError(f"LPIPS weights {path}: holds Python objects besides tensors; refused "
                             "(loaded with weights_only=True)") from None
        raise ModelError(f"LPIPS weights {path}: not a torch state-dict file") from None
    except Exception as exc:  # torch.load fails on corrupt files with many exception types
        raise ModelError(f"LPIPS weights {path}: not a torch state-dict file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelError(f"LPIPS weights {path}: holds a {type(state).__name__}, not a state dict")
    return state


def _mismatch(expected: dict[str, torch.Tensor], state: dict[str, object]) -> str:
    """Short account of how `state` differs from the state dict `expected`."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return f"{len(missing)} missing and {len(unexpected)} unexpected keys (e.g. {(missing + unexpected)[0]!r})"
    wrong = [k for k, v in expected.items()
             if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape]
    return f"wrong shape or type for {len(wrong)} of {len(expected)} tensors (e.g. {wrong[0]!r})" if wrong else ""


def load_lpips(path: Path) -> LpipsNetwork:
    """An `LpipsNetwork` with the weights of the state-dict file `path`, frozen and in eval mode."""
    state = _read_state_dict(path)
    network = LpipsNetwork()
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        reason = _mismatch(network.state_dict(), state) or str(exc).strip().splitlines()[0]
        raise ModelError(f"LPIPS weights {path}: {reason}") from None
    return network.eval().requires_grad_(False)


def rgb_planes(v: torch.Tensor) -> torch.Tensor:
    """False-colour rendering of a (N, C, H, W) scene in about [0, 1] as (N, 3, H, W) in [-1, 1].

    Red, green and blue are three bands evenly spaced over C, from the last
    (longest wavelength) to the first; with C = 1 or 2 bands repeat. Values are
    mapped by 2v - 1 and not clipped, so gradients pass everywhere.
    """
    index = torch.linspace(v.shape[1] - 1, 0, 3, device=v.device).round().long()
    return 2.0 * v.index_select(1, index) - 1.0


class PerceptualLoss(nn.Module):
    """Mean LPIPS distance between false-colour renderings of a scene and its reconstruction."""

    def __init__(self, network: LpipsNetwork) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)

    @classmethod
    def from_file(cls, path: Path) -> PerceptualLoss:
        """The loss with the LPIPS weights of the state-dict file `path`."""
        return cls(load_lpips(path))

    def forward(self, v: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
        """Scalar mean distance over the batch; differentiable in v_hat, not in the network's weights."""
        return self.network(rgb_planes(v), rgb_planes(v_hat)).mean()
