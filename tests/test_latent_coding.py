"""Latents through the real range coder: what the decoder sees is what the encoder quantised."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hsicodec.errors import DecodeError
from hsicodec.latent_coding import LatentCoder
from hsicodec.nn.hific import HiFiC, HificConfig

SMALL = dict(in_channels=4, widths=(8, 8, 8, 8, 8), latent_channels=8, hyper_channels=8, residual_blocks=1)


@pytest.fixture(scope="module", params=["hific", "hificse", "hific3d"])
def coder(request: pytest.FixtureRequest) -> LatentCoder:
    torch.manual_seed(0)
    model = HiFiC(HificConfig(arch=request.param, spectral_features=2, **SMALL))
    model.hyperprior.update_tables()
    return LatentCoder(model.eval(), torch.device("cpu"))


def _planes(shape: tuple[int, int, int] = (4, 48, 64)) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, size=shape).astype(np.float32)


def test_compression_consistent_with_quantization(coder: LatentCoder) -> None:
    u = _planes()
    coded = coder.encode(u)
    decoded = coder.decode(coded)
    with torch.inference_mode():
        model = coder.model
        y = model.encoder(torch.from_numpy(u)[None]).double()
        z = model.hyperprior.analyse(y.float()).double()
        z_hat = torch.round(z - torch.from_numpy(coder.z_medians)) + torch.from_numpy(coder.z_medians)
        means, _ = coder._y_parameters(z_hat[0].numpy(), tuple(y.shape[-2:]))
        y_hat = np.rint(y[0].numpy() - means) + means
        expected = model.generator(torch.from_numpy(y_hat.astype(np.float32))[None])[0].numpy()
    assert decoded.shape == u.shape
    np.testing.assert_array_equal(decoded, expected)


def test_encoding_is_deterministic_and_small(coder: LatentCoder) -> None:
    first, second = coder.encode(_planes()), coder.encode(_planes())
    assert np.array_equal(first.y_words, second.y_words) and first.symbol_crc == second.symbol_crc
    assert first.y_words.nbytes + first.z_words.nbytes < _planes().nbytes


def test_a_damaged_stream_is_a_decode_error(coder: LatentCoder) -> None:
    coded = coder.encode(_planes())
    coded.symbol_crc ^= 1
    with pytest.raises(DecodeError):
        coder.decode(coded)


@pytest.mark.parametrize("step", [0.5, 2.0 ** (7 / 16), 3.0])
def test_a_latent_step_codes_y_in_units_of_the_step(coder: LatentCoder, step: float) -> None:
    u = _planes()
    latents = coder.analyse(u)
    decoded = coder.decode(coder.code(latents, step), step)
    y_hat = np.rint((latents.y - latents.means) / step) * step + latents.means
    with torch.inference_mode():
        expected = coder.model.generator(torch.from_numpy(y_hat.astype(np.float32))[None])[0].numpy()
    np.testing.assert_array_equal(decoded, expected)


def test_the_trained_step_is_the_plain_code_and_coarser_steps_cost_fewer_words(coder: LatentCoder) -> None:
    latents = coder.analyse(_planes())
    plain = coder.encode(_planes())
    assert np.array_equal(coder.code(latents, 1.0).y_words, plain.y_words)
    words = [coder.code(latents, step).y_words.size for step in (0.5, 1.0, 2.0, 4.0)]
    assert words == sorted(words, reverse=True) and words[0] > words[-1]



def test_batched_synthesis_does_not_depend_on_which_tiles_go_together(coder: LatentCoder) -> None:
    rng = np.random.default_rng(3)
    tiles = [coder.decode_latents(coder.encode(rng.normal(0, 0.1, (4, 48, 64)).astype(np.float32)))
             for _ in range(3)]
    together = coder.synthesise(tiles, batch=4)
    alone = [coder.synthesise([tile], batch=4)[0] for tile in reversed(tiles)][::-1]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)
    assert together[0].shape == (4, 48, 64)
