"""`python -m model`: the `sourcing` command line (see :mod:`model.entry`)."""

from .entry import main

main()
