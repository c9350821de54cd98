"""P's integer nets: exact float32 sums, the same Gaussians however they are computed, and little cost in bits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import cave_planes, previous_planes

from hsicodec.checkpoints import find_model, load_coder, load_model
from hsicodec.nn.integer import ACTIVATION_BITS, EXACT_SUMS, IntegerConv, IntegerNet
from hsicodec.nn.pyramid import Code, rounded


@pytest.fixture(scope="module")
def planes() -> np.ndarray:
    """The first six KLT planes of a 128 x 128 crop of the CAVE sponges eval scene (normalised units)."""
    return cave_planes("sponges", ((64, 192), (64, 192)), 6).astype(np.float64)


def test_float32_sums_are_exact_at_the_largest_input_the_weights_allow() -> None:
    """Each output channel's worst case: every input at +-2**ACTIVATION_BITS with its weight's sign."""
    net = load_coder(find_model()).model.net
    for layer in net.layers:
        for weights in layer.weights:
            values = torch.sign(weights) * 2.0**ACTIVATION_BITS  # patch o makes output channel o's largest sum
            sums32 = F.conv2d(values.to(torch.float32), weights)
            sums64 = F.conv2d(values.to(torch.float64), weights.to(torch.float64))
            assert torch.equal(sums32.to(torch.float64), sums64)
            assert float(sums64.abs().max()) < EXACT_SUMS


def test_weights_too_large_for_exact_sums_are_refused() -> None:
    weights = torch.full((1, 2, 3, 3), float(EXACT_SUMS // 2**ACTIVATION_BITS // 18 + 1))
    with pytest.raises(ValueError):
        IntegerConv([weights], [torch.ones(1)], torch.zeros(1), [[0, 1]])


def _gaussians(model: torch.nn.Module, code: Code) -> list[torch.Tensor]:
    params = []
    model.walk(code, previous_planes(code), lambda level, values, p, mask: params.append(p.clone()))
    return params


def test_a_plane_gets_the_same_gaussians_in_any_batch_and_on_one_thread(planes: np.ndarray) -> None:
    coder = load_coder(find_model())
    code = coder.quantise(planes, 2.0 ** -8)
    batch = _gaussians(coder.model, code)
    alone = _gaussians(coder.model, (code[0][3:4], [b[3:4] for b in code[1]]))  # plane 3 after a plane of zeros
    previous = (code[0][2:4], [b[2:4] for b in code[1]])
    pair = _gaussians(coder.model, previous)  # plane 3 after plane 2, in a batch of two
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _gaussians(coder.model, code)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(batch, single))
    assert all(torch.equal(a[3], b[1]) for a, b in zip(batch, pair))
    assert not all(torch.equal(a[3], b[0]) for a, b in zip(batch, alone))  # the previous plane matters


@pytest.mark.parametrize("step", [2.0 ** -10, 2.0 ** -7, 2.0 ** -4])
def test_the_integer_nets_cost_under_1_percent_of_the_bits_of_the_float_p(planes: np.ndarray, step: float) -> None:
    float_p = load_model(find_model()).to(torch.float64)
    coder = load_coder(find_model())
    subbands = float_p.analyse(torch.from_numpy(planes)[:, None])
    code = rounded(subbands, step)
    with torch.no_grad():
        exact_bits = float(coder.model.bits(code, previous_planes(code)))
        float_bits = float(float_p.bits(code, previous_planes(code)))
    assert exact_bits == pytest.approx(float_bits, rel=0.01)


def test_integer_nets_are_rebuilt_from_their_state(planes: np.ndarray) -> None:
    model = load_model(find_model())
    net = model.exact().net
    copy = IntegerNet.from_state(net.state())
    code = load_coder(find_model()).quantise(planes[:2], 2.0 ** -8)
    assert all(torch.equal(a, b) for a, b in zip(_gaussians(model.exact(), code),
                                                 _gaussians(model.exact((copy, model.exact().low_net)), code)))
