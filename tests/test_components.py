"""Basis rows chosen by what the model rebuilds: planes G does not carry are left out of the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, json_lines
from conftest import scene_path, scenes

import hsicodec.codec
from hsicodec.codec import scene_statistics
from hsicodec.components import BASIS_SHARE, ComponentChoice, choose_components
from hsicodec.container import BASIS_ERROR_BUDGET, HsicReader, quantise_basis, tile_rects
from hsicodec.frontend import fit_front_end
from hsicodec.io import open_scene
from hsicodec.klt import fit_klt

ABU_URBAN = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_urban_4"))  # 100x100x205


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


def _compress(out: Path, *options: object) -> dict:
    done = invoke("compress", ABU_URBAN, "-m", "hificse-klt16-0.4", *options, "-o", out, "--verify", "--json", "-q")
    assert done.exit_code == 0, done.output
    [record] = json_lines(done.stdout)
    return record


def test_on_a_small_real_scene_leaving_out_planes_cuts_the_file_not_the_quality(tmp_path: Path,
                                                                             monkeypatch) -> None:
    """abu-urban-4 at the model's own step, against the same file with every row kept."""
    chosen = _compress(tmp_path / "chosen.hsic")
    with HsicReader(tmp_path / "chosen.hsic") as reader:
        stored = int((np.abs(reader.basis.basis).sum(axis=1) > 0).sum())
    [info] = json_lines(invoke("info", tmp_path / "chosen.hsic", "--json").stdout)
    assert info["components"] == 16 and info["stored_components"] == stored
    monkeypatch.setattr(hsicodec.codec, "choose_components",
                        lambda planes, rebuilt: ComponentChoice(np.ones(16, dtype=bool), BASIS_ERROR_BUDGET))
    every_row = _compress(tmp_path / "all.hsic")
    assert stored < 16
    assert chosen["bytes"] < 0.8 * every_row["bytes"], (chosen, every_row)
    assert chosen["psnr"] > every_row["psnr"] - 0.2, (chosen, every_row)
