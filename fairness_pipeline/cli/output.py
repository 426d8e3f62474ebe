"""Console helpers, exit codes and one-line failures shared by the CLI's commands.

Exit codes of ``fairness-pipeline``:

- 0: success.
- 1: a runtime failure: no database reachable, the embedded server refused to start, a pipeline run failed, a
  change the current state refuses (acknowledging a resolved review), or an unexpected error (its traceback, without
  local variables, is written to a log file the message names).
- 2: bad input: a usage error, an invalid date or option value, an unknown tenant or review, nothing stored for the
  tenant and day asked for, a file that cannot be read.
- 3: ``db status`` only: the embedded server is not running.

Every failure prints one line, ``error: ...``, on stderr; stdout carries only data.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3

PIPE_WIDTH = 160
"""Width of tables written to a file or pipe, wide enough not to truncate them."""

console = Console(stderr=True, soft_wrap=True)
"""Human-readable messages go to stderr; stdout carries only data (URLs, JSON, tables)."""


def table_console() -> Console:
    """A console for tables on stdout: the terminal's width, or ``PIPE_WIDTH`` when the output is not a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


def one_line(text: object) -> str:
    """The text with its line breaks and runs of white space folded into single spaces."""
    return " ".join(str(text).split())


def first_line(error: BaseException) -> str:
    """The first line of an error's message (psycopg2 adds hints and details on later lines)."""
    lines = str(error).strip().splitlines()
    return one_line(lines[0]) if lines else type(error).__name__


def print_error(message: str) -> None:
    """``error: message`` as one line on stderr (the message is printed literally, never as markup)."""
    console.print(f"[red]error:[/red] {escape(one_line(message))}", highlight=False)


def fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    """Print ``error: message`` on one line and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


def parse_day(value: str, option: str) -> date:
    """A ``YYYY-MM-DD`` option value as a date; a usage failure naming the option otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        fail(f"{option} {value!r} is not a valid date: write YYYY-MM-DD ({exc})", EXIT_USAGE)


def parse_optional_day(value: str | None, option: str) -> date | None:
    return None if value is None else parse_day(value, option)


def profile_option() -> typer.models.OptionInfo:
    """``--profile``: a risk weight profile by name, or a YAML file holding one profile."""
    return typer.Option(
        "--profile",
        metavar="NAME|FILE",
        help="Risk weight profile: default, hiring, nyc_ll144, eu_ai_act_high_risk, or a YAML file holding one "
        "profile (the format of risk/profiles.yaml).",
    )
