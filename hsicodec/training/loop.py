"""The MSE training stage: Adam, rate-targeted lambda, resumable state, CSV log."""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hsicodec.nn.hific import HiFiC, HificConfig
from hsicodec.training.objective import RateTarget, band_mse, rate_distortion_loss
from hsicodec.training.patches import PatchSampler


@dataclass(frozen=True)
class StageConfig:
    iterations: int
    target_bpp: float
    patch: int = 96
    batch: int = 8
    lr: float = 5e-4
    final_lr: float = 1e-4
    aux_lr: float = 1e-3
    checkpoint_every: int = 250
    validate_every: int = 500
    seed: int = 0


def _learning_rate(stage: StageConfig, step: int) -> float:
    """Cosine decay from lr to final_lr."""
    t = min(1.0, step / max(1, stage.iterations))
    return stage.final_lr + 0.5 * (stage.lr - stage.final_lr) * (1 + math.cos(math.pi * t))


@torch.inference_mode()
def validate(model: HiFiC, planes: list[np.ndarray]) -> tuple[float, float]:
    """Mean PSNR (dB, component planes) and estimated bpp over whole validation scenes."""
    model.eval()
    psnrs, bpps = [], []
    for plane in planes:
        u = torch.from_numpy(plane)[None]
        h, w = u.shape[-2:]
        pad = (0, -w % HiFiC.STRIDE, 0, -h % HiFiC.STRIDE)
        out = model(torch.nn.functional.pad(u, pad, mode="reflect"))
        psnrs.append(-10 * math.log10(band_mse(u, out.x_hat[..., :h, :w]).item()))
        bpps.append(out.bits().item() / (h * w))
    model.train()
    return float(np.mean(psnrs)), float(np.mean(bpps))


def train_stage(model_config: HificConfig, stage: StageConfig, train_planes: list[np.ndarray],
                val_planes: list[np.ndarray], run_dir: Path,
                progress: Callable[[int, dict], None] | None = None) -> HiFiC:
    """Train (or resume from run_dir/state.pt) and return the model."""
    torch.manual_seed(stage.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = HiFiC(model_config)
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main_params, lr=stage.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=stage.aux_lr)
    sampler = PatchSampler(train_planes, stage.patch, stage.batch, stage.seed)
    target = RateTarget(stage.target_bpp)
    step = 0
    state_path = run_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        sampler.load_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
    log_path = run_dir / "log.csv"
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "seconds", "lr", "loss", "bpp", "psnr", "val_psnr", "val_bpp"])
        started = time.time()
        while step < stage.iterations:
            lr = _learning_rate(stage, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            u = sampler.next_batch()
            out = model(u)
            terms = rate_distortion_loss(u, out, target, model.se_l1())
            optimizer.zero_grad()
            terms.total.backward()
            torch.nn.utils.clip_grad_norm_(main_params, 1.0)
            optimizer.step()
            aux_optimizer.zero_grad()
            model.hyperprior.entropy_bottleneck.loss().backward()
            aux_optimizer.step()
            step += 1
            row = {"step": step, "loss": terms.total.item(), "bpp": terms.bpp.item(),
                   "psnr": -10 * math.log10(max(terms.mse.item(), 1e-12))}
            val = ("", "")
            if step % stage.validate_every == 0 or step == stage.iterations:
                val = validate(model, val_planes)
                row.update(val_psnr=val[0], val_bpp=val[1])
            log.writerow([step, round(time.time() - started, 1), lr, row["loss"], row["bpp"], row["psnr"], *val])
            if progress:
                progress(step, row)
            if step % stage.checkpoint_every == 0 or step == stage.iterations:
                log_file.flush()
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "aux_optimizer": aux_optimizer.state_dict(), "sampler": sampler.state(),
                            "torch_rng": torch.get_rng_state(), "step": step}, run_dir / "state.tmp")
                (run_dir / "state.tmp").replace(state_path)
    return model
