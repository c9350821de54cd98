"""P's nets in integer arithmetic: the same Gaussians on every machine, at the speed of float32 convolutions.

A net trained in floating point (3x3 convolutions with ReLUs between) is
turned into one whose convolutions multiply integers. Each layer's inputs, in
groups of one kind (the first layer's images, values and indicators differ in
size by orders of magnitude), are divided by a power of two set by the group's
largest magnitude in each sample and rounded to integers of at most
ACTIVATION_BITS bits; its weights are integers, each output channel's (per
group) scaled so that their absolute values sum to about WEIGHT_SUM. Every
partial sum of a convolution is then an integer below 2**24 in magnitude,
which float32 holds exactly, so a convolution's result does not depend on its
order of summation: not on the machine, the library, the threads or the
batch. Units, scales, biases and ReLUs are elementwise float32 operations,
each rounded once as IEEE 754 prescribes. Weights are rounded once, when a
model is exported, and stored with it; what the rounding costs in bits is
measured in docs/core-bakeoff.md.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATION_BITS = 11
"""Inputs of a convolution are integers of magnitude at most 2**ACTIVATION_BITS."""
WEIGHT_SUM = 2**12
"""The absolute values of an output channel's integer weights (over one input group) sum to about this."""
EXACT_SUMS = 2**24
"""float32 holds every integer below this exactly."""

Groups = list[list[int]]
"""Input channels by kind: each group's values are rounded with a unit of their own."""


class IntegerConv(nn.Module):
    """A 3x3 convolution (zero padding 1) of integer weights over integer-rounded groups of its inputs."""

    def __init__(self, weights: list[torch.Tensor], scales: list[torch.Tensor], bias: torch.Tensor,
                 groups: Groups) -> None:
        super().__init__()
        self.groups = groups
        self.weights = [w.to(torch.float32) for w in weights]  # (out, len(group), 3, 3), integer values
        self.scales = [s.to(torch.float32) for s in scales]  # (out,): a unit of the weights of each group
        self.bias = bias.to(torch.float32)
        if sorted(c for group in groups for c in group) != list(range(sum(w.shape[1] for w in self.weights))):
            raise ValueError("the input groups of an integer convolution must split its inputs")
        for w in self.weights:
            largest_sum = float(w.abs().sum((1, 2, 3)).max()) * 2**ACTIVATION_BITS
            if not torch.equal(w, torch.round(w)) or largest_sum >= EXACT_SUMS:
                raise ValueError("integer convolution weights are not integers small enough for exact float32 sums")

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, groups: Groups) -> IntegerConv:
        """The convolution `conv` with its weights rounded, per output channel and input group, to integers
        whose absolute values sum to about WEIGHT_SUM."""
        weight = conv.weight.detach().to(torch.float64).cpu()
        weights, scales = [], []
        for group in groups:
            part = weight[:, group]
            scale = (part.abs().sum((1, 2, 3)) / WEIGHT_SUM).clamp_min(torch.finfo(torch.float64).tiny)
            weights.append(torch.round(part / scale[:, None, None, None]))
            scales.append(scale)
        return cls(weights, scales, conv.bias.detach().cpu(), groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, out, H, W) float32, the same on every machine: the bias plus, group after group,
        each group's integer sums times its unit times its weights' scale."""
        out = None
        for group, weights, scales in zip(self.groups, self.weights, self.scales):
            values, unit = _integers(x if len(self.groups) == 1 else x[:, group])
            term = F.conv2d(values, weights, padding=1).mul_((unit[:, None] * scales[None, :])[:, :, None, None])
            out = term.add_(self.bias[None, :, None, None]) if out is None else out.add_(term)
        return out

    def state(self) -> dict:
        return {"groups": self.groups, "weights": [w.to(torch.int16) for w in self.weights], "scales": self.scales,
                "bias": self.bias}

    @classmethod
    def from_state(cls, state: dict) -> IntegerConv:
        return cls(state["weights"], state["scales"], state["bias"], state["groups"])


class IntegerNet(nn.Module):
    """IntegerConvs with ReLUs between them: a trained net of 3x3 convolutions and ReLUs, in integers."""

    def __init__(self, layers: list[IntegerConv]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @classmethod
    def from_float(cls, net: nn.Sequential, groups: Groups) -> IntegerNet:
        """`net` (Conv2d 3x3 padding 1 and ReLU alternating), its first layer's inputs in `groups`."""
        convs = [layer for layer in net if isinstance(layer, nn.Conv2d)]
        if len(convs) != len(net) // 2 + 1 or any(c.kernel_size != (3, 3) or c.padding != (1, 1) for c in convs):
            raise ValueError("an integer net is made from 3x3 convolutions with ReLUs between them")
        return cls([IntegerConv.from_conv(conv, groups if i == 0 else [list(range(conv.in_channels))])
                    for i, conv in enumerate(convs)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == 0 else layer(torch.relu_(x))
        return x

    def state(self) -> list[dict]:
        return [layer.state() for layer in self.layers]

    @classmethod
    def from_state(cls, state: list[dict]) -> IntegerNet:
        return cls([IntegerConv.from_state(layer) for layer in state])


def _integers(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(round(x / unit) as float32, unit as float32) with each sample's unit the power of two that brings its largest
    magnitude below 2**ACTIVATION_BITS (all exact: frexp, a power of two built exactly, IEEE division)."""
    _, exponents = torch.frexp(x.abs().flatten(1).amax(dim=1))  # largest magnitude < 2**exponent
    unit = torch.tensor([math.ldexp(1.0, int(e) - ACTIVATION_BITS) for e in exponents], dtype=x.dtype)
    return torch.round(x / unit[:, None, None, None]).to(torch.float32), unit.to(torch.float32)
