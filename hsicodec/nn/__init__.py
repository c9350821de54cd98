"""The networks: the CDF 9/7 wavelet (fixed) and the pyramid probability model P (learned)."""
