"""Run the command line as ``python -m dicommedia``."""

from dicommedia.cli import main

main()
