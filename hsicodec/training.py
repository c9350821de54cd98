"""Training P on scenes: random crops of random KLT planes, each at a random quantisation step D.

Only P learns (E and G are the fixed wavelet): a crop's code at step D is fixed
data, and the loss is the bits P gives it after the same crop of the previous
KLT plane (`WaveletPyramid.training_loss`). D is drawn log-uniformly over
STEP_RANGE, so one model serves every rate. `Trainer` keeps everything a run
needs to resume after an interruption in one state file.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import open_scene
from hsicodec.klt import SpectralStats
from hsicodec.nn.pyramid import WaveletPyramid

STEP_RANGE = (1e-3, 0.2)
"""Steps D trained on (normalised planes): from about 4 bpp to about 0.1 bpp on CAVE scenes."""


def whole_scene(path: Path, var: str | None = None) -> tuple[np.ndarray, np.ndarray | None, FrontEnd]:
    """A scene's cube (H, W, B), its nodata mask (or None) and the front-end `compress` fits to it."""
    from hsicodec.codec import nodata_mask

    with open_scene(path, var) as reader:
        cube = reader.read(0, 0, *reader.shape[:2])
        mask = nodata_mask(cube, reader.meta.nodata)
    stats = SpectralStats(cube.shape[2])
    stats.update(cube.reshape(-1, cube.shape[2]), None if mask is None else ~mask.reshape(-1, cube.shape[2]))
    return cube, mask, fit_front_end(stats)


def klt_planes(path: Path, var: str | None = None, components: int | None = None) -> np.ndarray:
    """The first `components` (default: all) KLT planes of a scene, as `compress` makes them (nodata
    samples filled with their band's mean)."""
    cube, mask, front = whole_scene(path, var)
    return front.planes(cube, mask)[:components]


def crops(scenes: list[np.ndarray], batch: int, size: int,
          rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crops of random planes (N, 1, size, size), the same crops of the plane before each (zeros for
    a first plane), and the step D each is coded at (log-uniform over STEP_RANGE)."""
    chosen, previous = [], []
    for _ in range(batch):
        scene = scenes[rng.integers(len(scenes))]
        k = rng.integers(scene.shape[0])
        r, c = rng.integers(scene.shape[1] - size + 1), rng.integers(scene.shape[2] - size + 1)
        flip = (slice(None, None, rng.choice((-1, 1))), slice(None, None, rng.choice((-1, 1))))
        chosen.append(scene[k, r:r + size, c:c + size][flip])
        previous.append(scene[k - 1, r:r + size, c:c + size][flip] if k else np.zeros((size, size), np.float32))
    steps = np.exp(rng.uniform(*np.log(STEP_RANGE), size=batch)).astype(np.float32)
    return (torch.from_numpy(np.stack(chosen)[:, None].copy()), torch.from_numpy(np.stack(previous)[:, None].copy()),
            torch.from_numpy(steps)[:, None, None, None])


class Trainer:
    """Adam on P's bits per pixel, on `device` (crops are cut on the CPU); `save` and `Trainer.resume` carry
    the model, the optimiser, the random state and the CPU-seconds spent."""

    def __init__(self, model: WaveletPyramid, lr: float, seed: int = 0, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).train()
        self.optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        self.rng = np.random.default_rng(seed)
        self.steps, self.cpu_seconds = 0, 0.0

    def step(self, scenes: list[np.ndarray], batch: int, size: int) -> float:
        """One optimiser step on a fresh batch of crops; returns its bits per pixel."""
        started = time.process_time()
        loss = self.model.training_loss(*(t.to(self.device) for t in crops(scenes, batch, size, self.rng)))
        self.optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimiser.step()
        self.steps += 1
        self.cpu_seconds += time.process_time() - started
        return float(loss.detach())

    def save(self, path: Path) -> None:
        """Write the state atomically (a temporary file renamed), so an interrupted save loses nothing."""
        temporary = path.with_suffix(".tmp")
        torch.save({"model": self.model.state_dict(), "config": self.model.config(),
                    "optimiser": self.optimiser.state_dict(), "rng": self.rng.bit_generator.state,
                    "steps": self.steps, "cpu_seconds": self.cpu_seconds}, temporary)
        temporary.replace(path)

    @classmethod
    def resume(cls, path: Path, lr: float, device: str = "cpu") -> Trainer:
        """The trainer a state file holds, continuing at learning rate `lr` on `device`."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = WaveletPyramid(**state["config"])
        model.load_state_dict(state["model"])
        trainer = cls(model, lr, device=device)
        trainer.optimiser.load_state_dict(state["optimiser"])
        for group in trainer.optimiser.param_groups:
            group["lr"] = lr
        trainer.rng.bit_generator.state = state["rng"]
        trainer.steps, trainer.cpu_seconds = state["steps"], state["cpu_seconds"]
        return trainer
