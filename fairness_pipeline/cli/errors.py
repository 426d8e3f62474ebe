"""The top of ``fairness-pipeline``: every failure ends as one line on stderr and an exit code, never a traceback.

Typer's pretty exceptions are off (they print every frame's local variables: slow with data frames in scope, and
locals can hold candidate ids or a database URL). Usage errors print click's message on one line; an unexpected
exception prints its type and first line, and its traceback (without local variables) goes to a log file under
``$FAIRNESS_HOME/logs/`` (0600, in a 0700 directory), named in the message.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from typer._click.exceptions import ClickException  # typer 0.29 vendors click; its usage errors derive from this
from typer.core import TyperGroup

from fairness_pipeline.cli.output import EXIT_RUNTIME, first_line, print_error

MAX_SUMMARY = 200
METAVARS = {"int": "N", "int range": "N", "float": "X", "float range": "X", "str": "TEXT", "list[str]": "TEXT"}
"""Help-text placeholders by Typer type label, instead of its badges (``<int>``, ``<str>``, ``<list[str]>``)."""


def plain_metavars(command: Any, ctx: Any) -> None:
    """Give every option of ``command`` (and of its subcommands) a plain placeholder: none for flags (Typer would
    print ``<bool>``, as if ``--json true`` were expected), ``N``, ``TEXT`` or ``PATH`` for values; an explicit
    ``metavar`` (``YYYY-MM-DD``, ``FILE``) is kept."""
    options = [*command.params, command.get_help_option(ctx)]
    for param in options:
        if param is None or param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
            param.metavar = ""
        else:
            label = (param.display_type(ctx) or "").strip("<>")
            param.metavar = METAVARS.get(label, "PATH" if label.lower() in ("path", "file") else label.upper() or None)
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub, ctx)


def _log_file() -> tuple[int, Path]:
    """A new private log file: under ``$FAIRNESS_HOME/logs``, else in the temporary directory."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"error-{stamp}-{os.getpid()}-"
    try:
        from fairness_pipeline import settings

        directory = settings.home_dir() / "logs"
        directory.mkdir(mode=0o700, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=directory)
    except OSError:
        fd, name = tempfile.mkstemp(prefix=f"fairness-pipeline-{prefix}", suffix=".log")
    return fd, Path(name)


def write_traceback(error: BaseException) -> Path:
    """Write the command line and the error's traceback (no local variables) to a new log file; return its path."""
    fd, path = _log_file()
    with os.fdopen(fd, "w", encoding="utf-8") as log:
        log.write(f"{datetime.now(UTC).isoformat()} fairness-pipeline {' '.join(sys.argv[1:])}\n")
        log.writelines(traceback.format_exception(error))
    return path


def report_unexpected(error: Exception) -> int:
    """One line naming the error and its log file; the exit code."""
    summary = first_line(error)[:MAX_SUMMARY] if str(error).strip() else ""
    try:
        where = f"full traceback in {write_traceback(error)}"
    except OSError as log_error:
        where = f"the traceback could not be written to a log file ({log_error})"
    print_error(f"unexpected {type(error).__name__}{': ' + summary if summary else ''}; {where}")
    return EXIT_RUNTIME


class FairnessGroup(TyperGroup):
    """The root command group: runs the command and turns whatever escapes it into one line and an exit code."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            plain_metavars(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        plain_metavars(self, ctx)
        super().format_help(ctx, formatter)

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        import psycopg2

        from fairness_pipeline.store.embedded import EmbeddedServerError

        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # no arguments: the help, which is not an error
                if error.format_message().strip():
                    print(error.format_message(), file=sys.stderr)
                sys.exit(error.exit_code)
            ctx = getattr(error, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            print_error(f"{error.format_message()}{hint}")
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(EXIT_RUNTIME)
        except EmbeddedServerError as error:
            print_error(str(error))
            sys.exit(EXIT_RUNTIME)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:  # the server went away mid-command
            detail = first_line(error)[:MAX_SUMMARY] if str(error).strip() else type(error).__name__
            print_error(f"lost the database connection ({detail}); what was committed stays, run the command again")
            sys.exit(EXIT_RUNTIME)
        except Exception as error:
            sys.exit(report_unexpected(error))
        sys.exit(result if isinstance(result, int) else 0)
