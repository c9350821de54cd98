"""Errors that the command line reports as one line and a non-zero exit."""


class HsicodecError(Exception):
    """Base class of every error hsicodec raises on purpose."""


class InputError(HsicodecError):
    """A scene or option that cannot be compressed (unreadable, empty, NaN...)."""


class ContainerError(HsicodecError):
    """A `.hsic` file that is truncated, corrupt or of an unknown version."""


class DecodeError(ContainerError):
    """A bitstream whose decoded symbols do not match the stored checksum."""


class ModelError(HsicodecError):
    """A checkpoint that is missing, unknown, tampered with or incompatible."""
