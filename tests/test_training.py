"""Training on real scenes: the objective's terms, both stages, the rate target, resume, export, DDP."""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from skimage.metrics import structural_similarity as skimage_ssim

from cli_helpers import REPO, assert_one_line_error, invoke, json_lines, run_process
from conftest import DATA, scene_path, scenes
from hsicodec.checkpoints import find_model, load_model, read_manifest
from hsicodec.codec import scene_statistics
from hsicodec.container import Normalisation, tile_rects
from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import open_scene
from hsicodec.latent_coding import LatentCoder
from hsicodec.plane_groups import network_input
from hsicodec.training.config import load_config, parse_config
from hsicodec.training.loop import Trainer, validate
from hsicodec.training.objective import spectral_angle, spectral_coordinates, structural_similarity
from hsicodec.training.patches import PatchSampler, further_groups
from hsicodec.training.perceptual import LpipsNetwork, save_lpips
from hsicodec.training.scenes import load_scene, load_scenes

CAVE = [DATA / "cave" / f"{name}.tif" for name in ("balloons", "beads", "cd")]
PAVIA = scene_path(next(s for s in scenes("eval") if s["id"] == "paviaU_sub50"))


def tiny_config(**sections: dict) -> dict:
    """A configuration that trains in seconds: tiny widths, 32-pixel patches, batch 4."""
    config = {"name": "tiny", "front_end": "klt", "components": 8, "model": {"arch": "hificse", "size": "tiny"},
              "rate": {"target_bpp": 0.5},
              "training": {"mse_iterations": 4, "gan_iterations": 0, "patch": 32, "batch": 4, "lr": 1e-3,
                           "final_lr": 1e-3, "checkpoint_every": 2, "validate_every": 1000,
                           "validation_crop": 64}}
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def write_toml(path: Path, config: dict) -> Path:
    """A TOML file of a (two-level) configuration dict."""
    def value(v: object) -> str:
        return f'"{v}"' if isinstance(v, (str, Path)) else str(v).lower() if isinstance(v, bool) else repr(v)
    lines = [f"{k} = {value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section, body in config.items():
        if isinstance(body, dict):
            lines += [f"[{section}]", *(f"{k} = {value(v)}" for k, v in body.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cave_klt():
    return load_scenes(CAVE, "klt", 8)


@pytest.fixture(scope="module")
def cave_bands():
    return load_scenes(CAVE, "bands", 0)


def trainer(config: dict, scenes, run: Path) -> Trainer:
    torch.set_num_threads(1)
    return Trainer(parse_config(config, run), scenes, scenes[:1], run)


# ---------------------------------------------------------------------------- objective terms

def test_spectral_angle_from_planes_equals_the_angle_between_reconstructed_spectra() -> None:
    for front_end in ("klt", "bands"):
        scene = load_scene(PAVIA, front_end, 16)
        u = scene.planes[:, :8, :8]
        u_hat = u + np.random.default_rng(0).normal(0, 0.01, u.shape).astype(np.float32)
        batch = PatchSampler([scene], 32, 1).next_batch()  # carries the scene's geometry
        tu, tu_hat = torch.from_numpy(u)[None], torch.from_numpy(u_hat)[None]
        ours = spectral_angle(spectral_coordinates(tu, batch), spectral_coordinates(tu_hat, batch), batch.residual)
        # the same spectra through the codec's own decoder path (normalised units: lo=0, hi=1)
        front = _unit_front_end(PAVIA, front_end)
        x, x_hat = front.spectra(u), front.spectra(u_hat)
        cosine = (x * x_hat).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(x_hat, axis=-1)
        expected = np.arccos(np.clip(cosine, -1, 1)).mean()
        assert abs(ours.item() - expected) < 1e-4, front_end
        assert ours.item() > 0


def _unit_front_end(path: Path, front_end: str):
    """The scene's front-end with a [0, 1] value range, so spectra() gives normalised spectra."""
    with open_scene(path) as reader:
        front = fit_front_end(scene_statistics(reader, tile_rects(*reader.shape[:2], 256)), front_end, 16)
    return FrontEnd(Normalisation(0.0, 1.0), front.basis)


def test_ssim_term_matches_scikit_image_on_real_bands() -> None:
    scene = load_scene(CAVE[0], "bands", 0)
    u = torch.from_numpy(scene.planes[:, 100:164, 100:164])[None]
    u_hat = u + 0.002 * torch.randn_like(u)
    batch = PatchSampler([scene], 64, 1).next_batch()
    v, v_hat = spectral_coordinates(u, batch), spectral_coordinates(u_hat, batch)
    ours = structural_similarity(v, v_hat).item()
    reference = np.mean([skimage_ssim(v[0, c].numpy(), v_hat[0, c].numpy(), data_range=1.0, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False) for c in range(v.shape[1])])
    assert abs(ours - reference) < 2e-3 and 0.5 < ours < 1.0


def test_perceptual_term_uses_a_user_weights_file(tmp_path: Path, cave_klt) -> None:
    torch.manual_seed(0)
    save_lpips(LpipsNetwork(), tmp_path / "lpips.pt")
    config = tiny_config(loss={"perceptual": 1.0, "perceptual_weights": "lpips.pt"})
    run = trainer(config, cave_klt, tmp_path)
    row = run.train_step()
    assert row["perceptual"] > 0 and math.isfinite(row["total"])


def test_configuration_errors_are_one_line(tmp_path: Path) -> None:
    bad = write_toml(tmp_path / "bad.toml", tiny_config(training={"iterationz": 3}))
    result = invoke("train", bad, CAVE[0], "-o", tmp_path / "run")
    assert result.exit_code == 1 and "iterationz" in result.stderr
    assert_one_line_error(result.stderr)
    no_weights = write_toml(tmp_path / "p.toml", tiny_config(loss={"perceptual": 1.0}))
    result = invoke("train", no_weights, CAVE[0], "-o", tmp_path / "run")
    assert result.exit_code == 1 and "perceptual_weights" in result.stderr
    (tmp_path / "junk.toml").write_text("name = [")
    result = invoke("train", tmp_path / "junk.toml", CAVE[0], "-o", tmp_path / "run")
    assert result.exit_code == 1 and "TOML" in result.stderr
    assert not (tmp_path / "run").exists()


def test_plane_group_patches_are_the_inputs_compress_feeds_e_with_their_share_of_the_spectra() -> None:
    scene = load_scene(PAVIA, "klt", 16)
    [crop] = PatchSampler([scene], 32, 1, seed=3).next_batch().planes.numpy()
    drawn = PatchSampler([scene], 32, 1, seed=3, group_fraction=1.0).next_batch()  # the same crop, as a group
    groups = further_groups(scene)
    assert [g.first for g in groups] == [2, 4] and all(g.plane_gain > 1 for g in groups)
    [planes] = drawn.planes.numpy()
    assert not planes[2:].any()
    [group] = [g for g in groups if np.allclose(planes, network_input(crop, g))]
    # the group's spectral coordinates are those of the scene with every other plane left out
    only = np.zeros_like(crop)
    only[group.first : group.first + 2] = crop[group.first : group.first + 2]
    expected = spectral_coordinates(torch.from_numpy(only)[None], PatchSampler([scene], 32, 1).next_batch())
    assert torch.allclose(spectral_coordinates(drawn.planes, drawn), expected, atol=1e-5)


def test_plane_group_training_steps_and_is_refused_for_bands(tmp_path: Path, cave_klt) -> None:
    run = trainer(tiny_config(training={"plane_groups": 0.5}), cave_klt, tmp_path / "klt")
    assert run.sampler.group_fraction == 0.5 and math.isfinite(run.train_step()["total"])
    bad = write_toml(tmp_path / "bands.toml", tiny_config(front_end="bands", training={"plane_groups": 0.5}))
    result = invoke("train", bad, CAVE[0], "-o", tmp_path / "run")
    assert result.exit_code == 1 and "plane_groups" in result.stderr
    assert_one_line_error(result.stderr)


# ---------------------------------------------------------------------------- stages

def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items() if v.is_floating_point())


def test_mse_stage_leaves_the_discriminator_alone(tmp_path: Path, cave_bands) -> None:
    run = trainer(tiny_config(front_end="bands", training={"mse_iterations": 1, "gan_iterations": 1}),
                  cave_bands, tmp_path)
    d_before, g_before = _snapshot(run.discriminator), _snapshot(run.model.generator)
    row = run.train_step()
    assert row["stage"] == "mse" and "d_loss" not in row and row["gan"] == 0
    assert _changed(g_before, run.model.generator) and not _changed(d_before, run.discriminator)


def test_gan_stage_step_updates_discriminator_and_generator(tmp_path: Path, cave_bands) -> None:
    run = trainer(tiny_config(front_end="bands", training={"mse_iterations": 0, "gan_iterations": 2}),
                  cave_bands, tmp_path)
    d_before, g_before, e_before = (_snapshot(m) for m in (run.discriminator, run.model.generator,
                                                         run.model.encoder))
    row = run.train_step()
    assert row["stage"] == "gan" and row["gan"] > 0 and row["d_loss"] > 0
    assert _changed(d_before, run.discriminator)
    assert _changed(g_before, run.model.generator) and _changed(e_before, run.model.encoder)


def test_rate_term_follows_the_target(tmp_path: Path, cave_klt) -> None:
    """Two targets, the same everything else: the real coder measures ordered rates after a short run."""
    measured = {}
    for target in (0.02, 2.0):
        config = tiny_config(model={"arch": "hific"}, rate={"target_bpp": target, "lambda_a": 512.0, "lambda_b": 0.01},
                             training={"mse_iterations": 40, "validation_crop": 128})
        run = trainer(config, cave_klt, tmp_path / str(target))
        for _ in range(40):
            run.train_step()
        measured[target] = validate(run.model, cave_klt, 128)[1]
    assert measured[0.02] < measured[2.0] / 2, measured  # 40 steps: a clear gap, not the final rates


# ---------------------------------------------------------------------------- the command

def test_train_exports_a_checkpoint_that_compresses_and_decompresses(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "cave.toml", tiny_config(name="cave-tiny", front_end="bands",
                                                            training={"mse_iterations": 3, "gan_iterations": 2}))
    run = tmp_path / "run"
    result = invoke("train", config, *CAVE, "-o", run, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert summary["model"] == "cave-tiny" and summary["iterations"] == 5
    [entry] = read_manifest(run)
    assert (entry.front_end, entry.channels, entry.arch) == ("bands", 31, "hificse")
    log = (run / "log.csv").read_text().splitlines()
    assert len(log) == 6 and log[-1].split(",")[1] == "gan" and log[-1].split(",")[-2]  # validated at the end

    env = {"HSICODEC_MODELS": str(run)}
    scene = DATA / "cave" / "feathers.tif"  # not trained on
    done = run_process("compress", scene, "-m", "cave-tiny", "-o", tmp_path / "f.hsic", "--json", env=env)
    assert done.returncode == 0, done.stderr
    done = run_process("decompress", tmp_path / "f.hsic", "-o", tmp_path / "f.tif", "-f", "gtiff", env=env)
    assert done.returncode == 0, done.stderr
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "f.tif") as out:
        assert (out.count, out.height, out.width, out.dtypes[0]) == (src.count, src.height, src.width, src.dtypes[0])
    other = scene_path(next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_64"))
    done = run_process("compress", other, "-m", "cave-tiny", "-o", tmp_path / "e.hsic", env=env)
    assert done.returncode == 1 and "31-band" in done.stderr and not (tmp_path / "e.hsic").exists()


def test_a_run_folder_is_not_reused_without_resume(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", tiny_config(training={"mse_iterations": 2}))
    assert invoke("train", config, CAVE[0], "-o", tmp_path / "run", "-q").exit_code == 0
    again = invoke("train", config, CAVE[0], "-o", tmp_path / "run", "-q")
    assert again.exit_code == 1 and "--resume" in again.stderr
    other = write_toml(tmp_path / "d.toml", tiny_config(training={"mse_iterations": 3}))
    changed = invoke("train", other, CAVE[0], "-o", tmp_path / "run", "--resume", "-q")
    assert changed.exit_code == 1 and "another configuration" in changed.stderr
    assert_one_line_error(changed.stderr)


def _train_process(config: Path, run: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hsicodec", "train", str(config), *map(str, CAVE),
                             "-o", str(run), "-q", *extra], env=env, stderr=subprocess.PIPE, text=True)


def _weights(run: Path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(run / f"{name}.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["killed", "interrupted"])
def test_resume_after_interruption_continues_the_same_run(tmp_path: Path, how: signal.Signals) -> None:
    config = write_toml(tmp_path / "c.toml", tiny_config(training={"mse_iterations": 14, "gan_iterations": 6,
                                                                   "validate_every": 7}))
    straight = _train_process(config, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, straight.stderr.read()

    run = tmp_path / "stopped"
    first = _train_process(config, run)
    deadline = time.time() + 120
    while not (run / "state.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(how)
    code, stderr = first.wait(timeout=120), first.stderr.read()
    if how == signal.SIGINT and code == 1:  # stopped cleanly after the step in progress
        assert "--resume" in stderr
        assert_one_line_error(stderr)
    resumed = _train_process(config, run, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()

    a, b = _weights(tmp_path / "straight", "tiny"), _weights(run, "tiny")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 21))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_torchrun_trains_with_two_processes(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", tiny_config(training={"mse_iterations": 2, "gan_iterations": 2}))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "hsicodec", "train",
                           str(config), *map(str, CAVE), "-o", str(tmp_path / "run"), "-q", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout)[-1]["iterations"] == 4
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 5  # rank 0 logs, once per step


@pytest.mark.parametrize("path", sorted((REPO / "examples" / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_example_configurations_are_valid(path: Path) -> None:
    config = load_config(path)
    assert config.network(16).arch in path.name.replace("-opt", "")


def _one_step_from(init: str, arch: str, tmp_path: Path) -> tuple[dict, dict, str]:
    """(the installed model's weights, those after one `train --init` step of a small `arch` run,
    the run's recorded `initialised_from`)."""
    config = tiny_config(name="tuned", model={"arch": arch, "size": "small"}, components=16,
                         training={"mse_iterations": 1})
    run = tmp_path / "tuned"
    result = invoke("train", write_toml(tmp_path / "t.toml", config), *CAVE, "-o", run, "--init", init,
                    "-q", "--json")
    assert result.exit_code == 0, result.stderr
    provenance = torch.load(run / "tuned.pt", weights_only=True)["training"]["initialised_from"]
    return _weights(REPO / "models", init), _weights(run, "tuned"), provenance


def test_init_fine_tunes_an_installed_model(tmp_path: Path) -> None:
    """A rung fine-tuned from the shipped HiFiCSE starts from its weights; a different network is refused."""
    start, tuned, provenance = _one_step_from("hificse-klt16-0.4", "hificse", tmp_path)
    first_conv = "encoder.layers.0.1.weight"
    assert tuned[first_conv].shape == start[first_conv].shape
    assert 0 < (tuned[first_conv] - start[first_conv]).abs().max() < 0.05  # one step away from it
    assert provenance == "hificse-klt16-0.4"
    other = write_toml(tmp_path / "o.toml", tiny_config(components=16))
    refused = invoke("train", other, *CAVE, "-o", tmp_path / "o", "--init", "hificse-klt16-0.4", "-q")
    assert refused.exit_code == 1 and "another network" in refused.stderr
    assert_one_line_error(refused.stderr)


def test_init_from_another_family_lends_the_layers_they_share(tmp_path: Path) -> None:
    """A HiFiC3D run started from the shipped HiFiC-opt takes every tensor the two networks share;
    the 3D ends (and the layers next to them, whose shapes differ) start fresh."""
    lent, tuned, provenance = _one_step_from("hific-klt16-0.6", "hific3d", tmp_path)
    shared = "generator.residual.0.body.1.weight"
    assert 0 < (tuned[shared] - lent[shared]).abs().max() < 0.05  # one step away from HiFiC-opt's
    assert "encoder.layers.0.conv.weight" in tuned and "encoder.layers.0.conv.weight" not in lent
    assert tuned["encoder.layers.4.weight"].shape != lent["encoder.layers.4.weight"].shape
    assert provenance == "hific-klt16-0.6 (86 of 97 tensors, hific)"


def test_validation_psnr_and_rate_are_those_of_the_real_coder() -> None:
    """validate() against an independent computation: encode, decode, per-band MSE, bits of the words."""
    model = load_model(find_model("hificse-klt16-0.4"))
    scene = load_scene(CAVE[0], "klt", 16)
    psnr, bpp = validate(model, [scene], 64)
    u = scene.planes[:, 96:160, 96:160]
    coded = LatentCoder(model, torch.device("cpu")).encode(np.ascontiguousarray(u))
    u_hat = LatentCoder(model, torch.device("cpu")).decode(coded)
    per_band_mse = np.mean(np.sum((u - u_hat) ** 2, axis=0))
    assert abs(psnr - (-10 * np.log10(per_band_mse))) < 1e-3
    assert bpp == 32 * (coded.y_words.size + coded.z_words.size) / 64**2
