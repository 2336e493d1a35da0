"""The common base of the errors a user can fix by changing an input.

Every error class that reports a problem with something the user supplied - a configuration
file, an assembly source, a program binary, a checkpoint, a model the NPU cannot hold, a program
that faults on the simulator - derives from `UserError` (next to the builtin it has always been,
e.g. `ValueError`, so existing `except ValueError` code keeps working). `npu.cli.main` prints
such an error as one line `npu <subcommand>: error: <message>` and exits with status 2 (see
`run_command`); anything else is a bug and keeps its traceback. The argparse types below reject
bad numbers at parse time, naming the option (argparse's own `error: argument --x: ...`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TextIO


class UserError(Exception):
    """A problem with the user's input; the message names the file, key, line or instruction."""


def one_line(error: BaseException) -> str:
    """The one-line form of an error message. Assembly errors add the source line and a caret
    under the first line (dropped here); an error listing several problems, one per line (a
    configuration file with more than one mistake), shows the first and counts the rest."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    more = len(lines) - 1
    if more and getattr(error, "lists_problems", False):
        return f"{lines[0]} (and {more} more problem{'s' if more > 1 else ''})"
    return lines[0]


# Builtin errors that, raised while a command reads its inputs, are the user's to fix: a path
# that does not exist, is a folder, or cannot be read. (ValueError stays for the library code
# that checks user values with it; the rest is a bug and keeps its traceback.)
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, ValueError)
USER_ERROR_STATUS = 2  # the exit status of a user error (argparse uses 2 for bad arguments too)


def report_user_error(prog: str, error: BaseException, stream: TextIO | None = None) -> int:
    """Print `<prog>: error: <one line>` and return the exit status of a user error."""
    print(f"{prog}: error: {one_line(error)}", file=stream if stream is not None else sys.stderr, flush=True)
    return USER_ERROR_STATUS


def run_command(prog: str, action: Callable[[], object]) -> int:
    """The error boundary of a command-line entry point: run `action`; a user error becomes one
    line on stderr and exit status 2, anything else (a bug) propagates with its traceback."""
    try:
        action()
    except USER_ERRORS as error:
        return report_user_error(prog, error)
    return 0


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts of prompts, steps, instructions, threads)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, offsets)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 0")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (temperatures)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (rates, averages)."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def probability(text: str) -> float:
    """argparse type: a float in (0, 1] (confidence thresholds)."""
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be in (0, 1]")
    return value
