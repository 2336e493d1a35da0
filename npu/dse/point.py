"""One design point of the sweep: its generations on the analytical model, and on sampled points
the cycle simulator's check of the step programs the analytical model costed.

The generations are the pipeline's (npu.sim.analytical.scenarios.model_scenarios with the
config's `analytical:` settings), restricted to the sweep's cache modes and commit rules, costed
by the same entry as results/{npu}/{model}/analytical.tsv: npu.sim.analytical.npu_ops.NpuStepModel
on the compiled step programs (npu.runtime.lowering.generation_row). The programs are compiled
from the step shapes in memory; no export is needed (the program depends only on the shapes).

The cycle check (`cycle_check`): each distinct step program of the point's generations with at
most `max_instructions` instructions runs on the cycle simulator (bandwidth DRAM backend by
default, whose closed form the analytical model is); per model the generation-weighted error

    cycle_error = sum(count x analytical cycles) / sum(count x simulated cycles) - 1

over the simulated programs, and `cycle_coverage`, the share of the generation's analytical
time those programs account for (LLaDA-8B's 1256-query refresh step, 327 M instructions, is
left out at the default limit; the in-block steps are most of the time).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.models.transformer import ModelConfig
from npu.runtime.lowering import generation_row, step_program
from npu.sim.analytical.generation import GenerationSetup, rule_name, step_schedule
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.operators import StepShape
from npu.sim.analytical.scenarios import ScenarioSettings, model_scenarios

RULES = ("topk", "threshold")


@dataclass
class RecordingLowering:
    """npu.runtime.lowering.step_program, remembering each program for the cycle check."""

    programs: dict[tuple[str, StepShape], Program] = field(default_factory=dict)

    def __call__(self, config: NPUConfig, model: ModelConfig, shape: StepShape) -> Program:
        key = (model.name, shape)
        if key not in self.programs:
            self.programs[key] = step_program(config, model, shape)
        return self.programs[key]


def point_setups(model_preset: str | Path, settings: ScenarioSettings, caches: tuple[str, ...],
                 rules: tuple[str, ...]) -> tuple[ModelConfig, list[GenerationSetup]]:
    """The model and its generations in the sweep's cache modes and commit rules."""
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"dse.rules: unknown rule(s) {', '.join(unknown)} (expected: {', '.join(RULES)})")
    model, setups = model_scenarios(model_preset, settings, caches=caches)
    keep = [setup for setup in setups if rule_name(setup.decode).rstrip("0123456789.") in rules]
    return model, keep


def evaluate_point(config: NPUConfig, models: list[str | Path], settings: ScenarioSettings,
                   caches: tuple[str, ...], rules: tuple[str, ...]) -> tuple[list[dict], NpuStepModel,
                                                                              RecordingLowering, dict]:
    """One row per (model, cache, rule): tokens/s, energy/token, latency, DRAM traffic and
    `status` (the compiler's reason when a step does not fit). Also returns the machine model,
    the programs it compiled and the setups per model (for `cycle_check`)."""
    lowering = RecordingLowering()
    machine = NpuStepModel(config, lowering)
    rows, setups_of = [], {}
    for preset in models:
        model, setups = point_setups(preset, settings, caches, rules)
        setups_of[model.name] = (model, setups)
        shared: dict = {}
        for setup in setups:
            began = time.perf_counter()
            row = generation_row(machine, model, setup, shared)
            rows.append(row)
            figure = f"{row['tokens_per_s']:.4g} tok/s" if row["status"] == "ok" else row["status"]
            print(f"dse {config.name} {model.name} {row['cache']}/{row['rule']}: {figure} "
                  f"({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
    return rows, machine, lowering, setups_of


def cycle_check(machine: NpuStepModel, lowering: RecordingLowering, setups_of: dict,
                max_instructions: int, dram: str = "bandwidth") -> tuple[list[dict], dict[str, dict]]:
    """Run the point's step programs (up to `max_instructions`) on the cycle simulator.

    Returns per-program rows (cycle.tsv of the point) and per model the columns `cycle_error`,
    `cycle_coverage`, `cycle_programs` (module docstring)."""
    import numpy as np

    from npu.sim.cycle.simulator import CycleSimulator

    config = machine.config
    rows, simulated = [], {}
    for (model_name, shape), program in lowering.programs.items():
        totals = machine.program_totals(program)
        row = {"model": model_name, "cache": shape.cache_mode, "query_length": shape.query_length,
               "kv_length": shape.kv_length, "instructions": totals.instructions,
               "analytical_cycles": totals.cycles}
        if totals.instructions > max_instructions:
            rows.append(row | {"status": f"skipped: {totals.instructions:,} instructions > {max_instructions:,}"})
            continue
        simulator = CycleSimulator(config, dram=dram)
        simulator.load(program)
        began = time.perf_counter()
        with np.errstate(all="ignore"):  # timing only: scalar FP runs on registers holding no data
            stats = simulator.run(max_instructions=max_instructions + 1)
        seconds = time.perf_counter() - began
        simulated[(model_name, shape)] = stats.cycles
        rows.append(row | {"status": "ok", "simulated_cycles": stats.cycles, "dram_backend": dram,
                           "relative_error": totals.cycles / stats.cycles - 1, "wall_seconds": seconds})
        print(f"dse cycle check {config.name} {model_name} {shape.cache_mode} q{shape.query_length}: "
              f"{totals.instructions:,} instructions, analytical {totals.cycles:,.0f} vs simulated "
              f"{stats.cycles:,} cycles ({seconds:.1f} s)", file=sys.stderr, flush=True)
    summary = {}
    for model_name, (model, setups) in setups_of.items():
        analytical = simulated_sum = checked = 0.0
        for setup in setups:
            for shape, count in step_schedule(setup):
                program = lowering.programs.get((model_name, shape))
                if program is None:  # the generation did not compile
                    continue
                cycles = machine.program_totals(program).cycles
                analytical += count * cycles
                if (model_name, shape) in simulated:
                    checked += count * cycles
                    simulated_sum += count * simulated[(model_name, shape)]
        programs = sum(1 for key in simulated if key[0] == model_name)
        summary[model_name] = {
            "cycle_error": checked / simulated_sum - 1 if simulated_sum else float("nan"),
            "cycle_coverage": checked / analytical if analytical else float("nan"),
            "cycle_programs": programs,
        }
    return rows, summary
