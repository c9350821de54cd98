"""hsicodec: learned compression of hyperspectral images (HiFiC, HiFiCSE, HiFiC3D)."""

__version__ = "0.1.0"
