"""Random training patches from whole-scene planes, with each patch's spectral geometry."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hsicodec.container import PlaneGroup
from hsicodec.frontend import SpectralGeometry
from hsicodec.plane_groups import LAYOUT_GROUPS, layout, network_input
from hsicodec.training.scenes import TrainingScene


@dataclass
class Batch:
    """Planes (N, C, P, P) and, per patch, its SpectralGeometry (see hsicodec.frontend)."""

    planes: torch.Tensor
    offset: torch.Tensor  # (N, C)
    scale: torch.Tensor  # (N,)
    residual: torch.Tensor  # (N,)
    mixing: torch.Tensor | None  # (N, C, C); None for the bands front-end

    def to(self, device: torch.device) -> "Batch":
        mixing = None if self.mixing is None else self.mixing.to(device)
        return Batch(*(t.to(device) for t in (self.planes, self.offset, self.scale, self.residual)), mixing)


def further_groups(scene: TrainingScene) -> tuple[PlaneGroup, ...]:
    """The further plane groups `compress -r` codes for the whole scene at gain 1, with their gains
    (`plane_groups.layout` of its largest layout, group 0 left out)."""
    rms = np.sqrt(np.square(scene.planes, dtype=np.float64).mean(axis=(1, 2)))
    return layout(max(LAYOUT_GROUPS), scene.planes.shape[0], rms, 1.0, 1.0)[1:]


def group_geometry(geometry: SpectralGeometry, group: PlaneGroup) -> SpectralGeometry:
    """The geometry of a group's network input: the scene's spectra built from the group's planes
    (gain undone) and the mean alone, so SSIM and the angle weigh the group as it counts in the scene."""
    mixing = np.zeros_like(geometry.mixing)
    rows = slice(group.first, group.first + group.planes)
    mixing[:, : group.planes] = geometry.mixing[:, rows] / np.float32(group.plane_gain)
    return SpectralGeometry(geometry.offset, geometry.scale, geometry.residual, mixing)


class PatchSampler:
    """Draws batches of random crops with flips and 90-degree turns, scenes chosen uniformly.

    Scenes smaller than the patch are reflect-padded up to it. With
    `group_fraction`, that share of the patches (``klt`` only) is drawn as the
    input of a further plane group, as `compress -r` feeds E (`plane_groups`):
    two weaker planes, brought to the leading plane's amplitude, the others
    zero. The state (the random generator) is saved with a run, so a resumed
    run draws the same patches.
    """

    def __init__(self, scenes: list[TrainingScene], patch: int, batch: int, seed: int = 0,
                 group_fraction: float = 0.0) -> None:
        if not scenes:
            raise ValueError("no training scenes")
        self.scenes = scenes
        self.planes = [self._pad_to(s.planes, patch) for s in scenes]
        self.patch = patch
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self.group_fraction = group_fraction
        self.groups = [further_groups(s) if group_fraction > 0 and s.geometry.mixing is not None else ()
                       for s in scenes]

    @staticmethod
    def _pad_to(plane: np.ndarray, patch: int) -> np.ndarray:
        pad_h, pad_w = max(0, patch - plane.shape[1]), max(0, patch - plane.shape[2])
        if pad_h or pad_w:
            plane = np.pad(plane, ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric")
        return plane

    def _crop(self, index: int) -> np.ndarray:
        plane = self.planes[index]
        top = self.rng.integers(plane.shape[1] - self.patch + 1)
        left = self.rng.integers(plane.shape[2] - self.patch + 1)
        crop = plane[:, top : top + self.patch, left : left + self.patch]
        if self.rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        return np.ascontiguousarray(np.rot90(crop, k=int(self.rng.integers(4)), axes=(1, 2)))

    def _draw(self, index: int) -> tuple[np.ndarray, SpectralGeometry]:
        """A patch of scene `index` and its geometry: its planes or, at `group_fraction`, a group's input."""
        crop, geometry = self._crop(index), self.scenes[index].geometry
        groups = self.groups[index]
        if groups and self.rng.random() < self.group_fraction:
            group = groups[int(self.rng.integers(len(groups)))]
            return network_input(crop, group), group_geometry(geometry, group)
        return crop, geometry

    def next_batch(self) -> Batch:
        picks = self.rng.integers(len(self.scenes), size=self.batch)
        drawn = [self._draw(i) for i in picks]
        geometry = [g for _, g in drawn]
        return Batch(torch.from_numpy(np.stack([planes for planes, _ in drawn])),
                     torch.from_numpy(np.stack([g.offset for g in geometry]).astype(np.float32)),
                     torch.tensor([g.scale for g in geometry], dtype=torch.float32),
                     torch.tensor([g.residual for g in geometry], dtype=torch.float32),
                     None if geometry[0].mixing is None else torch.from_numpy(np.stack([g.mixing for g in geometry])))

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
