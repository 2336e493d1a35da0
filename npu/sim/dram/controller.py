"""One channel's memory controller: request queue, FR-FCFS scheduling, page policy, refresh.

The controller is event driven: instead of ticking every clock it keeps, for every bank, bank
group, rank and the data bus, the first cycle at which each command kind becomes legal. To pick
the next command it asks every bank with queued work for its next command and that command's
earliest legal cycle, then issues the earliest one (row hits first on ties, then the oldest
request): exactly what a cycle-by-cycle FR-FCFS scheduler would do, without the idle cycles.
Time jumps straight to the next command, arrival or refresh.

Bursts are plain lists (fast in CPython) indexed by the constants below.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from npu.sim.dram.commands import Command
from npu.sim.dram.timing import DramTiming

# Fields of a queued burst.
ARRIVAL, ORDER, BANK, ROW, COLUMN, IS_WRITE, REQUEST = range(7)

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


class ChannelController:
    """Schedules the bursts of one channel; `serve` runs until they are all done."""

    def __init__(
        self,
        channel: int,
        timing: DramTiming,
        page_policy: str = "open",
        queue_depth: int = 32,
        trace: list[Command] | None = None,
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

    def _issue(self, cycle: int, kind: str, bank: int, burst: list | None, completion) -> None:
        stats = self.stats
        if kind == "ACT":
            self.outcome.setdefault(burst[ORDER], MISS)
            self._activate(cycle, bank, burst[ROW])
        elif kind == "PRE":
            if burst is not None:
                self.outcome.setdefault(burst[ORDER], CONFLICT)
            self._precharge(cycle, bank)
        else:
            done = self._column(cycle, bank, burst)
            outcome = self.outcome.pop(burst[ORDER], HIT)
            if outcome == HIT:
                stats.row_hits += 1
            elif outcome == MISS:
                stats.row_misses += 1
            else:
                stats.row_conflicts += 1
            stats.latency_cycles_total += done - burst[ARRIVAL]
            stats.last_completion_cycle = max(stats.last_completion_cycle, done)
            request = burst[REQUEST]
            if done > completion[request]:
                completion[request] = done
            queue = self.bank_queues[bank]
            queue.remove(burst)
            self.queued -= 1
            if not queue:
                del self.bank_queues[bank]
            if self.close_page and not any(b[ROW] == burst[ROW] for b in queue):
                self.to_close.add(bank)
        self.now = cycle + 1

    def serve(self, bursts: list[list], completion) -> None:
        """Schedule `bursts` (sorted by arrival cycle) until all are done.

        Each burst is [arrival, order, bank, row, column, is_write, request]; the cycle its
        data transfer ends is max-ed into completion[request].
        """
        depth = self.queue_depth
        count = len(bursts)
        index = 0
        while True:
            while index < count and self.queued < depth and bursts[index][ARRIVAL] <= self.now:
                self._admit(bursts[index])
                index += 1
            if not self.queued and not self.to_close:
                if index == count:
                    return
                arrival = bursts[index][ARRIVAL]
                self.refresh_until(arrival)
                self.now = max(self.now, arrival)
                continue
            cycle, kind, bank, burst = self._next_command()
            due = min(self.refresh_due)
            if due <= cycle:
                self._refresh(self.refresh_due.index(due))
                continue
            if index < count and self.queued < depth and bursts[index][ARRIVAL] < cycle:
                # A request arrives before that command could issue: let it compete first.
                self.now = max(self.now, bursts[index][ARRIVAL])
                while index < count and self.queued < depth and bursts[index][ARRIVAL] <= self.now:
                    self._admit(bursts[index])
                    index += 1
                continue
            self._issue(cycle, kind, bank, burst, completion)
