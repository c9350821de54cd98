"""Latent <-> bitstream for one tile, deterministic across devices and thread counts.

E and the hyper-analysis run on any device. The hyper-synthesis (z -> means,
scales of y) runs on the CPU in float64 on one thread in both encoder and
decoder, so both derive the same table rows. y is coded as round(y - mean)
against zero-mean tables: a tiny mismatch of the mean then shifts a value but
never desynchronises the stream. A CRC of all symbols catches any mismatch.

A latent step Δ (stored in the file header) trades rate for quality without
another model: y is coded as round((y - mean) / Δ) with the table rows of
scale / Δ, and decoded as Δ * symbol + mean. Δ = 1 is the trained step.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from hsicodec.container import CodedLatents
from hsicodec.entropy import CdfTables, decode_symbols, encode_symbols, symbol_checksum
from hsicodec.errors import DecodeError
from hsicodec.nn.hific import HiFiC


@dataclass
class Analysis:
    """A tile's latents before entropy coding: y, z's symbols, and y's means and scales (float64)."""

    y: np.ndarray
    z_symbols: np.ndarray
    means: np.ndarray
    scales: np.ndarray


@contextmanager
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class LatentCoder:
    """Codes the latents of one model; `device` runs E, the hyper-analysis and G."""

    def __init__(self, model: HiFiC, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device
        prior = model.hyperprior
        self.z_tables = CdfTables.from_entropy_model(prior.entropy_bottleneck)
        self.y_tables = CdfTables.from_entropy_model(prior.gaussian_conditional)
        self.z_medians = prior.entropy_bottleneck._get_medians().detach().cpu().double().reshape(-1, 1, 1).numpy()
        self.scale_bounds = prior.gaussian_conditional.scale_table.detach().cpu().double().numpy()[:-1]
        self.lower_scale = float(prior.gaussian_conditional.lower_bound_scale.bound.item())
        self.hyper_synthesis = copy.deepcopy(prior.synthesis).cpu().double().eval()

    def _y_parameters(self, z_hat: np.ndarray, latent_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Means and scales of y from the dequantised z, on the CPU in float64, one thread."""
        with torch.inference_mode(), _single_thread():
            params = self.hyper_synthesis(torch.from_numpy(z_hat)[None])[0, :, : latent_hw[0], : latent_hw[1]]
        means, scales = params.numpy().reshape(2, -1, *latent_hw)
        return means, scales

    def _rows(self, scales: np.ndarray, step: float) -> np.ndarray:
        """Table row of each y symbol: the scale in units of the latent step."""
        rows = np.searchsorted(self.scale_bounds, np.maximum(scales / step, self.lower_scale), side="left")
        return rows.astype(np.int32)

    @torch.inference_mode()
    def analyse(self, u: np.ndarray) -> Analysis:
        """Component planes (C, H, W), H and W multiples of HiFiC.STRIDE -> latents (E, hyperprior)."""
        x = torch.from_numpy(u)[None].to(self.device)
        y = self.model.encoder(x)
        z = self.model.hyperprior.analyse(y)
        y = y[0].double().cpu().numpy()
        z_symbols = np.rint(z[0].double().cpu().numpy() - self.z_medians).astype(np.int32)
        means, scales = self._y_parameters(z_symbols + self.z_medians, y.shape[1:])
        return Analysis(y, z_symbols, means, scales)

    def code(self, latents: Analysis, step: float = 1.0) -> CodedLatents:
        """Range-code analysed latents with latent step `step`."""
        z_symbols = latents.z_symbols
        y_symbols = _y_symbols(latents, step)
        return CodedLatents(
            y_shape=tuple(latents.y.shape),
            z_shape=tuple(z_symbols.shape),
            y_words=encode_symbols(y_symbols, self._rows(latents.scales, step), self.y_tables),
            z_words=encode_symbols(z_symbols, _z_rows(z_symbols.shape), self.z_tables),
            symbol_crc=_symbols_crc(z_symbols, y_symbols),
        )

    def dequantise(self, latents: Analysis, step: float = 1.0) -> np.ndarray:
        """The y a decoder gets from `code(latents, step)`, without the range coder."""
        return (_y_symbols(latents, step) * step + latents.means).astype(np.float32)

    def encode(self, u: np.ndarray, step: float = 1.0) -> CodedLatents:
        """Component planes (C, H, W) -> bitstreams."""
        return self.code(self.analyse(u), step)

    def decode_latents(self, coded: CodedLatents, step: float = 1.0) -> np.ndarray:
        """Bitstreams coded with latent step `step` -> the dequantised y (float32), checksum-verified."""
        z_shape, y_shape = coded.z_shape, coded.y_shape
        if z_shape[0] != self.z_medians.shape[0] or y_shape[0] != self.model.config.latent_channels:
            raise DecodeError(f"latent shapes {y_shape}/{z_shape} do not fit the model")
        z_symbols = decode_symbols(coded.z_words, _z_rows(z_shape), self.z_tables)
        means, scales = self._y_parameters(z_symbols + self.z_medians, y_shape[1:])
        y_symbols = decode_symbols(coded.y_words, self._rows(scales, step), self.y_tables)
        if _symbols_crc(z_symbols, y_symbols) != coded.symbol_crc:
            raise DecodeError("decoded symbols fail their checksum (bitstream desynchronised)")
        return (y_symbols * step + means).astype(np.float32)

    @torch.inference_mode()
    def synthesise(self, latents: list[np.ndarray], batch: int = 1) -> list[np.ndarray]:
        """Dequantised y of several tiles -> their planes (C, H, W) float32 on the CPU.

        Tiles of the same latent shape go through G `batch` at a time, faster than
        one by one on a CPU as well as on a GPU. A short group is padded with zero
        latents to `batch`: G's arithmetic depends on the batch size, so a fixed
        size makes each tile's planes independent of which tiles were decoded with it.
        """
        planes: list[np.ndarray | None] = [None] * len(latents)
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i, y_hat in enumerate(latents):
            shapes.setdefault(y_hat.shape, []).append(i)
        for shape, members in shapes.items():
            for start in range(0, len(members), batch):
                group = members[start:start + batch]
                stacked = np.zeros((batch, *shape), dtype=np.float32)
                for slot, i in enumerate(group):
                    stacked[slot] = latents[i]
                out = self.model.generator(torch.from_numpy(stacked).to(self.device)).float().cpu().numpy()
                for slot, i in enumerate(group):
                    planes[i] = out[slot]
        return planes

    def decode(self, coded: CodedLatents, step: float = 1.0) -> np.ndarray:
        """Bitstreams coded with latent step `step` -> reconstructed planes (C, H, W) float32 on the CPU."""
        return self.synthesise([self.decode_latents(coded, step)])[0]


def _y_symbols(latents: Analysis, step: float) -> np.ndarray:
    """y's coded values: round((y - mean) / step)."""
    return np.rint((latents.y - latents.means) / step).astype(np.int32)


def _z_rows(shape: tuple[int, ...]) -> np.ndarray:
    """Table row of each z symbol: its channel (the EntropyBottleneck has one table per channel)."""
    return np.broadcast_to(np.arange(shape[0], dtype=np.int32)[:, None, None], shape)


def _symbols_crc(z_symbols: np.ndarray, y_symbols: np.ndarray) -> int:
    return symbol_checksum(np.concatenate([z_symbols.ravel(), y_symbols.ravel()]))
