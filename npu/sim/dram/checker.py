"""An independent JEDEC-rule checker: replay a command trace and list every timing violation.

It shares nothing with the controller's scheduling code: the rules below are written as a
table of "command A then command B in the same scope need at least N cycles", plus a few
rules that need more than the last command (tFAW, the data bus, bank state, refresh interval).
For each rule it remembers only the latest earlier command of each kind per scope, which is
enough because a later command always constrains at least as much as an earlier one.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from npu.sim.dram.commands import COMMAND_KINDS, Command
from npu.sim.dram.timing import DramTiming

# How far apart consecutive REFs to one rank may be: JEDEC lets a controller postpone up to
# eight refreshes, so nine tREFI is the longest legal gap.
MAX_REFRESH_GAP_IN_TREFI = 9

SCOPES = ("bank", "bankgroup", "rank", "channel")


@dataclass(frozen=True)
class Violation:
    rule: str
    command: Command  # the command that came too early / in a bad state
    previous: Command | None  # the earlier command it conflicts with, if any
    required: int  # cycles (or state) the rule asks for
    actual: int

    def __str__(self) -> str:
        return (
            f"{self.rule}: {self.command.kind} at cycle {self.command.cycle} "
            f"(ch {self.command.channel} rank {self.command.rank} bg {self.command.bankgroup} "
            f"bank {self.command.bank}) needs {self.required}, got {self.actual}"
            + (f" after {self.previous.kind} at {self.previous.cycle}" if self.previous else "")
        )


@dataclass(frozen=True)
class _PairRule:
    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    scope: str
    gap: int


def _pair_rules(t: DramTiming) -> list[_PairRule]:
    write_end = t.tCWL + t.tBL  # from WR command to the end of its data
    return [
        _PairRule("tRCD", ("ACT",), ("RD", "WR"), "bank", t.tRCD),
        _PairRule("tRAS", ("ACT",), ("PRE",), "bank", t.tRAS),
        _PairRule("tRC", ("ACT",), ("ACT",), "bank", t.tRC),
        _PairRule("tRP", ("PRE",), ("ACT",), "bank", t.tRP),
        _PairRule("tRTP", ("RD",), ("PRE",), "bank", t.tRTP),
        _PairRule("tWR", ("WR",), ("PRE",), "bank", write_end + t.tWR),
        _PairRule("tRRD_L", ("ACT",), ("ACT",), "bankgroup", t.tRRD_L),
        _PairRule("tRRD_S", ("ACT",), ("ACT",), "rank", t.tRRD_S),
        _PairRule("tCCD_L", ("RD",), ("RD",), "bankgroup", t.tCCD_L),
        _PairRule("tCCD_L_WR", ("WR",), ("WR",), "bankgroup", t.tCCD_L_WR),
        _PairRule("tCCD_S", ("RD",), ("RD",), "rank", t.tCCD_S),
        _PairRule("tCCD_S", ("WR",), ("WR",), "rank", t.tCCD_S),
        _PairRule("tWTR_L", ("WR",), ("RD",), "bankgroup", write_end + t.tWTR_L),
        _PairRule("tWTR_S", ("WR",), ("RD",), "rank", write_end + t.tWTR_S),
        _PairRule("tRFC", ("REF",), ("ACT", "REF"), "rank", t.tRFC),
        _PairRule("tRP", ("PRE",), ("REF",), "rank", t.tRP),
        _PairRule("tRC", ("ACT",), ("REF",), "rank", t.tRC),
    ]


def _scope_key(command: Command, scope: str) -> tuple:
    if scope == "bank":
        return (command.channel, command.rank, command.bankgroup, command.bank)
    if scope == "bankgroup":
        return (command.channel, command.rank, command.bankgroup)
    if scope == "rank":
        return (command.channel, command.rank)
    return (command.channel,)


def _validate(command: Command, timing: DramTiming) -> None:
    org = timing.org
    if command.kind not in COMMAND_KINDS:
        raise ValueError(f"trace command {command} has unknown kind {command.kind!r}")
    if not 0 <= command.channel < org.channels or not 0 <= command.rank < org.ranks:
        raise ValueError(f"trace command {command} addresses a channel/rank that does not exist")
    if command.kind != "REF" and not (
        0 <= command.bankgroup < org.bankgroups and 0 <= command.bank < org.banks_per_group
    ):
        raise ValueError(f"trace command {command} addresses a bank that does not exist")


def check_trace(trace: Iterable[Command], timing: DramTiming) -> list[Violation]:
    """Every JEDEC timing / protocol rule the command trace breaks, in trace order.

    The trace may interleave channels; within a channel commands must be in cycle order.
    """
    rules = _pair_rules(timing)
    rules_after: dict[str, list[_PairRule]] = defaultdict(list)
    for rule in rules:
        for kind in rule.after:
            rules_after[kind].append(rule)

    violations: list[Violation] = []
    latest: dict[tuple, Command] = {}  # (kind, scope, scope key) -> latest such command
    recent_acts: dict[tuple, deque] = defaultdict(lambda: deque(maxlen=4))  # per rank
    open_rows: dict[tuple, int] = {}  # bank key -> open row
    last_cycle: dict[int, int] = {}  # per channel
    last_command: dict[int, Command] = {}  # per channel, for the command bus
    last_read: dict[int, Command] = {}  # per channel, latest RD (data bus)
    last_write: dict[int, Command] = {}  # per channel, latest WR (data bus)
    last_refresh: dict[tuple, int] = {}  # per rank: cycle of the latest REF (start: 0)
    refresh_limit = MAX_REFRESH_GAP_IN_TREFI * timing.tREFI
    end_cycle = 0

    def flag(rule: str, command: Command, previous: Command | None, required: int, actual: int):
        violations.append(Violation(rule, command, previous, required, actual))

    for command in trace:
        _validate(command, timing)
        cycle, kind, channel = command.cycle, command.kind, command.channel
        if cycle < last_cycle.get(channel, 0):
            raise ValueError(f"trace is not in cycle order on channel {channel} at {command}")
        last_cycle[channel] = cycle
        end_cycle = max(end_cycle, cycle)

        # One command per cycle per channel.
        previous = last_command.get(channel)
        if previous is not None and previous.cycle == cycle:
            flag("command_bus", command, previous, 1, 0)
        last_command[channel] = command

        # Minimum distance to the latest earlier command of each constraining kind.
        for rule in rules_after.get(kind, ()):
            key = _scope_key(command, rule.scope)
            for before_kind in rule.before:
                earlier = latest.get((before_kind, rule.scope, key))
                if earlier is not None and cycle - earlier.cycle < rule.gap:
                    flag(rule.name, command, earlier, rule.gap, cycle - earlier.cycle)

        rank_key = (channel, command.rank)
        bank_key = _scope_key(command, "bank")
        if kind == "ACT":
            acts = recent_acts[rank_key]
            if len(acts) == 4 and cycle - acts[0].cycle < timing.tFAW:
                flag("tFAW", command, acts[0], timing.tFAW, cycle - acts[0].cycle)
            acts.append(command)
            if bank_key in open_rows:
                flag("bank_already_open", command, None, -1, open_rows[bank_key])
            open_rows[bank_key] = command.row
        elif kind == "PRE":
            open_rows.pop(bank_key, None)
        elif kind in ("RD", "WR"):
            if open_rows.get(bank_key) != command.row:
                flag("row_not_open", command, None, command.row, open_rows.get(bank_key, -1))
            _check_data_bus(command, timing, last_read.get(channel), last_write.get(channel), flag)
            (last_read if kind == "RD" else last_write)[channel] = command
        elif kind == "REF":
            still_open = [key for key in open_rows if key[:2] == rank_key]
            if still_open:
                flag("refresh_with_open_bank", command, None, 0, len(still_open))
            gap = cycle - last_refresh.get(rank_key, 0)
            if gap > refresh_limit:
                flag("tREFI", command, None, refresh_limit, gap)
            last_refresh[rank_key] = cycle

        for scope in SCOPES:
            latest[(kind, scope, _scope_key(command, scope))] = command

    # A trace that runs past the refresh limit must have refreshed every rank in time.
    if end_cycle > refresh_limit:
        for channel in range(timing.org.channels):
            if channel not in last_cycle:
                continue
            for rank in range(timing.org.ranks):
                gap = end_cycle - last_refresh.get((channel, rank), 0)
                if gap > refresh_limit:
                    ghost = Command(end_cycle, "REF", channel, rank, -1, -1)
                    flag("tREFI", ghost, None, refresh_limit, gap)
    return violations


def _check_data_bus(command, timing, last_read, last_write, flag) -> None:
    """Bursts on one channel's data bus may not overlap; switching direction or rank costs idle
    cycles (tRTW after a read burst before a write burst, tRTRS between ranks)."""
    start = command.cycle + (timing.tCL if command.kind == "RD" else timing.tCWL)
    for earlier in (last_read, last_write):
        if earlier is None:
            continue
        earlier_end = earlier.cycle + (timing.tCL if earlier.kind == "RD" else timing.tCWL)
        earlier_end += timing.tBL
        idle = start - earlier_end
        if idle < 0 and start + timing.tBL > earlier_end - timing.tBL:
            flag("tBL", command, earlier, 0, idle)
        elif earlier.rank != command.rank and idle < timing.tRTRS:
            flag("tRTRS", command, earlier, timing.tRTRS, idle)
        elif earlier.kind == "RD" and command.kind == "WR" and idle < timing.tRTW:
            flag("tRTW", command, earlier, timing.tRTW, idle)
