"""The HiFiC family on real scenes: shapes and gradients for both front-ends and several sensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA, scene_path, scenes
from hsicodec.nn.hific import SIZES, Discriminator, HiFiC, HificConfig, parameter_count
from hsicodec.nn.layers import SEBlock, SpectralConvIn, SpectralConvOut, SpectralMix
from hsicodec.training.scenes import load_scene

SENSORS = {  # band count -> a real scene with that many bands
    31: DATA / "cave" / "feathers.tif",
    103: scene_path(next(s for s in scenes("eval") if s["id"] == "paviaU_sub50")),
    224: scene_path(next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_64")),
    425: scene_path(next(s for s in scenes("io") if s["id"] == "aviris_ng_topoflux")),
}
VARIANTS = [
    {"arch": "hific"},
    {"arch": "hificse"},
    {"arch": "hificse", "se_placement": "encoder_first"},
    {"arch": "hificse", "se_placement": "encoder"},
    {"arch": "hific3d"},
    {"arch": "hific3d", "spectral_placement": "all"},
]
PATCH = 32


@pytest.fixture(scope="module")
def patches() -> dict[tuple[int, str], torch.Tensor]:
    """A 32x32 patch (1, C, 32, 32) of each sensor's scene through each front-end (padded if smaller)."""
    out = {}
    for bands, path in SENSORS.items():
        for front_end in ("bands", "klt"):
            planes = load_scene(path, front_end, 16).planes
            pad = [(0, 0)] + [(0, max(0, PATCH - n)) for n in planes.shape[1:]]
            planes = np.pad(planes, pad, mode="symmetric")[:, :PATCH, :PATCH]
            out[bands, front_end] = torch.from_numpy(np.ascontiguousarray(planes))[None]
    return out


@pytest.mark.parametrize("front_end", ["bands", "klt"])
@pytest.mark.parametrize("bands", sorted(SENSORS))
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_forward_and_backward_shapes(patches, variant: dict, bands: int, front_end: str) -> None:
    torch.manual_seed(0)
    u = patches[bands, front_end]
    channels = bands if front_end == "bands" else 16
    assert u.shape == (1, channels, PATCH, PATCH)
    config = HificConfig(in_channels=channels, **SIZES["tiny"], **variant)
    model, discriminator = HiFiC(config), Discriminator(config)
    out = model(u)
    assert out.x_hat.shape == u.shape
    assert out.y_hat.shape == (1, config.latent_channels, PATCH // 16, PATCH // 16)
    logits = discriminator(out.x_hat, out.y_hat)
    assert logits.shape == (1, 1, PATCH // 16, PATCH // 16)
    loss = ((out.x_hat - u) ** 2).mean() + out.bits() / PATCH**2 + logits.mean() + model.se_l1()
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if not n.endswith("quantiles")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is not None for p in discriminator.parameters())


def _count(model: HiFiC, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def test_se_placements_put_blocks_where_table_2_says() -> None:
    def blocks(placement: str) -> tuple[int, int]:
        model = HiFiC(HificConfig(arch="hificse", se_placement=placement, **SIZES["tiny"]))
        return _count(model.encoder, SEBlock), _count(model.generator, SEBlock)

    assert blocks("encoder_first") == (1, 0)
    assert blocks("encoder") == (5, 0)  # initial layer + after each of the 4 stage norms
    residual = SIZES["tiny"]["residual_blocks"]
    assert blocks("encoder_generator") == (5, 1 + residual + 4)  # head, residual blocks, 4 upsampling stages
    assert _count(HiFiC(HificConfig(arch="hific", **SIZES["tiny"])), SEBlock) == 0


def test_3d_placements_replace_the_end_convs_or_go_everywhere() -> None:
    ends = HiFiC(HificConfig(arch="hific3d", **SIZES["tiny"]))
    assert isinstance(ends.encoder.layers[0], SpectralConvIn)
    assert isinstance(ends.generator.upsample[-1], SpectralConvOut)
    assert _count(ends, SpectralMix) == 0
    everywhere = HiFiC(HificConfig(arch="hific3d", spectral_placement="all", **SIZES["tiny"]))
    assert _count(everywhere.encoder, SpectralMix) == 4 and _count(everywhere.generator, SpectralMix) == 4


def test_se_l1_penalty_is_the_sum_of_fc_weight_magnitudes() -> None:
    model = HiFiC(HificConfig(arch="hificse", **SIZES["tiny"]))
    expected = sum(b.fc1.weight.abs().sum() + b.fc2.weight.abs().sum() for b in model.se_blocks())
    assert torch.isclose(model.se_l1(), expected)
    assert model.se_l1().requires_grad


def test_paper_size_has_hifics_published_widths_and_runs() -> None:
    config = HificConfig(arch="hific", in_channels=16, **SIZES["paper"])
    model = HiFiC(config)
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [60, 120, 240, 480, 960, 220]
    assert len(model.generator.residual) == 9
    assert 150e6 < parameter_count(model) < 200e6  # HiFiC's E + P + G is about 180 M parameters
    with torch.inference_mode():
        assert model(torch.rand(1, 16, 32, 32)).x_hat.shape == (1, 16, 32, 32)


def test_unknown_placements_are_refused() -> None:
    with pytest.raises(ValueError, match="se_placement"):
        HificConfig(arch="hificse", se_placement="everywhere")
    with pytest.raises(ValueError, match="spectral_placement"):
        HificConfig(arch="hific3d", spectral_placement="middle")
