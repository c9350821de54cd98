"""Checkpoints are verified before loading and never unpickled: tampered or foreign files are refused."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hsicodec import checkpoints
from hsicodec.checkpoints import (ModelEntry, find_model, install, load_model, read_manifest, register, sha256_of,
                                  write_manifest)
from hsicodec.errors import ModelError


class Payload:
    """Unpickling this runs code: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def foreign(tmp_path: Path, name: str, content: object) -> ModelEntry:
    """A file registered with its own, correct sha256: only its content is wrong."""
    path = tmp_path / f"{name}.pt"
    torch.save(content, path)
    shipped = read_manifest()[0]
    entry = ModelEntry(name=name, file=path.name, arch=shipped.arch, front_end="klt", channels=16,
                       target_bpp=0.4, sha256=sha256_of(path), directory=tmp_path)
    register(entry, tmp_path)
    return entry


@pytest.mark.parametrize("content", ["code", "state dict only", "other format", "not torch"])
def test_foreign_checkpoints_are_refused_in_one_line(tmp_path: Path, content: str) -> None:
    marker = tmp_path / "ran"
    if content == "not torch":
        entry = foreign(tmp_path, "x", None)
        entry.path.write_bytes(b"PK\x03\x04 not a zip")
        entry = ModelEntry(**{**entry.to_json(), "sha256": sha256_of(entry.path)}, directory=tmp_path)
    else:
        data = {"code": {"format_version": 1, "config": Payload(marker)},
                "state dict only": {"encoder.weight": torch.zeros(3)},
                "other format": {"format_version": 99}}[content]
        entry = foreign(tmp_path, "x", data)
    with pytest.raises(ModelError) as error:
        load_model(entry)
    assert "\n" not in str(error.value) and str(entry.path) in str(error.value)
    assert not marker.exists()


def test_a_changed_byte_fails_the_sha256_check_before_loading(tmp_path: Path) -> None:
    shipped = read_manifest()[0]
    copy = tmp_path / shipped.file
    data = bytearray(shipped.path.read_bytes())
    data[-10] ^= 0xFF
    copy.write_bytes(data)
    entry = ModelEntry(**{**shipped.to_json()}, directory=tmp_path)
    with pytest.raises(ModelError, match="sha256"):
        load_model(entry)


def test_install_copies_a_checkpoint_and_registers_it_in_another_folder(tmp_path: Path) -> None:
    shipped = find_model("hificse-cave31-0.4")
    installed = install(shipped, tmp_path)
    assert installed.path == tmp_path / shipped.file and sha256_of(installed.path) == shipped.sha256
    assert read_manifest(tmp_path) == [installed]
    assert load_model(installed).config == load_model(shipped).config


def test_rate_picks_the_model_whose_measured_rate_is_nearest(tmp_path: Path, monkeypatch) -> None:
    """-r matches what a model gives on real scenes (metrics.rate_bpp), not the rate it was trained for."""
    def entry(name: str, target: float, measured: float | None, front_end: str = "klt") -> ModelEntry:
        metrics = {} if measured is None else {"rate_bpp": measured}
        return ModelEntry(name=name, file=f"{name}.pt", arch="hificse", front_end=front_end, channels=16,
                          target_bpp=target, sha256="0" * 64, metrics=metrics, directory=tmp_path)

    for e in (entry("aims-low", 0.2, 0.45), entry("aims-high", 1.0, 0.9), entry("unmeasured", 0.6, None),
              entry("sensor", 0.3, 0.3, front_end="bands")):
        register(e, tmp_path)
    monkeypatch.setenv("HSICODEC_MODELS", str(tmp_path))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    write_manifest([], shipped)
    monkeypatch.setattr(checkpoints, "SHIPPED_MODELS", shipped)
    assert find_model(rate=0.4).name == "aims-low"  # measured 0.45, although it aimed at 0.2
    assert find_model(rate=0.62).name == "unmeasured"  # no measurement: its target counts
    assert find_model(rate=1.2).name == "aims-high"
    assert find_model(rate=0.3).name != "sensor"  # bands models only by name
    assert find_model("sensor").front_end == "bands"


def test_rate_picks_the_model_with_the_best_measured_quality_at_that_rate(tmp_path: Path, monkeypatch) -> None:
    """With rate control every model reaches many rates: -r takes the one that measured best there."""
    def entry(name: str, curve: list[tuple[float, float]], arch: str = "hificse") -> ModelEntry:
        metrics = {"rate_bpp": 0.5, "curve": [{"rate": r, "bpp": r, "psnr": p} for r, p in curve]}
        return ModelEntry(name=name, file=f"{name}.pt", arch=arch, front_end="klt", channels=16,
                          target_bpp=0.5, sha256="0" * 64, metrics=metrics, directory=tmp_path)

    register(entry("good-low", [(0.1, 25.0), (0.4, 30.0), (1.0, 31.0)]), tmp_path)
    register(entry("good-high", [(0.2, 24.0), (0.4, 29.0), (1.0, 33.0), (2.0, 35.0)]), tmp_path)
    register(entry("other-family", [(0.1, 20.0), (2.0, 28.0)], arch="hific3d"), tmp_path)
    monkeypatch.setenv("HSICODEC_MODELS", str(tmp_path))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    write_manifest([], shipped)
    monkeypatch.setattr(checkpoints, "SHIPPED_MODELS", shipped)
    assert find_model(rate=0.3).name == "good-low"
    assert find_model(rate=0.9).name == "good-high"  # 32.7 dB against 30.9
    assert find_model(rate=1.5).name == "good-high"  # only it was measured there
    assert find_model(rate=0.05).name in ("good-low", "good-high")  # no curve covers it: nearest rate
    assert find_model(rate=0.9).psnr_at(1.0) == 33.0 and find_model(rate=0.9).psnr_at(0.1) is None
    assert find_model(rate=4.0).name == "good-high"  # above every curve: the best top (35 dB), not the nearest rate
    assert find_model(rate=0.9).psnr_at(4.0) == 35.0
    assert find_model(rate=0.9, arch="hific3d").name == "other-family"  # the best of one family (bench)
