"""Random training patches from whole-scene planes (C, H, W)."""
from __future__ import annotations

import numpy as np
import torch


class PatchSampler:
    """Draws batches of random crops with flips and 90-degree turns, scenes chosen uniformly.

    Scenes smaller than the patch are reflect-padded up to it.
    """

    def __init__(self, planes: list[np.ndarray], patch: int, batch: int, seed: int = 0) -> None:
        if not planes:
            raise ValueError("no training scenes")
        self.planes = [self._pad_to(p, patch) for p in planes]
        self.patch = patch
        self.batch = batch
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _pad_to(plane: np.ndarray, patch: int) -> np.ndarray:
        pad_h, pad_w = max(0, patch - plane.shape[1]), max(0, patch - plane.shape[2])
        if pad_h or pad_w:
            plane = np.pad(plane, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
        return plane

    def _crop(self) -> np.ndarray:
        plane = self.planes[self.rng.integers(len(self.planes))]
        top = self.rng.integers(plane.shape[1] - self.patch + 1)
        left = self.rng.integers(plane.shape[2] - self.patch + 1)
        crop = plane[:, top : top + self.patch, left : left + self.patch]
        if self.rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        return np.rot90(crop, k=int(self.rng.integers(4)), axes=(1, 2))

    def next_batch(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.ascontiguousarray(self._crop()) for _ in range(self.batch)]))

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
