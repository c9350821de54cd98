"""Latent <-> bitstream for one tile, deterministic across devices and thread counts.

E and the hyper-analysis run on any device. The hyper-synthesis (z -> means,
scales of y) runs on the CPU in float64 on one thread in both encoder and
decoder, so both derive the same table rows. y is coded as round(y - mean)
against zero-mean tables: a tiny mismatch of the mean then shifts a value but
never desynchronises the stream. A CRC of all symbols catches any mismatch.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from hsicodec.entropy import CdfTables, decode_symbols, encode_symbols, symbol_checksum
from hsicodec.errors import DecodeError
from hsicodec.nn.hific import HiFiC


@dataclass
class CodedLatents:
    y_shape: tuple[int, int, int]
    z_shape: tuple[int, int, int]
    y_words: np.ndarray
    z_words: np.ndarray
    symbol_crc: int


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
        """Means and table rows of y from the dequantised z, on the CPU, one thread."""
        with torch.inference_mode(), _single_thread():
            params = self.hyper_synthesis(torch.from_numpy(z_hat)[None])[0, :, : latent_hw[0], : latent_hw[1]]
        means, scales = params.numpy().reshape(2, -1, *latent_hw)
        rows = np.searchsorted(self.scale_bounds, np.maximum(scales, self.lower_scale), side="left")
        return means, rows.astype(np.int32)

    @torch.inference_mode()
    def encode(self, u: np.ndarray) -> CodedLatents:
        """Component planes (C, H, W), H and W multiples of HiFiC.STRIDE -> bitstreams."""
        x = torch.from_numpy(u)[None].to(self.device)
        y = self.model.encoder(x)
        z = self.model.hyperprior.analyse(y)
        y = y[0].double().cpu().numpy()
        z = z[0].double().cpu().numpy()
        z_symbols = np.rint(z - self.z_medians).astype(np.int32)
        z_rows = np.broadcast_to(np.arange(z.shape[0], dtype=np.int32)[:, None, None], z.shape)
        means, y_rows = self._y_parameters(z_symbols + self.z_medians, y.shape[1:])
        y_symbols = np.rint(y - means).astype(np.int32)
        return CodedLatents(
            y_shape=tuple(y.shape),
            z_shape=tuple(z.shape),
            y_words=encode_symbols(y_symbols, y_rows, self.y_tables),
            z_words=encode_symbols(z_symbols, z_rows, self.z_tables),
            symbol_crc=_symbols_crc(z_symbols, y_symbols),
        )

    @torch.inference_mode()
    def decode(self, coded: CodedLatents) -> np.ndarray:
        """Bitstreams -> reconstructed planes (C, H, W) float32 on the CPU."""
        z_shape, y_shape = coded.z_shape, coded.y_shape
        if z_shape[0] != self.z_medians.shape[0] or y_shape[0] != self.model.config.latent_channels:
            raise DecodeError(f"latent shapes {y_shape}/{z_shape} do not fit the model")
        z_rows = np.broadcast_to(np.arange(z_shape[0], dtype=np.int32)[:, None, None], z_shape)
        z_symbols = decode_symbols(coded.z_words, z_rows, self.z_tables)
        means, y_rows = self._y_parameters(z_symbols + self.z_medians, y_shape[1:])
        y_symbols = decode_symbols(coded.y_words, y_rows, self.y_tables)
        if _symbols_crc(z_symbols, y_symbols) != coded.symbol_crc:
            raise DecodeError("decoded symbols fail their checksum (bitstream desynchronised)")
        y_hat = torch.from_numpy((y_symbols + means).astype(np.float32))[None].to(self.device)
        return self.model.generator(y_hat)[0].float().cpu().numpy()


def _symbols_crc(z_symbols: np.ndarray, y_symbols: np.ndarray) -> int:
    return symbol_checksum(np.concatenate([z_symbols.ravel(), y_symbols.ravel()]))
