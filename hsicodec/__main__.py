"""`python -m hsicodec` runs the command line."""
from hsicodec.cli.main import main

main()
