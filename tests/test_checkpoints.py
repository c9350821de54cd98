"""Checkpoints are verified before loading and never unpickled: tampered or foreign files are refused."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hsicodec import checkpoints
from hsicodec.checkpoints import ModelEntry, find_model, load_coder, read_manifest, sha256_of, write_manifest
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
    entry = ModelEntry(name=name, file=path.name, arch="wavelet-pyramid", sha256=sha256_of(path), steps=(1e-3, 0.2),
                       directory=tmp_path)
    write_manifest([entry], tmp_path)
    return entry


@pytest.mark.parametrize("load", [load_coder, checkpoints.load_model])
@pytest.mark.parametrize("content", ["code", "state dict only", "other format", "not torch"])
def test_foreign_checkpoints_are_refused_in_one_line(tmp_path: Path, content: str, load) -> None:
    marker = tmp_path / "ran"
    if content == "not torch":
        entry = foreign(tmp_path, "x", None)
        entry.path.write_bytes(b"PK\x03\x04 not a zip")
        entry = ModelEntry(**{**entry.to_json(), "sha256": sha256_of(entry.path)}, directory=tmp_path)
    else:
        data = {"code": {"format_version": checkpoints.FORMAT_VERSION, "config": Payload(marker)},
                "state dict only": {"encoder.weight": torch.zeros(3)},
                "other format": {"format_version": 99}}[content]
        entry = foreign(tmp_path, "x", data)
    with pytest.raises(ModelError) as error:
        load(entry)
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
        load_coder(entry)


def test_the_default_model_is_the_first_found_and_models_of_hsicodec_models_come_first(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    shipped = read_manifest()[0]
    assert find_model() == shipped
    mine = ModelEntry(name="mine", file=shipped.file, arch=shipped.arch, sha256=shipped.sha256, steps=shipped.steps,
                      directory=tmp_path)
    (tmp_path / shipped.file).write_bytes(shipped.path.read_bytes())
    write_manifest([mine], tmp_path)
    monkeypatch.setenv("HSICODEC_MODELS", str(tmp_path))
    assert find_model() == mine and find_model(shipped.name) == shipped
    assert load_coder(mine).model.config() == load_coder(shipped).model.config()
    with pytest.raises(ModelError, match="unknown model 'nope' \\(installed: mine, "):
        find_model("nope")
    monkeypatch.setattr(checkpoints, "SHIPPED_MODELS", tmp_path / "none")
    monkeypatch.setenv("HSICODEC_MODELS", "")
    with pytest.raises(ModelError, match="no model manifest"):
        find_model()


def test_a_model_loads_as_trained_and_its_coder_with_the_integer_nets_exported_with_it() -> None:
    entry = find_model()
    checkpoint = torch.load(entry.path, weights_only=True)
    model = checkpoints.load_model(entry)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in checkpoint["state_dict"].items())
    coder = load_coder(entry)
    stored = checkpoint["integer_nets"][0]  # the net's layers
    assert all(torch.equal(a.to(torch.int16), b) for layer, state in zip(coder.model.net.layers, stored)
               for a, b in zip(layer.weights, state["weights"]))
    rebuilt = model.exact()  # rounding the trained weights again gives the stored integers
    assert all(torch.equal(a, b) for x, y in zip(rebuilt.net.layers, coder.model.net.layers)
               for a, b in zip(x.weights, y.weights))
