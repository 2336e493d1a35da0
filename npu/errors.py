"""The common base of the errors a user can fix by changing an input.

Every error class that reports a problem with something the user supplied - a configuration
file, an assembly source, a program binary, a checkpoint, a model the NPU cannot hold, a program
that faults on the simulator - derives from `UserError` (next to the builtin it has always been,
e.g. `ValueError`, so existing `except ValueError` code keeps working). `npu.cli.main` prints
such an error as one line `npu <subcommand>: <message>` and exits with status 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


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
