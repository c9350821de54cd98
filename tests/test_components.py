"""Basis rows chosen by what the model rebuilds: planes G does not carry are left out of the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.checkpoints import find_model, load_model
from hsicodec.codec import compress_scene, progress_total, scene_statistics
from hsicodec.components import BASIS_SHARE, choose_components
from hsicodec.container import BASIS_ERROR_BUDGET, HsicReader, quantise_basis, tile_rects
from hsicodec.frontend import fit_front_end
from hsicodec.io import open_scene
from hsicodec.klt import fit_klt
from hsicodec.latent_coding import LatentCoder
from hsicodec.verify import verify_file

ABU_URBAN = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_urban_4"))  # 100x100x205
FEATHERS = scene_path(next(s for s in scenes("eval") if s["id"] == "cave_feathers"))  # 256x256x31


def test_a_plane_rebuilt_no_better_than_zero_is_left_out() -> None:
    rng = np.random.default_rng(0)
    planes = rng.normal(0, [[[1.0]], [[0.3]], [[0.1]]], (3, 32, 32))
    rebuilt = planes.copy()
    rebuilt[0] += rng.normal(0, 0.1, (32, 32))  # 1% error: kept
    rebuilt[1] = 0  # error = energy: left out
    rebuilt[2] = -planes[2]  # G's noise doubles the plane's error: left out
    choice = choose_components([planes], [rebuilt])
    energy = (planes**2).mean(axis=(1, 2))
    assert choice.kept.tolist() == [True, False, False]
    expected = BASIS_SHARE * (((planes[0] - rebuilt[0]) ** 2).mean() + energy[1] + energy[2])
    assert choice.error_budget == pytest.approx(expected)


def test_the_budget_is_never_finer_than_the_containers_default() -> None:
    planes = np.random.default_rng(1).normal(0, 1, (4, 16, 16))
    choice = choose_components([planes], [planes])
    assert choice.kept.all() and choice.error_budget == BASIS_ERROR_BUDGET


def test_left_out_rows_are_stored_as_zeros_and_the_basis_stays_idempotent() -> None:
    with open_scene(ABU_URBAN) as reader:
        stats = scene_statistics(reader, tile_rects(*reader.shape[:2], 256))
    kept = np.zeros(16, dtype=bool)
    kept[:3] = True
    full = fit_front_end(stats, "klt", 16)  # every row, at the default budget
    front = fit_front_end(stats, "klt", 16, kept, 1e-4)
    rows = front.basis.basis
    assert not rows[3:].any() and (front.basis.exponents[4:] == 0).all()
    mean, exact, variances = fit_klt(stats, 16)
    added = np.sum(variances[:3] * ((rows[:3] - exact[:3]) ** 2).mean(axis=1))
    added += ((front.basis.mean - mean) ** 2).mean()
    assert added < 1e-4  # what the budget promises: the per-band MSE the stored basis adds
    assert (front.basis.exponents[1:4] > full.basis.exponents[1:4]).all()  # coarser than the default budget
    variances = np.where(kept, 1.0, 0.0)
    again = quantise_basis(quantise_basis(front.basis, variances, 1e-4), variances, 1e-4)
    assert np.array_equal(again.basis, quantise_basis(front.basis, variances, 1e-4).basis)


def test_a_row_choice_restores_the_fitted_klt_as_a_fresh_fit_would() -> None:
    """`with_rows` re-quantises the KLT fitted once (as `-r` does per candidate): the same stored basis,
    bit for bit, as fitting the scene again with that row choice; and it undoes an earlier choice."""
    with open_scene(ABU_URBAN) as reader:
        stats = scene_statistics(reader, tile_rects(*reader.shape[:2], 256))
    kept = np.zeros(16, dtype=bool)
    kept[:5] = True
    full = fit_front_end(stats, "klt", 16)
    rowed = full.with_rows(kept, 3e-4)
    fresh = fit_front_end(stats, "klt", 16, kept, 3e-4)
    for a, b in ((rowed.basis, fresh.basis), (rowed.with_rows(np.ones(16, bool), 1e-5).basis,
                                               fit_front_end(stats, "klt", 16, np.ones(16, bool), 1e-5).basis)):
        assert np.array_equal(a.basis, b.basis) and np.array_equal(a.mean, b.mean)
        assert np.array_equal(a.exponents, b.exponents)
    assert not rowed.basis.basis[5:].any() and full.basis.basis[5:].any()

def _coded(out: Path, choose_rows: bool) -> tuple[int, float]:
    entry = find_model("hificse-klt16-0.4")
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    with open_scene(ABU_URBAN) as reader:
        compress_scene(reader, out, entry, coder, choose_rows=choose_rows)
        return out.stat().st_size, verify_file(out, reader, coder)["psnr"]


def test_on_a_small_real_scene_leaving_out_planes_cuts_the_file_not_the_quality(tmp_path: Path) -> None:
    """abu-urban-4 at the model's own step, against the same file with every row kept."""
    chosen_bytes, chosen_psnr = _coded(tmp_path / "chosen.hsic", True)
    every_bytes, every_psnr = _coded(tmp_path / "all.hsic", False)
    assert chosen_bytes < 0.8 * every_bytes and chosen_psnr > every_psnr - 0.2
    stored = {}
    for name in ("chosen", "all"):
        [info] = json_lines(invoke("info", tmp_path / f"{name}.hsic", "--json").stdout)
        with HsicReader(tmp_path / f"{name}.hsic") as reader:
            assert info["stored_components"] == int((np.abs(reader.basis.basis).sum(axis=1) > 0).sum())
        stored[name] = info["stored_components"]
    assert stored["chosen"] < stored["all"]  # (the default budget's coarse steps round the weakest rows to 0)


@pytest.mark.parametrize("model", ["hificse-klt16-0.4", "hificse-cave31-0.4"])
@pytest.mark.parametrize("rate", [None, 0.4])
def test_the_progress_bar_counts_every_step_of_compress(model: str, rate: float | None, tmp_path: Path) -> None:
    entry = find_model(model)
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    steps = []
    with open_scene(FEATHERS) as reader:
        compress_scene(reader, tmp_path / "a.hsic", entry, coder, 64, steps.append, rate)
    assert sum(steps) == progress_total(16, rate is not None, entry.front_end == "klt")  # 4 x 4 tiles of 64
    if rate is not None:
        steps.clear()
        with open_scene(FEATHERS) as reader:
            compress_scene(reader, tmp_path / "b.hsic", entry, coder, 64, steps.append, rate, choose_plane_gain=False,
                           choose_groups=False)
        assert sum(steps) == progress_total(16, True, entry.front_end == "klt", chooses_layout=False)
