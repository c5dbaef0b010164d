"""How every command line reports a mistake: one line naming the problem and the value, then exit 2.

A user error (a bad value, a missing or corrupt file, a refused checkpoint) is not a bug, so it gets
``<prog>: <message>`` on stderr and exit status 2, with no traceback. A run that starts and then
fails (a notebook raises, training diverges) is one line and exit status 1. ``--debug``, or the
environment variable ``HNERV_DEBUG=1``, re-raises instead, so the full traceback is shown.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

DEBUG_ENV = "HNERV_DEBUG"

# Errors that come from what the user gave (values, paths, files), in every module of the library.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError)


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Give a parser the ``--debug`` flag (tracebacks instead of one-line errors)."""
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (also: {DEBUG_ENV}=1)")


def debugging(args: argparse.Namespace | None = None) -> bool:
    """True when ``--debug`` was given or ``HNERV_DEBUG`` is set to anything but "" or "0"."""
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def one_line(err: BaseException) -> str:
    """The error's message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(err).split()) or type(err).__name__


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``: how a wrapped low-level error (torch, json, zip) is quoted."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0].strip()}" if lines else type(err).__name__


def guarded(prog: str, body: Callable[[], int], args: argparse.Namespace | None = None, *,
            user_errors: tuple[type[BaseException], ...] = (),
            failures: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``body``; a user error prints one line and returns 2, a failure one line and returns 1.

    ``user_errors`` adds module-specific error types to :data:`USER_ERRORS`; ``failures`` are errors
    of a run that started correctly. Under :func:`debugging` both are re-raised with their traceback.
    """
    try:
        return body()
    except failures as err:
        if debugging(args):
            raise
        print(f"{prog}: FAILED: {one_line(err)}", file=sys.stderr)
        return 1
    except (*USER_ERRORS, *user_errors) as err:
        if debugging(args):
            raise
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return 2
