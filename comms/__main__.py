"""`python -m comms` runs the command line."""

from .cli import main

main()
