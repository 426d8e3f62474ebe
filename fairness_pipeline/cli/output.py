"""Console helpers shared by the CLI's commands."""

from __future__ import annotations

import sys

from rich.console import Console

PIPE_WIDTH = 160
"""Width of tables written to a file or pipe, wide enough not to truncate them."""


def table_console() -> Console:
    """A console for tables on stdout: the terminal's width, or ``PIPE_WIDTH`` when the output is not a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
