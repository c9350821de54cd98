"""Training of HiFiC-family models on KLT component planes or raw bands."""
