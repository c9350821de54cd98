"""The `hsicodec` command line: one module per command, shared options in `options`."""
