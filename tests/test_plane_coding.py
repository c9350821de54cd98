"""The wavelet-pyramid plane coder: real KLT planes go through constriction and come back exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cave_planes, previous_planes

from hsicodec.checkpoints import find_model, load_coder
from hsicodec.errors import DecodeError
from hsicodec.nn.pyramid import SCALE_BOUND, Code, WaveletPyramid
from hsicodec.plane_coding import MEAN_GRID, PLANES_AT_ONCE, SCALE_TABLE, PlaneCoder, scale_tables


@pytest.fixture(scope="module")
def coder() -> PlaneCoder:
    torch.manual_seed(0)
    return PlaneCoder(WaveletPyramid(levels=3, width=8).exact(), scale_tables())


@pytest.fixture(scope="module")
def planes() -> np.ndarray:
    """The first four KLT planes of a 64 x 96 crop of the CAVE feathers eval scene (normalised units)."""
    return cave_planes("feathers", ((64, 128), (32, 128)), 4)


def _equal(a: Code, b: Code) -> bool:
    return all(torch.equal(x, y) for x, y in zip((a[0], *a[1]), (b[0], *b[1])))


@pytest.mark.parametrize("step", [0.003, 0.03, 0.3])
def test_real_planes_decode_to_the_same_values_and_the_error_of_rounding(coder: PlaneCoder, planes: np.ndarray,
                                                                          step: float) -> None:
    code = coder.quantise(planes, step)
    words, checksum = coder.encode(code)
    decoded, _ = coder.decode(words, checksum, *planes.shape)
    assert _equal(code, decoded)
    mse = float(((coder.dequantise(decoded, step) - planes) ** 2).mean())
    assert mse <= step ** 2 / 6  # about D**2 / 12 per value; less where whole levels round to zero


@pytest.fixture(scope="module")
def fitted(planes: np.ndarray) -> PlaneCoder:
    """A coder whose P was fitted to these planes for a few seconds."""
    torch.manual_seed(0)
    model = WaveletPyramid(levels=3, width=8)
    x = torch.from_numpy(planes[1:])[:, None]
    previous = torch.from_numpy(planes[:-1])[:, None]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = model.training_loss(x, previous, torch.exp(torch.empty(3, 1, 1, 1).uniform_(-6, -2)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return PlaneCoder(model.exact(), scale_tables())


def test_a_fitted_p_codes_at_the_bits_its_likelihoods_give(fitted: PlaneCoder, planes: np.ndarray) -> None:
    """What training minimises is what the file spends, within 2% (the tables' grids of means and scales, the
    level flags, the coder's last word). An unfitted P's scales are far off, and its escapes then cost less
    than its likelihoods say."""
    code = fitted.quantise(planes, 0.01)
    words, _ = fitted.encode(code)
    with torch.no_grad():
        bits = float(fitted.model.bits(code, previous_planes(code)))
    assert 32 * len(words) == pytest.approx(bits, rel=0.02)


def test_rebuilding_at_p_s_centroids_beats_the_bin_centres(fitted: PlaneCoder, planes: np.ndarray) -> None:
    step = 0.01
    code = fitted.quantise(planes, step)
    _, rebuilt = fitted.decode(*fitted.encode(code), *planes.shape)

    def mse(c: Code) -> float:
        return float(((fitted.dequantise(c, step) - planes) ** 2).mean())

    assert mse(rebuilt) < 0.97 * mse(code)


def test_levels_of_zeros_are_not_coded(coder: PlaneCoder, planes: np.ndarray) -> None:
    zero = np.zeros_like(planes)
    words, checksum = coder.encode(coder.quantise(zero, 0.01))
    assert len(words) <= 2  # four planes' flags: 16 bits
    fine = coder.encode(coder.quantise(planes, 0.003))[0]
    coarse = coder.encode(coder.quantise(planes, 0.3))[0]
    assert len(coarse) < len(fine) / 10
    assert _equal(coder.decode(words, checksum, *planes.shape)[0], coder.quantise(zero, 0.01))


def test_a_damaged_stream_is_an_error_not_wrong_values(coder: PlaneCoder, planes: np.ndarray) -> None:
    code = coder.quantise(planes, 0.01)
    words, checksum = coder.encode(code)
    damaged = words.copy()
    damaged[len(words) // 2] ^= np.uint32(0x00F0F000)
    with pytest.raises(DecodeError):
        coder.decode(damaged, checksum, *planes.shape)
    with pytest.raises(DecodeError):
        coder.decode(words[:-1], checksum, *planes.shape)


def test_tiles_decoded_together_decode_as_alone_and_a_damaged_one_spares_the_rest() -> None:
    coder = load_coder(find_model())
    codes = [coder.quantise(cave_planes(scene, ((64, 128), (64, 128)), 6), 2.0 ** -9)
             for scene in ("feathers", "sponges", "real_and_fake_apples")]
    streams = [coder.encode(code) for code in codes]
    damaged = streams[1][0].copy()
    damaged[len(damaged) // 3] ^= 0x5A5A5A5A
    results = coder.decode_tiles([streams[0], (damaged, streams[1][1]), streams[2]], 6, 64, 64)
    assert isinstance(results[1], DecodeError)
    for code, result, stream in zip((codes[0], codes[2]), (results[0], results[2]), (streams[0], streams[2])):
        alone = coder.decode(*stream, 6, 64, 64)
        assert _equal(result[0], code) and _equal(result[1], alone[1])


def test_p_sees_only_what_a_decoder_has() -> None:
    """Changing a value changes no mean or scale of the passes before it: the walk is causal."""
    torch.manual_seed(1)
    model = WaveletPyramid(levels=2, width=8).double().eval()
    x = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    code = model.quantise(x, 0.05)
    previous = model.zeros(code)

    def parameters(c: Code) -> list[torch.Tensor]:
        seen: list[torch.Tensor] = []
        model.walk(c, previous, lambda level, values, params, mask: seen.append(params.clone()))
        return seen

    before = parameters(code)
    changed = (code[0], [code[1][0].clone(), code[1][1]])
    changed[1][0][0, 0, 1, 0] += 5  # finest level, second checkerboard pass (row + column odd)
    after = parameters(changed)
    assert all(torch.equal(a, b) for a, b in zip(before[:-1], after[:-1]))


def test_each_table_is_the_gaussian_of_its_scale_and_mean_fraction() -> None:
    tables = scale_tables()
    assert tables.rows == len(SCALE_TABLE) * MEAN_GRID
    for s in (8, 20, 40):  # scales of about 0.3, 1.3 and 7
        for j in range(-(MEAN_GRID // 2), MEAN_GRID // 2):
            row = s * MEAN_GRID + j + MEAN_GRID // 2
            pmf = tables.pmf(row)[:-1] / 65536  # without the escape
            values = tables.offset[row] + np.arange(pmf.size)
            gaussian = torch.distributions.Normal(j / MEAN_GRID, float(SCALE_TABLE[s]))
            exact = (gaussian.cdf(torch.tensor(values + 0.5)) - gaussian.cdf(torch.tensor(values - 0.5))).numpy()
            assert np.abs(pmf - exact).max() < 1e-3


def test_p_s_gaussians_are_coded_with_the_nearest_table(coder: PlaneCoder) -> None:
    """The mean on the grid of 1/MEAN_GRID around its integer part, the scale the nearest of SCALE_TABLE in
    log scale (below SCALE_BOUND, the first)."""
    torch.manual_seed(2)
    means = torch.randn(1, 3, 1, 1000, dtype=torch.float64) * 20
    scales = torch.rand(1, 3, 1, 1000, dtype=torch.float64) * 5
    _, rows, bases = coder._pass(torch.cat([means, scales], dim=1), torch.ones(1, 1, 1, 1000))
    grid_means = bases + (rows % MEAN_GRID - MEAN_GRID // 2) / MEAN_GRID
    assert np.abs(grid_means - means[:, :, 0].numpy()).max() <= 1 / (2 * MEAN_GRID)
    assert np.abs(grid_means - bases).max() <= 0.5
    distance = np.abs(np.log(SCALE_TABLE) - np.log(scales[:, :, 0].clamp_min(SCALE_BOUND).numpy())[..., None])
    assert np.array_equal(rows // MEAN_GRID, distance.argmin(axis=-1))


def test_more_planes_than_p_runs_at_once_decode_exactly() -> None:
    """The encoder runs P on batches of planes; the decoder one plane after the other."""
    coder = load_coder(find_model())
    planes = cave_planes("sponges", ((64, 128), (64, 128)), PLANES_AT_ONCE + 4)
    code = coder.quantise(planes, 2.0 ** -12)
    assert bool(code[1][0][-1].any())  # the last batch codes values too
    decoded, _ = coder.decode(*coder.encode(code), *planes.shape)
    assert _equal(code, decoded)


def test_a_coder_refuses_p_with_float_nets() -> None:
    """Float sums depend on their order: only integer nets give every machine the same Gaussians."""
    with pytest.raises(ValueError, match="integer nets"):
        PlaneCoder(WaveletPyramid(levels=3, width=8), scale_tables())
