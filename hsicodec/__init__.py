"""hsicodec: learned compression of hyperspectral images (KLT, CDF 9/7 wavelet, a learned context model)."""

__version__ = "0.1.0"
