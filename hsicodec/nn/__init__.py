"""Neural networks of the HiFiC family (HiFiC, HiFiCSE, HiFiC3D)."""
