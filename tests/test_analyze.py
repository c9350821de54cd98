"""`hsicodec analyze` and hsicodec.analysis on the shipped HiFiCSE model and real scenes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, invoke, run_process
from conftest import DATA, scene_path, scenes

from hsicodec.analysis import parameter_counts, plot_se_weights, se_weights
from hsicodec.checkpoints import export_checkpoint, find_model, load_model, register
from hsicodec.nn.hific import SIZES, Discriminator, HiFiC, HificConfig, parameter_count
from hsicodec.nn.layers import SEBlock
from hsicodec.training.scenes import load_scene

MODEL = "hificse-klt16-0.4"
FEATHERS = DATA / "cave" / "feathers.tif"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def eval_scene(name: str) -> Path:
    """The eval-split scene whose file path contains `name`."""
    return next(scene_path(e) for e in scenes("eval") if any(name in f for f in e["files"]))


def analyze_json(*args: object) -> dict:
    result = invoke("analyze", *args, "--json")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def model() -> HiFiC:
    return load_model(find_model(MODEL))


@pytest.fixture(scope="module")
def feathers(data_dir: Path) -> dict:
    return analyze_json(MODEL, FEATHERS)


@pytest.fixture
def plain_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HSICODEC_MODELS with a tiny plain-HiFiC klt model ('plain-tiny') and a 16-band one ('bands-tiny')."""
    torch.manual_seed(0)
    folder = tmp_path / "models"
    folder.mkdir()
    for name, front_end in (("plain-tiny", "klt"), ("bands-tiny", "bands")):
        net = HiFiC(HificConfig(arch="hific", in_channels=16, **SIZES["tiny"]))
        register(export_checkpoint(net, folder / f"{name}.pt", name, front_end, 0.4, {}, {}), folder)
    monkeypatch.setenv("HSICODEC_MODELS", str(folder))
    return folder


def test_help_has_examples() -> None:
    result = invoke("analyze", "--help")
    assert result.exit_code == 0 and "$ hsicodec analyze" in result.stdout
    assert "analyze" in invoke("--help").stdout


def test_png_is_written_and_readable(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "plots" / "se.png"
    result = invoke("analyze", MODEL, FEATHERS, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert str(out) in result.stdout and "encoder.layers.2" in result.stdout
    assert out.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["se.png"]  # no temporary file left behind


def test_json_layers_match_the_model(feathers: dict, model: HiFiC) -> None:
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, SEBlock)]
    assert len(feathers["layers"]) == len(model.se_blocks()) == len(named) > 0
    for layer, (name, block) in zip(feathers["layers"], named):
        weights = np.array(layer["weights"])
        assert layer["name"] == name and layer["part"] == name.split(".")[0] in ("encoder", "generator")
        assert len(weights) == layer["channels"] == block.fc2.out_features
        assert np.all((weights > 0) & (weights < 1)), name
        assert layer["mean"] == pytest.approx(weights.mean(), rel=1e-5)
        assert layer["min"] == pytest.approx(weights.min()) and layer["max"] == pytest.approx(weights.max())
        assert layer["below_half"] == int((weights < 0.5).sum())
    assert feathers["model"] == MODEL and feathers["output"] is None


def test_library_matches_the_command(feathers: dict, model: HiFiC) -> None:
    layers = se_weights(model, load_scene(FEATHERS, "klt", 16).planes)
    assert [layer.name for layer in layers] == [layer["name"] for layer in feathers["layers"]]
    for layer, record in zip(layers, feathers["layers"]):
        assert layer.weights.shape == (record["channels"],)
        np.testing.assert_allclose(layer.weights, record["weights"], rtol=1e-5, atol=1e-6)


def test_parameter_counts(feathers: dict, model: HiFiC) -> None:
    counts = feathers["parameters"]
    assert counts == parameter_counts(model)
    assert counts["encoder"] == parameter_count(model.encoder)
    assert counts["hyperprior"] == parameter_count(model.hyperprior)
    assert counts["generator"] == parameter_count(model.generator)
    assert counts["discriminator"] == parameter_count(Discriminator(model.config)) > 0
    assert counts["total"] == counts["encoder"] + counts["hyperprior"] + counts["generator"] == parameter_count(model)
    text = invoke("analyze", MODEL, FEATHERS).stdout
    assert f"total (E+P+G) {counts['total']:,}" in text and f"D {counts['discriminator']:,}" in text


def test_weights_depend_on_the_scene(feathers: dict) -> None:
    other = analyze_json(MODEL, eval_scene("paviaU"))
    assert [layer["name"] for layer in other["layers"]] == [layer["name"] for layer in feathers["layers"]]
    differences = [np.abs(np.subtract(a["weights"], b["weights"])).max()
                   for a, b in zip(feathers["layers"], other["layers"])]
    assert max(differences) > 0.01, differences


def test_existing_output_is_not_replaced(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "se.png"
    out.write_bytes(b"keep me")
    result = invoke("analyze", MODEL, FEATHERS, "-o", out)
    assert result.exit_code == 1 and "--overwrite" in result.stderr
    assert_one_line_error(result.stderr)
    assert out.read_bytes() == b"keep me"
    result = invoke("analyze", MODEL, FEATHERS, "-o", out, "--overwrite", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == str(out) and out.read_bytes()[:8] == PNG_MAGIC


def test_failed_plot_leaves_nothing(tmp_path: Path, model: HiFiC, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    layers = se_weights(model, np.random.default_rng(0).random((16, 32, 32), dtype=np.float32))

    def broken(self, fh, **kwargs) -> None:
        fh.write(PNG_MAGIC)  # half a file, then a failure
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    out = tmp_path / "se.png"
    with pytest.raises(OSError, match="disk full"):
        plot_se_weights(layers, out, "title")
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    with pytest.raises(OSError):
        plot_se_weights(layers, out, "title")
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


def test_model_without_se_blocks(plain_models: Path, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "se.png"
    result = invoke("analyze", "plain-tiny", FEATHERS, "-o", out)
    assert result.exit_code == 1 and "no SE blocks" in result.stderr and "hific" in result.stderr
    assert_one_line_error(result.stderr)
    assert not out.exists()

    entry = find_model("plain-tiny")
    net = load_model(entry)
    counts = parameter_counts(net)
    result = invoke("analyze", "plain-tiny", FEATHERS)
    assert result.exit_code == 0, result.stderr
    assert f"E {counts['encoder']:,}" in result.stdout and f"total (E+P+G) {counts['total']:,}" in result.stdout
    assert "no SE blocks" in result.stdout
    record = analyze_json("plain-tiny", FEATHERS)
    assert record["layers"] == [] and record["parameters"] == counts
    assert se_weights(net, load_scene(FEATHERS, "klt", 16).planes) == []


def test_bands_model_needs_its_band_count(plain_models: Path, data_dir: Path) -> None:
    result = invoke("analyze", "bands-tiny", FEATHERS)  # 31 bands, the model codes 16
    assert result.exit_code == 1 and "16-band" in result.stderr and "31 bands" in result.stderr
    assert_one_line_error(result.stderr)


def test_bad_arguments_are_one_line(tmp_path: Path, data_dir: Path) -> None:
    unknown = invoke("analyze", "no-such-model", FEATHERS)
    assert unknown.exit_code == 1 and "unknown model" in unknown.stderr
    assert_one_line_error(unknown.stderr)
    done = run_process("analyze", MODEL, tmp_path / "missing.tif")
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
