"""LPIPS perceptual loss: weights from a user file, tested with a random network."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hsicodec.errors import ModelError
from hsicodec.training.perceptual import LpipsNetwork, PerceptualLoss, load_lpips, rgb_planes, save_lpips

SIDE = 40


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, randomly initialised network saved with save_lpips."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lpips") / "lpips.pt"
    save_lpips(LpipsNetwork(), path)
    return path


@pytest.fixture(scope="module")
def loss(weights: Path) -> PerceptualLoss:
    return PerceptualLoss.from_file(weights)


def scene(channels: int = 8, side: int = SIDE, seed: int = 1) -> torch.Tensor:
    """A smooth random scene in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, channels, side // 8 + 1, side // 8 + 1, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)


def noisy(v: torch.Tensor, amplitude: float, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return v + amplitude * torch.randn(v.shape, generator=g)


def assert_one_line_error(exc: pytest.ExceptionInfo[ModelError], path: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message


def test_saved_and_loaded_network_gives_the_same_distances(weights: Path) -> None:
    torch.manual_seed(0)
    original = LpipsNetwork().eval()
    loaded = load_lpips(weights)
    x, y = rgb_planes(scene(3, seed=1)), rgb_planes(scene(3, seed=11))
    assert torch.equal(original(x, y), loaded(x, y))
    assert not loaded.training


def test_identical_images_have_zero_distance(loss: PerceptualLoss) -> None:
    v = scene()
    assert loss(v, v.clone()).item() == 0.0


def test_different_images_have_positive_distance(loss: PerceptualLoss) -> None:
    assert loss(scene(seed=1), scene(seed=3)).item() > 0.0


def test_distance_grows_with_noise_amplitude(loss: PerceptualLoss) -> None:
    v = scene()
    assert 0.0 < loss(v, noisy(v, 0.02)).item() < loss(v, noisy(v, 0.2)).item()


def test_per_image_distances_have_batch_shape(loss: PerceptualLoss) -> None:
    v = scene()
    assert loss.network(rgb_planes(v), rgb_planes(noisy(v, 0.1))).shape == (2,)


@pytest.mark.parametrize("amplitude", [0.1, 0.0], ids=["different", "identical"])
def test_gradient_reaches_v_hat_and_not_the_network(loss: PerceptualLoss, amplitude: float) -> None:
    v = scene()
    v_hat = noisy(v, amplitude).requires_grad_(True)
    loss(v, v_hat).backward()
    assert v_hat.grad is not None and torch.isfinite(v_hat.grad).all()
    if amplitude:
        assert v_hat.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


@pytest.mark.parametrize("channels,side", [(1, SIDE), (2, SIDE), (31, SIDE), (224, SIDE), (8, 24), (8, 5)])
def test_any_band_count_and_small_sides_are_accepted(loss: PerceptualLoss, channels: int, side: int) -> None:
    v = scene(channels, side)
    assert rgb_planes(v).shape == (2, 3, side, side)
    distance = loss(v, noisy(v, 0.1))
    assert distance.shape == () and torch.isfinite(distance) and distance > 0


def test_rgb_planes_takes_evenly_spaced_bands_mapped_to_minus_one_one() -> None:
    v = torch.arange(5.0).view(1, 5, 1, 1) / 4
    assert rgb_planes(v).flatten().tolist() == [1.0, 0.0, -1.0]
    assert rgb_planes(torch.full((1, 1, 2, 2), 0.5)).eq(0).all()


def test_missing_file_raises_model_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.pt"
    with pytest.raises(ModelError) as exc:
        load_lpips(path)
    assert_one_line_error(exc, path)


def test_random_bytes_raise_model_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(ModelError) as exc:
        load_lpips(path)
    assert_one_line_error(exc, path)


@pytest.mark.parametrize("change, expected", [("rename", "1 missing and 1 unexpected"), ("reshape", "lins.0.weight")])
def test_wrong_keys_or_shapes_raise_model_error(weights: Path, tmp_path: Path, change: str, expected: str) -> None:
    state = torch.load(weights, weights_only=True)
    if change == "rename":
        state["lins.5.weight"] = state.pop("lins.4.weight")
    else:
        state["lins.0.weight"] = torch.zeros(1, 32, 1, 1)
    path = tmp_path / f"{change}.pt"
    torch.save(state, path)
    with pytest.raises(ModelError) as exc:
        load_lpips(path)
    assert_one_line_error(exc, path)
    assert expected in str(exc.value)


class _WritesMarker:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


def test_file_that_would_run_code_is_refused_without_running_it(weights: Path, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    state = torch.load(weights, weights_only=True)
    state["payload"] = _WritesMarker(marker)
    path = tmp_path / "malicious.pt"
    torch.save(state, path)
    with pytest.raises(ModelError) as exc:
        load_lpips(path)
    assert_one_line_error(exc, path)
    assert not marker.exists()
