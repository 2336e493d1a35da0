"""Whole dLLM generations on the cycle simulator: every step of the decoding schedule run with
its own program and run-time parameters, statistics summed over the steps.

A top-k generation (npu.models.decoding, as npu.runtime.generate drives it) is, per block of
`block_length` tokens, `steps / blocks` denoising steps: the first refreshes the whole sequence
(query 0..seq_len, sample window at s0 = block start), the others query the block (dual cache),
the block and everything after it (prefix cache) or again the whole sequence (no cache), and
commit k tokens each (`transfer_schedule`). `topk_schedule` lists those steps; each one runs the
step program of its query length with its parameters (q0, s0, k, tau) in the program's
`params` / `fparams` regions and the token ids in `tokens` (`step_inputs`), on a fresh machine
(idle DRAM, empty units: host work between steps is not modelled, as in cycle.tsv).

Models without weights (the public-shape LLaDA-8B, Dream-7B) have no token values to commit:
the token ids stay those of the start (prompt positions `prompt_token`, generated positions the
mask id) for the whole generation. Token ids reach the timing only through the embedding
gather's DRAM row addresses.

`simulate_generations` runs the steps grouped by program (one load each) through
npu.sim.cycle.reuse.TimingReuse, which simulates a step unless one with the same start state or
the same timing inputs was simulated already (exact; see that module).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from npu.hw.config import NPUConfig
from npu.models.decoding import DecodeConfig, query_range, transfer_schedule
from npu.sim.cycle.reuse import SAME_START, SAME_TIMING, SIMULATED, TimingReuse, stats_digest
from npu.sim.cycle.simulator import CycleSimulator, RunInputs
from npu.sim.cycle.stats import CycleStats

# Formats of the DRAM regions the scalar front end moves (parameters, constants, token ids,
# outputs); the run-time input image covers every such region below the weights.
SCALAR_REGION_FORMATS = ("int32", "fp32", "raw")
# A step may execute at most this multiple of the compiler's instruction count, plus a slack
# (npu.runtime.generate.step_instruction_limit's numbers).
STEP_LIMIT_MARGIN = 4
STEP_LIMIT_SLACK = 100_000


@dataclass(frozen=True)
class ScheduledStep:
    """One denoising step of a generation: its place, query window, sample window and k."""

    cache: str
    block: int
    step: int
    query_length: int
    q0: int
    s0: int
    k: int


@dataclass(frozen=True)
class StepProgram:
    """A compiled step program as the cycle simulator runs it: its words, DRAM map and constants."""

    words: np.ndarray
    dram_map: dict
    constants: bytes
    executed_instructions: int = 0   # the compiler's count (sets the instruction limit and DRAM backend)


def topk_schedule(cache: str, prompt_length: int, gen_length: int, block_length: int,
                  steps: int) -> list[ScheduledStep]:
    """Every step of a fixed-k generation, in order (npu.runtime.generate.decode_steps' schedule)."""
    plan = DecodeConfig(gen_length=gen_length, block_length=block_length, steps=steps, cache=cache)
    seq_len = prompt_length + gen_length
    schedule = []
    for block in range(plan.num_blocks):
        start = prompt_length + block * block_length
        end = start + block_length
        counts = transfer_schedule(torch.tensor([block_length]), plan.steps_per_block)[0].tolist()
        masked, step = block_length, 0
        while masked:
            q0, q1 = query_range(cache, step, start, end, seq_len)
            k = counts[step]
            if k < 1:
                raise ValueError(f"top-k schedule: block {block} step {step} commits nothing "
                                 f"({steps} steps for {gen_length} tokens)")
            schedule.append(ScheduledStep(cache, block, step, q1 - q0, q0, start - q0, k))
            masked -= k
            step += 1
    return schedule


def step_inputs(program: StepProgram, step: ScheduledStep, tokens: np.ndarray, tau: float = 0.9,
                temperature: float = 0.0) -> RunInputs:
    """The DRAM image a step program starts from (what npu.runtime.generate.SimulatorStepper
    writes before a step): constants, params (q0, s0, k), fparams (tau, temperature), token ids."""
    regions = program.dram_map
    for name in ("constants", "params", "fparams", "tokens"):
        if name not in regions:
            raise ValueError(f"step program's DRAM map has no {name!r} region (regions: {', '.join(regions)})")
    scalar_ends = [r["address"] + r["bytes"] for name, r in regions.items()
                   if r["format"] in SCALAR_REGION_FORMATS and not name.startswith("noise")]
    size = -(-max(scalar_ends) // 64) * 64
    params = np.zeros(16, "<i4")
    params[:3] = (step.q0, step.s0, step.k)
    fparams = np.zeros(16, "<f4")
    fparams[:2] = (tau, temperature)
    token_bytes = np.asarray(tokens, "<i4").tobytes()
    if len(token_bytes) > regions["tokens"]["bytes"]:
        raise ValueError(f"{len(tokens)} token ids do not fit the tokens region of {regions['tokens']['bytes']} bytes")
    return RunInputs(size, ((regions["constants"]["address"], program.constants),
                            (regions["params"]["address"], params.tobytes()),
                            (regions["fparams"]["address"], fparams.tobytes()),
                            (regions["tokens"]["address"], token_bytes)))


@dataclass(frozen=True)
class StepResult:
    """One scheduled step's statistics and how they were obtained (TimingReuse's `how`)."""

    step: ScheduledStep
    stats: CycleStats
    how: str
    digest: str              # stats_digest(stats)
    dram_backend: str = ""
    key_seconds: float = 0.0          # CPU seconds of the reuse keys (TimingReuse)
    simulation_seconds: float = 0.0   # CPU seconds of the simulation (0 when reused)


def simulate_generations(config: NPUConfig, schedules: list[list[ScheduledStep]],
                         program_for: Callable[[int], StepProgram], tokens: np.ndarray, *,
                         dram: str | Callable[[StepProgram], str] = "bandwidth",
                         reuse: TimingReuse | None = None, log=sys.stderr) -> list[list[StepResult]]:
    """Run every step of every schedule (program_for(query_length) gives its program; `dram` the
    DRAM backend, or a function of the program that picks it); the results in schedule order.
    Steps are grouped by program so each one is loaded once. A step may run at most
    STEP_LIMIT_MARGIN times the compiler's instruction count (plus STEP_LIMIT_SLACK)."""
    reuse = reuse if reuse is not None else TimingReuse()
    by_length: dict[int, list[tuple[int, int]]] = {}
    for i, schedule in enumerate(schedules):
        for j, step in enumerate(schedule):
            by_length.setdefault(step.query_length, []).append((i, j))
    results: list[list[StepResult | None]] = [[None] * len(schedule) for schedule in schedules]
    total = sum(len(schedule) for schedule in schedules)
    done, began = 0, time.process_time()
    for query_length in sorted(by_length, reverse=True):
        program = program_for(query_length)
        simulator = CycleSimulator(config, dram=dram if isinstance(dram, str) else dram(program))
        simulator.load(program.words)
        max_instructions = (STEP_LIMIT_MARGIN * program.executed_instructions + STEP_LIMIT_SLACK
                            if program.executed_instructions else 1 << 31)
        for i, j in by_length[query_length]:
            step = schedules[i][j]
            with np.errstate(all="ignore"):  # timing mode: scalar FP runs on registers holding no data
                stats, how = reuse.run(simulator, max_instructions, inputs=step_inputs(program, step, tokens))
            results[i][j] = StepResult(step, stats, how, stats_digest(stats), simulator.dram_backend_name,
                                       reuse.key_seconds, reuse.simulation_seconds)
            done += 1
            if log is not None and (how != SAME_START or done == total):
                print(f"  step {done}/{total} ({step.cache} block {step.block} step {step.step}, query "
                      f"{query_length}): {stats.cycles:,} cycles, {how} ({time.process_time() - began:.0f} CPU s)",
                      file=log, flush=True)
        del simulator
    return results  # type: ignore[return-value]


def generation_row(config: NPUConfig, results: list[StepResult]) -> dict:
    """Totals of one simulated generation: latency per step and token, tokens/s, energy and DRAM
    bytes per token, and how many steps were simulated or reused."""
    steps = [r.step for r in results]
    gen = sum(s.k for s in steps)
    cycles = sum(r.stats.cycles for r in results)
    energy_pj = sum(r.stats.energy.total_pj for r in results)
    dram_bytes = sum(r.stats.dram.bytes_read + r.stats.dram.bytes_written for r in results)
    seconds = cycles / config.clock_hz
    hows = [r.how for r in results]  # SIMULATED, SAME_START, SAME_TIMING
    return {"status": "ok", "steps": len(steps), "cycles": cycles, "instructions": sum(r.stats.instructions for r in results),
            "latency_per_step_us": seconds / len(steps) * 1e6, "latency_per_token_us": seconds / gen * 1e6,
            "tokens_per_s": gen / seconds, "energy_per_token_uj": energy_pj / 1e6 / gen,
            "dram_bytes_per_token": dram_bytes / gen, "steps_simulated": hows.count(SIMULATED),
            "steps_same_start": hows.count(SAME_START), "steps_same_timing": hows.count(SAME_TIMING),
            "distinct_step_timings": len({r.digest for r in results}),
            "dram_backends": ",".join(sorted({r.dram_backend for r in results}))}
