"""The DRAM command record shared by the controller (which writes traces) and the checker."""

from __future__ import annotations

from typing import NamedTuple

COMMAND_KINDS = ("ACT", "PRE", "RD", "WR", "REF")


class Command(NamedTuple):
    """One command on one channel's command bus at one clock cycle.

    `bank` is the bank inside its bank group. REF (all-bank refresh of a rank) uses -1 for
    bankgroup, bank, row and column; PRE uses -1 for row and column.
    """

    cycle: int
    kind: str
    channel: int
    rank: int
    bankgroup: int
    bank: int
    row: int = -1
    column: int = -1
