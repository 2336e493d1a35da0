"""Exact reuse of cycle-simulator runs: a run whose timing inputs were already simulated gets the
statistics of that run instead of a new simulation.

Why it is exact: a run is a deterministic function of its start state, and its timing reads
only the values `CycleSimulator.timing_key` records (branch and loop outcomes, the register
operands the DMA, matrix and vector schedules use, DRAM addresses as the backend reads them).
Two keys, cheapest first:

1. `start_key`: the program, the simulator's settings, the limits and the run-time inputs (or,
   with execute_data, every memory). Equal start states give the same run, bit for bit: the
   steps of one block of a top-k generation share it (same program, same q0 / s0 / k).
2. `timing_key`: one pass of the scalar front end (no unit scheduling; for a LLaDA-8B step about
   a tenth of a full simulation) over the run, hashing what the timing reads. Different inputs
   with the same timing key (a later block's refresh: another s0 that moves no DMA across a
   chunk boundary) give the same statistics. A program's first run (with RunInputs) is
   simulated without it; its key is computed when a second start state of the program comes.

Anything else is simulated. A program whose timing keys missed KEY_PASSES_WITHOUT_HIT times
without a hit is simulated without computing them (simulating is always exact). tests/test_cycle_generation.py checks the claim: whole generations
of compiled tiny-model steps (top-k and threshold sampling, whose fallback branch depends on
the data) simulated step by step and through `TimingReuse` give identical `stats_digest`s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter

from npu.sim.cycle.simulator import CycleSimulator, RunInputs
from npu.sim.cycle.stats import CycleStats

SIMULATED, SAME_START, SAME_TIMING = "simulated", "same start state", "same timing inputs"
# A program whose timing keys missed this many times, and never hit, is simulated without them.
KEY_PASSES_WITHOUT_HIT = 2


def stats_digest(stats: CycleStats) -> str:
    """SHA-256 of every figure of a run (cycles, counts, per-unit breakdown, DRAM, energy,
    timeline, sync points); floats by their exact repr."""
    text = json.dumps(dataclasses.asdict(stats), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class TimingReuse:
    """Statistics of the runs simulated so far, by start key and by timing key (see module)."""

    def __init__(self) -> None:
        self.by_start: dict[str, CycleStats] = {}
        self.by_timing: dict[str, CycleStats] = {}
        self.counts: Counter[str] = Counter()
        self.families: set[str] = set()       # settings_key of every program run so far
        self.misses: Counter[str] = Counter()  # per program: timing keys computed and not found
        self.hits: Counter[str] = Counter()    # per program: steps reused by timing key
        self.pending: dict[str, tuple] = {}   # settings_key -> (inputs, stats) of a first run, key not yet computed
        # CPU seconds of the last call's key passes and simulation (benchmarks/cycle_generation.py)
        self.key_seconds = self.simulation_seconds = 0.0

    def run(self, sim: CycleSimulator, max_instructions: int = 10_000_000, max_cycles: int = 10**10,
            inputs: RunInputs | None = None) -> tuple[CycleStats, str]:
        """`sim.run(max_instructions, max_cycles, inputs)`'s statistics, simulated or reused; and how
        (SIMULATED, SAME_START or SAME_TIMING)."""
        began = time.process_time()
        self.simulation_seconds = 0.0
        start = sim.start_key(max_instructions, max_cycles, inputs)
        stats = self.by_start.get(start)
        how = SAME_START
        if stats is None:
            family = sim.settings_key(max_instructions, max_cycles)  # program, settings and limits
            pending = self.pending.pop(family, None)
            if pending is not None:  # the family's first run, whose timing key is wanted only now
                self.by_timing[sim.timing_key(max_instructions, max_cycles, pending[0])] = pending[1]
            if inputs is not None and family not in self.families:
                # The first run of a program: nothing to compare its timing key with yet. Its
                # start state is (settings, inputs), so the key can be computed later if needed.
                timing, stats = None, None
            elif self.misses[family] >= KEY_PASSES_WITHOUT_HIT and not self.hits[family]:
                # This program's timing keys keep differing (its start states move what the
                # timing reads): the key pass costs more than it saves.
                timing, stats = None, None
            else:
                timing = sim.timing_key(max_instructions, max_cycles, inputs)
                stats = self.by_timing.get(timing)
                how = SAME_TIMING
            if stats is None:
                simulating = time.process_time()
                stats = sim.run(max_instructions, max_cycles, inputs)
                self.simulation_seconds = time.process_time() - simulating
                if timing is not None:
                    self.by_timing[timing] = stats
                    self.misses[family] += 1
                elif family not in self.families:
                    self.pending[family] = (inputs, stats)
                how = SIMULATED
            else:
                self.hits[family] += how == SAME_TIMING
            self.families.add(family)
            self.by_start[start] = stats
        self.key_seconds = time.process_time() - began - self.simulation_seconds
        self.counts[how] += 1
        return stats, how
