"""``python -m fdg``: the same program as the ``fdg`` console script."""

from fdg.cli import console

console()
