"""The two-stage training run: resumable state, CSV log, validation with the real coder, export.

Stage 1 trains E, P and G on the rate-distortion objective alone (beta = 0);
stage 2 continues from it with the conditional discriminator (one D step per
G step). A run lives in one folder: ``state.pt`` (everything needed to resume,
saved atomically every `checkpoint_every` steps), ``log.csv`` (one row per
step), ``summary.json`` and, at the end, the exported checkpoint with its
``manifest.json`` so that the folder is a models folder for $HSICODEC_MODELS.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from hsicodec.checkpoints import ModelEntry, export_checkpoint, register
from hsicodec.codec import pad_to_stride
from hsicodec.errors import InputError
from hsicodec.io.atomic import staged
from hsicodec.latent_coding import LatentCoder
from hsicodec.nn.hific import Discriminator, HiFiC
from hsicodec.training.config import TrainConfig
from hsicodec.training.distributed import Processes
from hsicodec.training.objective import Objective, band_mse, discriminator_loss
from hsicodec.training.patches import PatchSampler
from hsicodec.training.scenes import TrainingScene

LOG_FIELDS = ["step", "stage", "seconds", "lr", "total", "bpp", "psnr", "ssim", "angle", "perceptual", "gan",
              "d_loss", "val_psnr", "val_bpp"]
Progress = Callable[[int, dict], None]


@torch.inference_mode()
def validate(model: HiFiC, scenes: list[TrainingScene], crop: int) -> tuple[float, float]:
    """Mean PSNR (dB, normalised scene) and bpp of the coded latents, with the real range coder.

    Each scene's central crop (at most `crop` pixels a side) is encoded and decoded
    exactly as `compress`/`decompress` do; the rate counts the range-coded y and z words.
    """
    frozen = copy.deepcopy(model).cpu().eval()
    frozen.hyperprior.update_tables()
    coder = LatentCoder(frozen, torch.device("cpu"))
    psnrs, bpps = [], []
    for scene in scenes:
        _, height, width = scene.planes.shape
        h, w = min(height, crop), min(width, crop)
        top, left = (height - h) // 2, (width - w) // 2
        u = scene.planes[:, top : top + h, left : left + w]
        coded = coder.encode(pad_to_stride(u))
        u_hat = coder.decode(coded)[:, :h, :w]
        mse = band_mse(torch.from_numpy(u)[None], torch.from_numpy(u_hat)[None]).item()
        psnrs.append(-10 * math.log10(max(mse, 1e-12)))
        bpps.append(32 * (coded.y_words.size + coded.z_words.size) / (h * w))
    return float(np.mean(psnrs)), float(np.mean(bpps))


def _cosine(lr: float, final_lr: float, step: int, steps: int) -> float:
    t = min(1.0, step / max(1, steps))
    return final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * t))


class Trainer:
    """One training run of `config` in `run_dir`, on the scenes given."""

    def __init__(self, config: TrainConfig, train: list[TrainingScene], validation: list[TrainingScene],
                 run_dir: Path, processes: Processes = Processes()) -> None:
        if not train:
            raise InputError("no training scenes")
        self.config, self.validation, self.run_dir, self.processes = config, validation, run_dir, processes
        stage, device = config.training, processes.device
        self.front_end = config.front_end
        channels = train[0].planes.shape[0]
        torch.manual_seed(stage.seed)
        self.model = HiFiC(config.network(channels)).to(device)
        self.discriminator = Discriminator(self.model.config).to(device)
        self.aux_params = [p for n, p in self.model.named_parameters() if n.endswith(".quantiles")]
        self.main_params = [p for n, p in self.model.named_parameters() if not n.endswith(".quantiles")]
        self.optimizer = torch.optim.Adam(self.main_params, lr=stage.lr)
        self.aux_optimizer = torch.optim.Adam(self.aux_params, lr=stage.aux_lr)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=stage.discriminator_lr,
                                            betas=(0.5, 0.999))
        self.sampler = PatchSampler(train, stage.patch, stage.batch, stage.seed + processes.rank,
                                    stage.plane_groups)
        self.objective = Objective(config.rate, config.loss).to(device)
        self.step = 0
        self.iterations_per_second = 0.0
        self.stop_requested = False  # set (by a signal handler) to save and stop after the current step
        self.train_names = [s.name for s in train]
        self.initialised_from: str | None = None
        if processes.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.model_ddp = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
            self.d_ddp = DistributedDataParallel(self.discriminator, device_ids=ids)
        else:
            self.model_ddp, self.d_ddp = self.model, self.discriminator

    def initialise_from(self, model: HiFiC, name: str) -> None:
        """Start from another model's E, P and G (fine-tuning, e.g. a rung from a common stage-1 model).

        A model of another architecture of the same widths (HiFiC-opt for a HiFiC3D run, say)
        lends every tensor of the same name and shape: all but the ends its variant changes,
        which start fresh. Any other difference of network is refused.
        """
        ours, theirs = self.model.config.to_dict(), model.config.to_dict()
        differ = [k for k in ours if ours[k] != theirs[k]]
        if differ and differ != ["arch"]:
            raise InputError(f"model {name!r} has another network than this configuration ("
                             + ", ".join(f"{k} {theirs[k]} vs {ours[k]}" for k in differ) + ")")
        lent = dict(model.named_parameters())
        params = list(self.model.named_parameters())
        shared = [(p, lent[k]) for k, p in params if k in lent and lent[k].shape == p.shape]
        with torch.no_grad():
            for parameter, source in shared:
                parameter.copy_(source)
        partial = len(shared) < len(params)
        self.initialised_from = f"{name} ({len(shared)} of {len(params)} tensors, {theirs['arch']})" if partial else name

    # ------------------------------------------------------------------ state
    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.pt"

    def save_state(self) -> None:
        """Everything a resumed run needs, written atomically."""
        if not self.processes.main:
            return
        state = {"config": self.config.to_dict(), "step": self.step, "model": self.model.state_dict(),
                 "discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "aux_optimizer": self.aux_optimizer.state_dict(), "d_optimizer": self.d_optimizer.state_dict(),
                 "sampler": self.sampler.state(), "torch_rng": torch.get_rng_state(), "scenes": self.train_names,
                 "initialised_from": self.initialised_from}
        with staged() as staging:
            torch.save(state, staging.temp(self.state_path))

    def start(self, init: tuple[HiFiC, str] | None = None) -> None:
        """Resume the run saved in run_dir, else start from `init` (model, name) when given."""
        if self.state_path.exists():
            self.resume()
        elif init is not None:
            self.initialise_from(*init)

    def resume(self) -> None:
        """Continue from state.pt; the run's configuration must be the one it started with."""
        try:
            state = torch.load(self.state_path, map_location=self.processes.device, weights_only=True)
        except Exception as exc:  # a damaged state file must not surface as a traceback
            raise InputError(f"{self.state_path}: cannot resume from it ({str(exc).splitlines()[0]})") from None
        if state["config"] != self.config.to_dict():
            raise InputError(f"{self.run_dir} was started with another configuration; "
                             "train into a new folder or use the run's own configuration")
        self.model.load_state_dict(state["model"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.sampler.load_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step = state["step"]
        self.initialised_from = state["initialised_from"]
        if self.processes.rank > 0:  # only rank 0's sampler is saved; the others draw fresh patches
            self.sampler.rng = np.random.default_rng([self.config.training.seed, self.processes.rank, self.step])

    # ------------------------------------------------------------------ steps
    def _learning_rate(self) -> float:
        stage = self.config.training
        if self.step < stage.mse_iterations:
            return _cosine(stage.lr, stage.final_lr, self.step, stage.mse_iterations)
        return _cosine(stage.lr, stage.final_lr, self.step - stage.mse_iterations, stage.gan_iterations)

    @property
    def in_gan_stage(self) -> bool:
        return self.step >= self.config.training.mse_iterations

    def train_step(self) -> dict:
        """One G (and, in stage 2, one D) update; returns the logged figures."""
        lr = self._learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.sampler.next_batch().to(self.processes.device)
        out = self.model_ddp(batch.planes)
        gan = self.in_gan_stage
        fake_logits = None
        if gan:
            self.discriminator.requires_grad_(False)
            fake_logits = self.discriminator(out.x_hat, out.y_hat)
            self.discriminator.requires_grad_(True)
        terms = self.objective(batch, out, self.model.se_l1(), fake_logits)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(self.main_params, 1.0)
        self.optimizer.step()
        self.aux_optimizer.zero_grad(set_to_none=True)
        self.model.hyperprior.entropy_bottleneck.loss().backward()
        self.processes.average_gradients(self.aux_params)
        self.aux_optimizer.step()
        row = {"step": self.step + 1, "stage": "gan" if gan else "mse", "lr": lr, **terms.log()}
        row["psnr"] = -10 * math.log10(max(row.pop("mse"), 1e-12))
        if gan:
            row["d_loss"] = self._discriminator_step(batch.planes, out.x_hat.detach(), out.y_hat.detach())
        self.step += 1
        return row

    def _discriminator_step(self, x: torch.Tensor, x_hat: torch.Tensor, y_hat: torch.Tensor) -> float:
        """One D update on real and reconstructed patches, in a single forward pass."""
        logits = self.d_ddp(torch.cat([x, x_hat]), torch.cat([y_hat, y_hat]))
        real, fake = logits.chunk(2)
        loss = discriminator_loss(real, fake)
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.d_optimizer.step()
        return loss.item()

    # ------------------------------------------------------------------ run
    def timed_steps(self, steps: int) -> float:
        """Iterations per second of `steps` training steps after one warm-up step (for benchmarks)."""
        self.train_step()
        if self.processes.device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            self.train_step()
        if self.processes.device.type == "cuda":
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - started)

    @property
    def finished(self) -> bool:
        return self.step >= self.config.training.iterations

    def run(self, progress: Progress | None = None) -> HiFiC:
        """Train to the configured number of steps (from wherever the run stands), or until stop_requested."""
        stage = self.config.training
        log_path = self.run_dir / "log.csv"
        if self.processes.main:
            self._trim_log(log_path)
        started, first = time.time(), self.step
        with open(log_path if self.processes.main else "/dev/null", "a", newline="") as log_file:
            log = csv.DictWriter(log_file, LOG_FIELDS, extrasaction="ignore")
            if self.processes.main and log_file.tell() == 0:
                log.writeheader()
            while self.step < stage.iterations:
                row = self.train_step()
                last = self.step == stage.iterations
                if self.processes.main and (self.step % stage.validate_every == 0 or last
                                            or self.step == stage.mse_iterations):
                    row["val_psnr"], row["val_bpp"] = validate(self.model, self.validation, stage.validation_crop)
                row["seconds"] = round(time.time() - started, 2)
                log.writerow(row)
                if progress and self.processes.main:
                    progress(self.step, row)
                if self.step % stage.checkpoint_every == 0 or last or self.stop_requested:
                    log_file.flush()
                    self.save_state()
                if self.stop_requested:
                    break
        self.processes.barrier()
        self.iterations_per_second = (self.step - first) / max(time.time() - started, 1e-9)
        return self.model

    def _trim_log(self, log_path: Path) -> None:
        """Drop log rows beyond the saved step (written after the last checkpoint of a killed run)."""
        if not log_path.exists():
            return
        with log_path.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= self.step]
        with log_path.open("w", newline="") as fh:
            log = csv.DictWriter(fh, LOG_FIELDS, extrasaction="ignore")
            log.writeheader()
            log.writerows(rows)

    def export(self) -> ModelEntry:
        """Write the model (CDF tables baked) into the run folder and register it there."""
        config = self.config
        model = copy.deepcopy(self.model).cpu().eval()
        val_psnr, val_bpp = validate(model, self.validation, config.training.validation_crop)
        training = {"config": config.to_dict(), "iterations": self.step, "scenes": self.train_names,
                    "initialised_from": self.initialised_from,
                    "device": str(self.processes.device), "processes": self.processes.world}
        metrics = {"validation": {"psnr": val_psnr, "latent_bpp": val_bpp,
                                  "scenes": [s.name for s in self.validation]}}
        entry = export_checkpoint(model, self.run_dir / f"{config.name}.pt", config.name, config.front_end,
                                  config.rate.target_bpp, training, metrics)
        register(entry, self.run_dir)
        summary = {"model": entry.to_json(), "iterations_per_second": self.iterations_per_second}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return entry
