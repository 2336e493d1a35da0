"""One channel's memory controller: request queue, FR-FCFS scheduling, page policy, refresh.

The controller is event driven: instead of ticking every clock it keeps, for every bank, bank
group, rank and the data bus, the first cycle at which each command kind becomes legal. To pick
the next command it asks every bank with queued work for its next command and that command's
earliest legal cycle, then issues the earliest one (row hits first on ties, then the oldest
request): exactly what a cycle-by-cycle FR-FCFS scheduler would do, without the idle cycles.
Time jumps straight to the next command, arrival or refresh.

Fast path (`row_hit_runs=True`, open-page policy only): NPU traffic is mostly long streams
whose bursts hit rows that are already open. While the oldest waiting bursts form such a run -
same direction, same rank, every row open, nothing else in the queue - FR-FCFS issues them in
arrival order, one every `s = max(1, tCCD_S, tBL)` cycles or at arrival, so their issue cycles
have a closed form, c[i] = max(c[i-1] + s, arrival[i]), computed for a whole run at once with
numpy (`_row_hit_run`). The run is cut at the first burst where that closed form could differ
from what the one-command-at-a-time scheduler would do (a bank or bank-group constraint that
binds, a refresh falling due, another kind of burst entering the queue), so both paths give
the same commands at the same cycles; tests/test_dram.py compares them.

Bursts are plain lists (fast in CPython) indexed by the constants below.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from npu.sim.dram.commands import Command
from npu.sim.dram.timing import DramTiming

# Fields of a queued burst. ORDER is the burst's position in the list given to `serve`.
ARRIVAL, ORDER, BANK, ROW, COLUMN, IS_WRITE = range(6)

# The fast path looks at most RUN_WINDOW bursts ahead at a time (bounds the numpy work per try)
# and is only tried when at least MIN_RUN bursts could form a run (below that it does not pay).
RUN_WINDOW = 1024
MIN_RUN = 8
_NEVER = 1 << 62  # an ACT count never reached: "do not retry on an ACT"

PAGE_POLICIES = ("open", "close")

HIT, MISS, CONFLICT = 0, 1, 2  # how a burst found its bank


@dataclass
class ChannelStats:
    reads: int = 0  # RD commands (bursts)
    writes: int = 0  # WR commands (bursts)
    row_hits: int = 0
    row_misses: int = 0  # bank was closed
    row_conflicts: int = 0  # another row was open
    activates: int = 0
    precharges: int = 0
    refreshes: int = 0
    data_bus_busy_cycles: int = 0
    first_arrival_cycle: int = -1
    last_completion_cycle: int = 0
    latency_cycles_total: int = 0  # sum over bursts of completion - arrival


class BurstColumns(NamedTuple):
    """The bursts given to `serve` as numpy int64 arrays, one entry per burst (for the fast path)."""

    arrival: np.ndarray
    bank: np.ndarray  # rank-major bank index inside the channel
    row: np.ndarray
    column: np.ndarray
    is_write: np.ndarray


class BurstLists(NamedTuple):
    """The same bursts as Python lists (fast to index one at a time)."""

    arrival: list[int]
    bank: list[int]
    row: list[int]
    column: list[int]
    is_write: list[bool]

    def as_columns(self) -> BurstColumns:
        """The same bursts as numpy arrays."""
        return BurstColumns(*(np.array(values, dtype=np.int64) for values in self))


# Everything that decides what a controller does next (besides its queue, which is empty
# between `serve` calls): two controllers with equal values here behave identically.
STATE_FIELDS = (
    "now", "open_row", "bank_next_act", "bank_next_pre", "bank_next_col", "group_next_act",
    "group_next_rd", "group_next_wr", "rank_next_act", "rank_next_rd", "rank_next_wr",
    "rank_next_ref", "rank_recent_acts", "refresh_due", "bus_end", "bus_rank", "bus_was_read",
)
# The STATE_FIELDS that are only ever lower bounds on a cycle (used as max(now, value)).
BOUND_FIELDS = (
    "bank_next_act", "bank_next_pre", "bank_next_col", "group_next_act", "group_next_rd",
    "group_next_wr", "rank_next_act", "rank_next_rd", "rank_next_wr", "rank_next_ref",
)
_new_state_ids = itertools.count(1)


class ChannelController:
    """Schedules the bursts of one channel; `serve` runs until they are all done."""

    def __init__(
        self,
        channel: int,
        timing: DramTiming,
        page_policy: str = "open",
        queue_depth: int = 32,
        trace: list[Command] | None = None,
        row_hit_runs: bool = True,
    ):
        if page_policy not in PAGE_POLICIES:
            raise ValueError(f"page_policy must be one of {PAGE_POLICIES}, got {page_policy!r}")
        if queue_depth < 1:
            raise ValueError(f"queue_depth must be >= 1, got {queue_depth}")
        org = timing.org
        self.channel = channel
        self.timing = timing
        self.close_page = page_policy == "close"
        self.queue_depth = queue_depth
        self.trace = trace
        self.row_hit_runs = row_hit_runs and not self.close_page
        self.stats = ChannelStats()

        banks = org.banks_per_channel
        self.bank_rank = [b // org.banks_per_rank for b in range(banks)]
        self.bank_group = [b // org.banks_per_group for b in range(banks)]  # rank-major index
        self.bank_in_group = [b % org.banks_per_group for b in range(banks)]
        self.group_in_rank = [(b // org.banks_per_group) % org.bankgroups for b in range(banks)]

        self.now = 0  # first cycle at which the command bus is free
        self.open_row = [-1] * banks
        self.bank_next_act = [0] * banks  # tRC, tRP
        self.bank_next_pre = [0] * banks  # tRAS, tRTP, tWR
        self.bank_next_col = [0] * banks  # tRCD (RD and WR alike)
        groups = org.ranks * org.bankgroups
        self.group_next_act = [0] * groups  # tRRD_L
        self.group_next_rd = [0] * groups  # tCCD_L, tWTR_L
        self.group_next_wr = [0] * groups  # tCCD_L_WR
        self.rank_next_act = [0] * org.ranks  # tRRD_S, tRFC
        self.rank_next_rd = [0] * org.ranks  # tCCD_S, tWTR_S
        self.rank_next_wr = [0] * org.ranks  # tCCD_S
        self.rank_next_ref = [0] * org.ranks  # tRFC
        self.rank_recent_acts = [deque(maxlen=4) for _ in range(org.ranks)]  # tFAW
        # Refresh: ranks are staggered evenly across one tREFI.
        self.refresh_due = [
            timing.tREFI * (rank + 1) // org.ranks for rank in range(org.ranks)
        ]
        self.bus_end = 0  # cycle the latest data burst ends
        self.bus_rank = -1
        self.bus_was_read = True
        # Controllers of one model with equal state_id are in equal states: all start in the
        # same state (id 0), `serve` (the only thing that changes the state) gives a fresh id,
        # `copy_state_from` copies it.
        self.state_id = 0
        # Cycles between column commands of one run (fast path): command bus, tCCD_S, data bus.
        self.run_spacing = max(1, timing.tCCD_S, timing.tBL)
        self.bank_rank_array = np.array(self.bank_rank, dtype=np.int64)
        self.bank_group_array = np.array(self.bank_group, dtype=np.int64)

        self.bank_queues: dict[int, list[list]] = {}  # bank -> queued bursts, oldest first
        self.queued = 0
        self.to_close: set[int] = set()  # close-page: open banks without queued hits
        self.outcome: dict[int, int] = {}  # burst order -> HIT/MISS/CONFLICT, first command

    # ---------------------------------------------------------------- issuing commands

    def _record(self, cycle: int, kind: str, bank: int, row: int = -1, column: int = -1) -> None:
        if self.trace is not None:
            self.trace.append(
                Command(cycle, kind, self.channel, self.bank_rank[bank], self.group_in_rank[bank],
                        self.bank_in_group[bank], row, column)
            )

    def _activate(self, cycle: int, bank: int, row: int) -> None:
        t = self.timing
        rank, group = self.bank_rank[bank], self.bank_group[bank]
        self.open_row[bank] = row
        self.bank_next_act[bank] = max(self.bank_next_act[bank], cycle + t.tRC)
        self.bank_next_pre[bank] = max(self.bank_next_pre[bank], cycle + t.tRAS)
        self.bank_next_col[bank] = max(self.bank_next_col[bank], cycle + t.tRCD)
        self.group_next_act[group] = max(self.group_next_act[group], cycle + t.tRRD_L)
        self.rank_next_act[rank] = max(self.rank_next_act[rank], cycle + t.tRRD_S)
        self.rank_recent_acts[rank].append(cycle)
        self.stats.activates += 1
        self._record(cycle, "ACT", bank, row)

    def _precharge(self, cycle: int, bank: int) -> None:
        self.open_row[bank] = -1
        self.bank_next_act[bank] = max(self.bank_next_act[bank], cycle + self.timing.tRP)
        self.to_close.discard(bank)
        self.stats.precharges += 1
        self._record(cycle, "PRE", bank)

    def _column(self, cycle: int, bank: int, burst: list) -> int:
        """Issue RD or WR for `burst`; returns the cycle its data transfer ends."""
        t = self.timing
        rank, group = self.bank_rank[bank], self.bank_group[bank]
        if burst[IS_WRITE]:
            done = cycle + t.tCWL + t.tBL
            self.bank_next_pre[bank] = max(self.bank_next_pre[bank], done + t.tWR)
            self.group_next_wr[group] = max(self.group_next_wr[group], cycle + t.tCCD_L_WR)
            self.group_next_rd[group] = max(self.group_next_rd[group], done + t.tWTR_L)
            self.rank_next_wr[rank] = max(self.rank_next_wr[rank], cycle + t.tCCD_S)
            self.rank_next_rd[rank] = max(self.rank_next_rd[rank], done + t.tWTR_S)
            self.stats.writes += 1
            self._record(cycle, "WR", bank, burst[ROW], burst[COLUMN])
        else:
            done = cycle + t.tCL + t.tBL
            self.bank_next_pre[bank] = max(self.bank_next_pre[bank], cycle + t.tRTP)
            self.group_next_rd[group] = max(self.group_next_rd[group], cycle + t.tCCD_L)
            self.rank_next_rd[rank] = max(self.rank_next_rd[rank], cycle + t.tCCD_S)
            self.stats.reads += 1
            self._record(cycle, "RD", bank, burst[ROW], burst[COLUMN])
        self.bus_end = done
        self.bus_rank = rank
        self.bus_was_read = not burst[IS_WRITE]
        self.stats.data_bus_busy_cycles += t.tBL
        return done

    def _refresh(self, rank: int) -> None:
        """Close every open bank of `rank`, then REF it; the next refresh is due tREFI later."""
        t = self.timing
        org = t.org
        self.now = max(self.now, self.refresh_due[rank])
        first = rank * org.banks_per_rank
        for bank in range(first, first + org.banks_per_rank):
            if self.open_row[bank] >= 0:
                cycle = max(self.now, self.bank_next_pre[bank])
                self._precharge(cycle, bank)
                self.now = cycle + 1
        cycle = max(self.now, self.rank_next_ref[rank],
                    max(self.bank_next_act[first: first + org.banks_per_rank]))
        self.rank_next_act[rank] = max(self.rank_next_act[rank], cycle + t.tRFC)
        self.rank_next_ref[rank] = cycle + t.tRFC
        self.refresh_due[rank] += t.tREFI
        self.stats.refreshes += 1
        self._record(cycle, "REF", first)
        self.now = cycle + 1

    def refresh_until(self, cycle: int) -> None:
        """Issue every refresh that falls due up to `cycle` (used while the channel is idle)."""
        while min(self.refresh_due) <= cycle:
            self._refresh(self.refresh_due.index(min(self.refresh_due)))

    # ---------------------------------------------------------------- scheduling

    def _admit(self, burst: list) -> None:
        queue = self.bank_queues.get(burst[BANK])
        if queue is None:
            self.bank_queues[burst[BANK]] = [burst]
        else:
            queue.append(burst)
        self.queued += 1
        if self.stats.first_arrival_cycle < 0:
            self.stats.first_arrival_cycle = burst[ARRIVAL]

    def _next_command(self) -> tuple:
        """(cycle, kind, bank, burst) of the command FR-FCFS issues next.

        priority 0 = row hit (column command), 1 = ACT/PRE for a queued request, 2 = close-page
        PRE of an idle bank. Candidates are ranked by (cycle, priority, age): earlier cycle
        first, then row hits, then the oldest request.
        """
        t = self.timing
        now = self.now
        open_row = self.open_row
        bank_rank, bank_group = self.bank_rank, self.bank_group
        # Earliest RD / WR cycle the data bus allows, for the rank that used it last and for
        # the others (which must leave tRTRS idle cycles).
        bus_end, bus_rank = self.bus_end, self.bus_rank
        read_same = bus_end - t.tCL
        read_other = read_same + (t.tRTRS if bus_rank >= 0 else 0)
        write_same = bus_end - t.tCWL + (t.tRTW if self.bus_was_read else 0)
        write_other = max(write_same, bus_end - t.tCWL + (t.tRTRS if bus_rank >= 0 else 0))
        bank_next_col, bank_next_pre, bank_next_act = (
            self.bank_next_col, self.bank_next_pre, self.bank_next_act)
        group_next_rd, group_next_wr, group_next_act = (
            self.group_next_rd, self.group_next_wr, self.group_next_act)
        rank_next_rd, rank_next_wr, rank_next_act = (
            self.rank_next_rd, self.rank_next_wr, self.rank_next_act)
        best_key = None
        best = None
        for bank, queue in self.bank_queues.items():
            row = open_row[bank]
            rank = bank_rank[bank]
            if row >= 0:
                for burst in queue:
                    if burst[ROW] == row:
                        group = bank_group[bank]
                        if burst[IS_WRITE]:
                            kind = "WR"
                            cycle = max(now, bank_next_col[bank], group_next_wr[group],
                                        rank_next_wr[rank],
                                        write_same if rank == bus_rank else write_other)
                        else:
                            kind = "RD"
                            cycle = max(now, bank_next_col[bank], group_next_rd[group],
                                        rank_next_rd[rank],
                                        read_same if rank == bus_rank else read_other)
                        key = (cycle, 0, burst[ORDER])
                        break
                else:
                    burst = queue[0]
                    kind = "PRE"
                    key = (max(now, bank_next_pre[bank]), 1, burst[ORDER])
            else:
                burst = queue[0]
                kind = "ACT"
                acts = self.rank_recent_acts[rank]
                faw = acts[0] + t.tFAW if len(acts) == 4 else 0
                group = bank_group[bank]
                cycle = max(now, bank_next_act[bank], group_next_act[group],
                            rank_next_act[rank], faw)
                key = (cycle, 1, burst[ORDER])
            if best_key is None or key < best_key:
                best_key, best = key, (kind, bank, burst)
        for bank in self.to_close:
            if bank in self.bank_queues:
                continue
            key = (max(now, bank_next_pre[bank]), 2, bank)
            if best_key is None or key < best_key:
                best_key, best = key, ("PRE", bank, None)
        return best_key[0], *best

    def _issue(self, cycle: int, kind: str, bank: int, burst: list | None, done: list[int]) -> None:
        stats = self.stats
        if kind == "ACT":
            self.outcome.setdefault(burst[ORDER], MISS)
            self._activate(cycle, bank, burst[ROW])
        elif kind == "PRE":
            if burst is not None:
                self.outcome.setdefault(burst[ORDER], CONFLICT)
            self._precharge(cycle, bank)
        else:
            end = self._column(cycle, bank, burst)
            outcome = self.outcome.pop(burst[ORDER], HIT)
            if outcome == HIT:
                stats.row_hits += 1
            elif outcome == MISS:
                stats.row_misses += 1
            else:
                stats.row_conflicts += 1
            stats.latency_cycles_total += end - burst[ARRIVAL]
            stats.last_completion_cycle = max(stats.last_completion_cycle, end)
            done[burst[ORDER]] = end
            queue = self.bank_queues[bank]
            queue.remove(burst)
            self.queued -= 1
            if not queue:
                del self.bank_queues[bank]
            if self.close_page and not any(b[ROW] == burst[ROW] for b in queue):
                self.to_close.add(bank)
        self.now = cycle + 1

    def serve(self, lists: BurstLists, done: list[int], columns: BurstColumns | None = None) -> None:
        """Schedule the bursts in `lists` (sorted by arrival cycle) until all are done.

        The cycle the data transfer of the burst at position i ends is written to done[i].
        A burst enters the queue as the list [arrival, order, bank, row, column, is_write],
        with order = its position. `columns` (the same bursts as arrays, for the fast path) is
        built here if not given.
        """
        self.state_id = next(_new_state_ids)
        arrival, bank_of, row_of, column_of, write_of = lists
        if not self.row_hit_runs or len(arrival) < MIN_RUN:
            columns = None  # no fast path
        elif columns is None:
            columns = lists.as_columns()
        depth = self.queue_depth
        count = len(arrival)
        index = 0
        # The fast path is tried again once the oldest waiting burst reaches next_run_try, or
        # (when a burst that does not fit blocked it) once another ACT has opened a row. Tries
        # that fail in a row space out (random traffic rarely has runs).
        next_run_try, run_try_activates, failed_tries = 0, 0, 0
        while True:
            while index < count and self.queued < depth and arrival[index] <= self.now:
                self._admit([arrival[index], index, bank_of[index], row_of[index], column_of[index],
                             write_of[index]])
                index += 1
            if not self.queued and not self.to_close:
                if index == count:
                    return
                self.refresh_until(arrival[index])
                self.now = max(self.now, arrival[index])
                continue
            if columns is not None and (index - self.queued >= next_run_try
                                        or self.stats.activates >= run_try_activates):
                oldest = index - self.queued  # = bursts issued so far
                if self._may_start_run(lists, oldest):
                    issued, next_run_try, wait_for_act = self._row_hit_run(
                        columns, lists, oldest, index, done)
                    run_try_activates = self.stats.activates + 1 if wait_for_act else _NEVER
                    if issued:
                        index = max(index, oldest + issued)
                        failed_tries = 0
                        continue
                else:
                    next_run_try, run_try_activates = oldest + 1, self.stats.activates + 1
                failed_tries += 1
                if failed_tries > MIN_RUN:
                    next_run_try += failed_tries // MIN_RUN
                    run_try_activates += failed_tries // MIN_RUN
            cycle, kind, bank, burst = self._next_command()
            due = min(self.refresh_due)
            if due <= cycle:
                self._refresh(self.refresh_due.index(due))
                continue
            if index < count and self.queued < depth and arrival[index] < cycle:
                # A request arrives before that command could issue: let it compete first.
                self.now = max(self.now, arrival[index])
                while index < count and self.queued < depth and arrival[index] <= self.now:
                    self._admit([arrival[index], index, bank_of[index], row_of[index], column_of[index],
                                 write_of[index]])
                    index += 1
                continue
            self._issue(cycle, kind, bank, burst, done)

    # ---------------------------------------------------------------- fast path: row-hit runs

    def _may_start_run(self, lists: BurstLists, oldest: int) -> bool:
        """Whether a run can start at position `oldest`: that burst is a row hit and the queued
        bursts are exactly positions [oldest, oldest + queued) (cheap tests first)."""
        bank = lists.bank[oldest]
        if lists.row[oldest] != self.open_row[bank]:
            return False
        queue = self.bank_queues.get(bank)
        if queue is None or queue[0][ORDER] != oldest:
            return False
        # All queued bursts are admitted (position < index) and distinct, so it suffices that
        # none is older than `oldest`; each bank queue is oldest first.
        return min(queue[0][ORDER] for queue in self.bank_queues.values()) == oldest

    def _row_hit_run(self, columns: BurstColumns, lists: BurstLists, oldest: int, index: int,
                     done: list[int]) -> tuple[int, int, bool]:
        """Issue the longest run of bursts from position `oldest` that FR-FCFS would issue in order.

        Called at a decision point of `serve` where the queue holds exactly the bursts
        [oldest, index). Returns (bursts issued, the position of the oldest burst from which to
        try again, whether to try again as soon as an ACT opens a row - when a burst that does
        not fit the run stopped it).

        Why the closed form is exact. Take bursts oldest, oldest+1, ... that are all reads (or
        all writes) to one rank, each to a row that is open now. While only such bursts are
        queued there is no ACT or PRE to schedule, every column command waits at least for the
        rank and data-bus bound LB, and after a column command at c that bound is c + s. If
        neither the bank (tRCD) nor the bank group (tCCD_L) of the oldest queued burst holds it
        past LB, it issues at LB and wins the tie on age: c[i] = max(c[i-1] + s, arrival[i]).
        That holds for burst i as long as (1) its bank and group constraints are <= c[i], (2) no
        refresh falls due by c[i], and (3) the first burst that is not part of the run (the
        "blocker") cannot have entered the queue yet: it enters only once it has arrived and
        fewer than queue_depth older bursts wait.
        """
        t = self.timing
        count = len(lists.arrival)
        if count - oldest < MIN_RUN:
            return 0, oldest + 1, False
        # A burst that does not fit and is queued, or has arrived and will be queued within
        # MIN_RUN bursts, would cut the run (rule 3) before it pays: leave these to the scheduler.
        misfit = self._first_misfit(lists, oldest, max(index, oldest + self.queue_depth + MIN_RUN))
        if misfit >= 0 and (misfit < max(index, oldest + MIN_RUN) or lists.arrival[misfit] <= self.now):
            return 0, misfit + 1, True
        first_bank = lists.bank[oldest]
        is_write, rank = bool(lists.is_write[oldest]), self.bank_rank[first_bank]

        # The bound for the first command: rank (tCCD_S, tWTR_S) and data bus, as _next_command.
        bus_end, bus_rank = self.bus_end, self.bus_rank
        other_rank = bus_rank >= 0 and rank != bus_rank
        if is_write:
            bus_bound = bus_end - t.tCWL + (t.tRTW if self.bus_was_read else 0)
            if other_rank:
                bus_bound = max(bus_bound, bus_end - t.tCWL + t.tRTRS)
            first = max(self.now, self.rank_next_wr[rank], bus_bound)
            group_ready, group_gap = self.group_next_wr, t.tCCD_L_WR
        else:
            bus_bound = bus_end - t.tCL + (t.tRTRS if other_rank else 0)
            first = max(self.now, self.rank_next_rd[rank], bus_bound)
            group_ready, group_gap = self.group_next_rd, t.tCCD_L
        first = max(first, lists.arrival[oldest])
        if (self.bank_next_col[first_bank] > first or group_ready[self.bank_group[first_bank]] > first
                or first >= min(self.refresh_due)):
            return 0, oldest + 1, False  # the first burst already breaks rule (1) or (2)

        stop = min(count, oldest + RUN_WINDOW)
        arrival = columns.arrival[oldest:stop]
        bank = columns.bank[oldest:stop]
        open_row = np.array(self.open_row, dtype=np.int64)
        fits = (columns.row[oldest:stop] == open_row[bank]) & (columns.is_write[oldest:stop] == is_write)
        if t.org.ranks > 1:
            fits &= self.bank_rank_array[bank] == rank
        length = int(np.argmin(fits)) if not fits.all() else fits.size
        blocker = oldest + length  # the first burst after the run, if there is one
        arrival, bank = arrival[:length], bank[:length]
        # c[i] = max(c[i-1] + s, earliest[i]) in closed form: s*i + running max of earliest - s*i.
        steps = np.arange(length, dtype=np.int64) * self.run_spacing
        earliest = arrival.copy()
        earliest[0] = first
        cycle = steps + np.maximum.accumulate(earliest - steps)

        # (1) bank: tRCD after its ACT; bank group: tCCD_L after the previous command to the
        # group in this run, or the group's bound from before the run for its first command.
        bank_group_ok = np.array(self.bank_next_col, dtype=np.int64)[bank] <= cycle
        group = self.bank_group_array[bank]
        by_group = np.argsort(group, kind="stable")
        sorted_group, sorted_cycle = group[by_group], cycle[by_group]
        needed = np.array(group_ready, dtype=np.int64)[sorted_group]
        same_group = sorted_group[1:] == sorted_group[:-1]
        needed[1:] = np.where(same_group, sorted_cycle[:-1] + group_gap, needed[1:])
        bank_group_ok[by_group] &= sorted_cycle >= needed
        # (2) no refresh falls due.
        ok = bank_group_ok & (cycle < min(self.refresh_due))
        # (3) the blocker cannot have entered the queue while burst i waits.
        if blocker < count:
            waiting = blocker - np.arange(oldest, blocker, dtype=np.int64)
            blocker_out = (waiting >= self.queue_depth) | (cycle < int(columns.arrival[blocker]))
            ok &= blocker_out
        issued = int(np.argmin(ok)) if not ok.all() else length
        if issued:
            self._apply_run(lists, oldest, index, cycle[:issued], bank[:issued], arrival[:issued],
                            is_write, rank, done)
        if issued < length and blocker < count and not blocker_out[issued]:
            return issued, blocker + 1, True
        return issued, oldest + issued + (issued < length), False

    def _first_misfit(self, lists: BurstLists, oldest: int, stop: int) -> int:
        """Cheap test before the numpy work: the position of the first burst in [oldest, stop)
        that cannot join a run starting at `oldest` (row not open, other direction or rank),
        or -1 if they all fit."""
        open_row, bank_rank = self.open_row, self.bank_rank
        banks, rows, writes = lists.bank, lists.row, lists.is_write
        is_write, rank = writes[oldest], bank_rank[banks[oldest]]
        for position in range(oldest, min(stop, len(banks))):
            bank = banks[position]
            if open_row[bank] != rows[position] or writes[position] != is_write or bank_rank[bank] != rank:
                return position
        return -1

    def _apply_run(self, lists: BurstLists, oldest: int, index: int, cycle: np.ndarray,
                   bank: np.ndarray, arrival: np.ndarray, is_write: bool, rank: int,
                   done: list[int]) -> None:
        """Update the state exactly as issuing RD/WR for bursts oldest.. at `cycle` would."""
        t = self.timing
        stats = self.stats
        count = cycle.size
        last = oldest + count  # first position after the run
        end = cycle + ((t.tCWL if is_write else t.tCL) + t.tBL)
        last_cycle, last_end = int(cycle[-1]), int(end[-1])

        # Banks and bank groups: the max-ed constraints depend only on each one's last command.
        last_in_bank = np.full(len(self.open_row), -1, dtype=np.int64)
        np.maximum.at(last_in_bank, bank, cycle)
        banks_used = np.flatnonzero(last_in_bank >= 0)
        last_in_group = np.full(len(self.group_next_rd), -1, dtype=np.int64)
        np.maximum.at(last_in_group, self.bank_group_array[bank], cycle)
        groups_used = np.flatnonzero(last_in_group >= 0)
        if is_write:
            for b in banks_used.tolist():
                pre = int(last_in_bank[b]) + t.tCWL + t.tBL + t.tWR
                self.bank_next_pre[b] = max(self.bank_next_pre[b], pre)
            for g in groups_used.tolist():
                c = int(last_in_group[g])
                self.group_next_wr[g] = max(self.group_next_wr[g], c + t.tCCD_L_WR)
                self.group_next_rd[g] = max(self.group_next_rd[g], c + t.tCWL + t.tBL + t.tWTR_L)
            self.rank_next_wr[rank] = max(self.rank_next_wr[rank], last_cycle + t.tCCD_S)
            self.rank_next_rd[rank] = max(self.rank_next_rd[rank], last_end + t.tWTR_S)
            stats.writes += count
        else:
            for b in banks_used.tolist():
                self.bank_next_pre[b] = max(self.bank_next_pre[b], int(last_in_bank[b]) + t.tRTP)
            for g in groups_used.tolist():
                self.group_next_rd[g] = max(self.group_next_rd[g], int(last_in_group[g]) + t.tCCD_L)
            self.rank_next_rd[rank] = max(self.rank_next_rd[rank], last_cycle + t.tCCD_S)
            stats.reads += count
        self.bus_end, self.bus_rank, self.bus_was_read = last_end, rank, not is_write
        self.now = last_cycle + 1

        # Statistics: queued bursts may carry a MISS / CONFLICT from the ACT / PRE that opened
        # their row; every other burst of the run is a hit.
        misses = conflicts = 0
        for order in [order for order in self.outcome if oldest <= order < last]:
            if self.outcome.pop(order) == MISS:
                misses += 1
            else:
                conflicts += 1
        stats.row_hits += count - misses - conflicts
        stats.row_misses += misses
        stats.row_conflicts += conflicts
        stats.data_bus_busy_cycles += count * t.tBL
        stats.latency_cycles_total += int((end - arrival).sum())
        stats.last_completion_cycle = max(stats.last_completion_cycle, last_end)
        if stats.first_arrival_cycle < 0:
            stats.first_arrival_cycle = lists.arrival[oldest]
        done[oldest:last] = end.tolist()

        # The queue: drop the issued bursts (the oldest of each bank queue).
        if self.queued:
            for b in list(self.bank_queues):
                queue = self.bank_queues[b]
                keep = 0
                while keep < len(queue) and queue[keep][ORDER] < last:
                    keep += 1
                if keep == len(queue):
                    del self.bank_queues[b]
                elif keep:
                    del queue[:keep]
            self.queued = max(index - last, 0)

        if self.trace is not None:
            kind = "WR" if is_write else "RD"
            channel = self.channel
            for position, c in zip(range(oldest, last), cycle.tolist()):
                b = lists.bank[position]
                self.trace.append(Command(c, kind, channel, rank, self.group_in_rank[b],
                                          self.bank_in_group[b], lists.row[position],
                                          lists.column[position]))

    # ---------------------------------------------------------------- channel state

    def equivalence_key(self, first_arrival: int) -> tuple:
        """A hashable summary of the state, equal for controllers that will issue the same
        commands for the same bursts (first burst arriving at `first_arrival`).

        Values that can no longer matter are dropped: a lower bound at or before the cycle
        the next command can issue at the earliest, tFAW entries that have run out, a data
        bus that is free for every kind of burst. Between serve calls the queue is empty, so
        a first burst arriving after `now` (with no refresh due before it) moves `now` there.
        """
        t = self.timing
        now = self.now
        if first_arrival > now and min(self.refresh_due) > first_arrival:
            now = first_arrival
        key: list = [now, tuple(self.open_row), tuple(self.refresh_due)]
        for name in BOUND_FIELDS:
            key.append(tuple([value if value > now else now for value in getattr(self, name)]))
        for acts in self.rank_recent_acts:
            key.append(tuple([act if act + t.tFAW > now else None for act in acts]))
        if self.bus_end - t.tCWL + max(t.tRTW, t.tRTRS) > now:
            key.append((self.bus_end, self.bus_rank, self.bus_was_read))
        else:
            key.append(None)
        return tuple(key)

    def copy_state_from(self, other: ChannelController) -> None:
        """Take over `other`'s scheduling state and state_id (both between serve calls)."""
        for name in STATE_FIELDS:
            value = getattr(other, name)
            if name == "rank_recent_acts":
                value = [deque(acts, maxlen=4) for acts in value]
            elif isinstance(value, list):
                value = list(value)
            setattr(self, name, value)
        self.state_id = other.state_id
