"""A whole LLaDA-8B (or Dream-7B) top-k generation on the cycle simulator, every step run or
exactly reused (npu.runtime.cycle_generation), one generation per cache mode, each with its own
reuse cache: CPU seconds per generation, and what simulating every step would cost.

Prints per mode: the steps simulated / reused (same start state, same timing inputs), the CPU
seconds of the reuse keys and of the simulations, the simulator's instructions per CPU second,
the generation's figures, and "every step simulated": the CPU seconds of simulating each step
with the simulator alone (its program's measured simulation time per step), i.e. the cost
without reuse. Then the SHA-256 of every distinct step's statistics (compare two versions of
the simulator with them) and one digest over all steps.

First (unless --no-speed) the simulator's own speed on the dual-cache in-block step: instructions
per CPU second with the DMA paths of before this change (SEGMENTED_CHUNKS off, the bandwidth
pipe's six fixed-point passes and no busy runs) and with the current ones, and the SHA-256 of
both runs' statistics (they must be equal).

Usage: python benchmarks/cycle_generation.py [--model llada-8b] [--npu dnpu-cloud]
           [--caches dual [prefix none]] [--kv-length 512] [--dram bandwidth] [--no-speed]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import numpy as np

from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes
from npu.compiler.lower import compile_spec
from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec
from npu.sim.analytical.scenarios import ScenarioSettings, generation_recipe
from npu.runtime.cycle_generation import StepProgram, generation_row, simulate_generations, topk_schedule
from npu.sim.cycle.reuse import SIMULATED, TimingReuse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llada-8b")
    parser.add_argument("--npu", default="dnpu-cloud")
    parser.add_argument("--caches", nargs="+", default=["dual"], choices=["none", "prefix", "dual"])
    parser.add_argument("--kv-length", type=int, default=512, help="positions: prompt + generated tokens")
    parser.add_argument("--dram", default="bandwidth", choices=["bandwidth", "jedec"])
    parser.add_argument("--no-speed", action="store_true", help="skip the simulator-speed runs")
    args = parser.parse_args()
    config = load_npu_config(args.npu)
    spec = load_model_spec(args.model)
    recipe = generation_recipe(args.model, ScenarioSettings())
    gen, block, steps = recipe["gen_length"], recipe["block_length"], recipe["steps"]
    prompt = args.kv_length - gen
    shapes = Shapes(spec.architecture, config, args.kv_length)
    programs: dict[int, StepProgram] = {}

    def program_for(query_length: int) -> StepProgram:
        if query_length not in programs:
            step = compile_spec(StepSpec(shapes, query_length, block, "topk"))
            programs[query_length] = StepProgram(np.asarray(step.program, "<u4"), step.dram_map, step.constants,
                                                 int(step.stats["executed_total"]))
        return programs[query_length]

    tokens = np.array([0] * prompt + [spec.architecture.mask_token_id] * gen, np.int32)
    print(f"{spec.name} on {config.name}: prompt {prompt}, gen {gen}, block {block}, {steps} steps, "
          f"DRAM {args.dram}; CPU seconds (process time)")
    if not args.no_speed:
        simulator_speed(config, program_for(block), args.dram)
    digests: dict[tuple, str] = {}
    for cache in args.caches:
        schedule = topk_schedule(cache, prompt, gen, block, steps)
        for query_length in {s.query_length for s in schedule}:
            program_for(query_length)  # compile outside the timed part
        began = time.process_time()
        [results] = simulate_generations(config, [schedule], program_for, tokens, dram=args.dram,
                                         reuse=TimingReuse(), log=sys.stderr)
        seconds = time.process_time() - began
        row = generation_row(config, results)
        simulated = [r for r in results if r.how == SIMULATED]
        per_program = {r.step.query_length: r.simulation_seconds for r in simulated}
        every_step = sum(per_program[r.step.query_length] for r in results)
        instructions = sum(r.stats.instructions for r in simulated)
        simulation = sum(r.simulation_seconds for r in simulated)
        keys = sum(r.key_seconds for r in results)
        print(f"{cache}: {row['steps']} steps: {row['steps_simulated']} simulated, {row['steps_same_start']} same "
              f"start state, {row['steps_same_timing']} same timing inputs; {seconds:.0f} CPU s for the generation "
              f"({simulation:.0f} simulating {instructions / 1e6:.1f} M instructions at "
              f"{instructions / max(simulation, 1e-9) / 1e6:.3f} M/s, {keys:.0f} reuse keys); every step simulated: "
              f"{every_step:.0f} CPU s ({every_step / max(seconds, 1e-9):.1f}x)")
        print(f"{cache}: {row['cycles']:,} cycles, {row['tokens_per_s']:.4g} tokens/s, "
              f"{row['energy_per_token_uj']:.4g} uJ/token, {row['dram_bytes_per_token']:.4g} DRAM B/token, "
              f"{row['distinct_step_timings']} distinct step timings", flush=True)
        for r in results:
            digests.setdefault((r.step.query_length, r.step.q0, r.step.s0, r.step.k), r.digest)
    for (query_length, q0, s0, k), digest in sorted(digests.items()):
        print(f"sha256 query {query_length} q0 {q0} s0 {s0} k {k}: {digest}")
    print("sha256 of all steps:", hashlib.sha256("".join(d for _, d in sorted(digests.items())).encode()).hexdigest())


def simulator_speed(config, program: StepProgram, dram: str) -> None:
    """The in-block step (q0 = s0 = k = 0, as cycle.tsv runs it) with the previous DMA paths and
    with the current ones: CPU seconds, instructions per CPU second, statistics digests."""
    from npu.sim.cost import dram as dram_module
    from npu.sim.cycle import simulator as simulator_module
    from npu.sim.cycle.reuse import stats_digest
    from npu.sim.cycle.simulator import CycleSimulator

    current = (simulator_module.SEGMENTED_CHUNKS, dram_module._FIXED_POINT_PASSES, dram_module._BUSY_RUNS)
    for label, (segmented, passes, runs) in (("previous DMA paths", (False, 6, 0)), ("current", current)):
        simulator_module.SEGMENTED_CHUNKS, dram_module._FIXED_POINT_PASSES, dram_module._BUSY_RUNS = \
            segmented, passes, runs
        simulator = CycleSimulator(config, dram=dram)
        simulator.load(program.words)
        began = time.process_time()
        with np.errstate(all="ignore"):
            stats = simulator.run(max_instructions=1 << 31)
        seconds = time.process_time() - began
        print(f"in-block step, {label}: {stats.instructions:,} instructions, {stats.cycles:,} cycles in "
              f"{seconds:.1f} CPU s: {stats.instructions / seconds / 1e6:.3f} M instructions/s, "
              f"{stats.cycles / seconds:.3g} cycles/s; sha256 {stats_digest(stats)}", flush=True)
    simulator_module.SEGMENTED_CHUNKS, dram_module._FIXED_POINT_PASSES, dram_module._BUSY_RUNS = current


if __name__ == "__main__":
    main()
