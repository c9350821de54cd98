"""The scripts that probe what limits quality: scripts/widen_latent.py and scripts/single_scene_fit.py."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import torch

from cli_helpers import REPO
from conftest import DATA, scene_path, scenes
from hsicodec.checkpoints import find_model, load_model
from hsicodec.training.scenes import load_scene

sys.path.insert(0, str(REPO / "scripts"))
from widen_latent import widened  # noqa: E402

ABU_URBAN = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_urban_4"))  # 100x100x205
FEATHERS = DATA / "cave" / "feathers.tif"  # 256x256x31
MODEL = "hificse-klt16-0.4"


def abu_urban_planes() -> torch.Tensor:
    planes = load_scene(ABU_URBAN, "klt", 16).planes[:, :96, :96]
    return torch.from_numpy(planes.copy())[None]


def test_widened_model_codes_like_the_original_with_each_latent_channel_repeated() -> None:
    model = load_model(find_model(MODEL)).eval()
    wide = widened(model, 3, noise=0.0).eval()
    x = abu_urban_planes()
    with torch.inference_mode():
        y, y_wide = model.encoder(x), wide.encoder(x)
        assert y_wide.shape[1] == 3 * y.shape[1]
        assert torch.equal(y_wide, y.repeat(1, 3, 1, 1))
        assert torch.allclose(wide.generator(torch.round(y_wide)), model.generator(torch.round(y)), atol=1e-5)
        means, scales = model.hyperprior.synthesise(model.hyperprior.analyse(y), y.shape[-2:])
        wide_means, wide_scales = wide.hyperprior.synthesise(wide.hyperprior.analyse(y_wide), y.shape[-2:])
        assert torch.allclose(wide_means, means.repeat(1, 3, 1, 1), atol=1e-5)
        assert torch.allclose(wide_scales, scales.repeat(1, 3, 1, 1), atol=1e-5)
    with torch.inference_mode():  # with noise, the copies of a channel differ, a little
        y_noisy = widened(model, 3).eval().encoder(x)
    copies = y_noisy.reshape(1, 3, y.shape[1], *y.shape[2:])
    assert 0 < (copies[:, 1] - copies[:, 0]).abs().max() < 0.1 * y.abs().max()


def test_single_scene_fit_reports_plane_errors_psnr_and_rate_before_and_after() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "single_scene_fit.py"), MODEL, str(FEATHERS),
                           "--iterations", "3"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{FEATHERS.name}, {MODEL}: plane variance / first's [1. ")
    for line, label in zip(lines[1:], ("before", "after")):
        match = re.fullmatch(label + r" +error / variance \[([^]]+)\]  PSNR (\d+\.\d+) dB at (\d+\.\d+) bpp .*", line)
        assert match, line
        ratios = [float(v) for v in match.group(1).split()]
        assert len(ratios) == 6 and ratios[0] < 0.5  # the leading plane is coded
        assert 15 < float(match.group(2)) < 60 and 0 < float(match.group(3)) < 16
