"""Pipeline stages of the cycle-accurate simulator and of its cross-validation.

Both read what the `compile` stage wrote into `results/{npu}/{model}/` (`compile.tsv` and, per
step program, `<step>.s`) and write tables there:
- `simulate_cycle_stage`: every step program on the cycle simulator with the DRAM model in the
  loop (JEDEC timing by default) -> `cycle.tsv` (cycles, per-unit busy/stall, DRAM traffic and
  bandwidth, energy) and `cycle_generation.tsv` (latency per step and per generated token,
  tokens/s, energy per token, DRAM bytes per token for the preset's top-k schedule);
- `crossvalidate_stage`: the analytical program model against the cycle simulator (bandwidth
  DRAM backend, the analytical model's closed form) per step, unit class and operator
  -> `crossval.tsv`;
- `crossvalidation_summary_stage`: every (npu, model) crossval table -> one summary table and
  figure.
Programs whose executed-instruction count (from compile.tsv) exceeds `max_instructions` get a row
with status `skipped: ...` instead of figures, so a sweep always completes within its budget.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig, load_npu_config
from npu.io import atomic_write_with, write_tsv
from npu.isa.assembler import Program, assemble
from npu.check.crossval import UNIT_CLASSES, crossvalidate
from npu.sim.analytical.program import comment_regions
from npu.sim.cycle.simulator import CycleSimulator
from npu.sim.cycle.stats import CycleStats

STEP_ORDER = ("refresh", "prefix_inblock", "dual_inblock")


@dataclass(frozen=True)
class CompiledProgram:
    """One row of compile.tsv with its assembled program (None when it did not compile)."""

    row: dict
    program: Program | None
    listing: str

    @property
    def step(self) -> str:
        return self.row["step"]

    @property
    def executed_instructions(self) -> int:
        return int(float(self.row["executed_instructions"] or 0))


def read_compiled_programs(compile_dir: str | Path) -> list[CompiledProgram]:
    """compile.tsv's rows (in STEP_ORDER) with each compiled program assembled from its listing."""
    compile_dir = Path(compile_dir)
    table = compile_dir / "compile.tsv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no compile table (run the compile stage first)")
    with table.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    programs = []
    for row in sorted(rows, key=lambda r: STEP_ORDER.index(r["step"]) if r["step"] in STEP_ORDER else 99):
        if row["status"] != "ok":
            programs.append(CompiledProgram(row, None, ""))
            continue
        listing_path = compile_dir / f"{row['step']}.s"
        if not listing_path.is_file():
            raise FileNotFoundError(f"{listing_path}: listed as compiled in {table} but missing")
        listing = listing_path.read_text(encoding="utf-8")
        programs.append(CompiledProgram(row, assemble(listing, source=str(listing_path)), listing))
    return programs


def _skip_reason(compiled: CompiledProgram, max_instructions: int) -> str | None:
    if compiled.program is None:
        return f"not compiled: {compiled.row['status']}"
    if compiled.executed_instructions > max_instructions:
        return (f"skipped: {compiled.executed_instructions:,} instructions > max_instructions "
                f"{max_instructions:,}")
    return None


def cycle_row(config: NPUConfig, compiled: CompiledProgram, stats: CycleStats, seconds: float) -> dict:
    """The cycle.tsv row of one simulated step program."""
    row = {"npu": config.name, "model": compiled.row["model"], "step": compiled.step,
           "query_length": compiled.row["query_length"], "status": "ok", "dram_backend": stats.dram.backend,
           "cycles": stats.cycles, "time_us": stats.time_ns / 1e3, "instructions": stats.instructions}
    for name in UNIT_CLASSES:
        unit = stats.units[name]
        row[f"{name}_busy"] = unit.busy
        row[f"{name}_stalled"] = sum(unit.stalls.values())
        row[f"{name}_utilisation"] = unit.utilisation
    dram = stats.dram
    row.update(dram_read_bytes=dram.bytes_read, dram_write_bytes=dram.bytes_written,
               dram_achieved_gbps=dram.achieved_gbps, dram_peak_gbps=dram.peak_gbps,
               dram_row_hit_rate="" if dram.row_hit_rate is None else dram.row_hit_rate,
               energy_uj=stats.energy.total_pj / 1e6, wall_seconds=seconds,
               simulated_cycles_per_second=stats.cycles / seconds if seconds > 0 else 0.0)
    return row


def _skipped_row(config: NPUConfig, compiled: CompiledProgram, reason: str, **extra) -> dict:
    return {"npu": config.name, "model": compiled.row["model"], "step": compiled.step,
            "query_length": compiled.row["query_length"], "status": reason, **extra}


def simulate_cycle_stage(npu: str | Path, compile_dir: str | Path, out_tsv: str | Path,
                         generation_tsv: str | Path | None = None, dram: str = "jedec",
                         max_instructions: int = 20_000_000, trace_dir: str | Path | None = None,
                         trace_max_instructions: int = 200_000, decoding: dict | None = None,
                         jedec_max_instructions: int = 2_000_000) -> list[dict]:
    """Simulate every compiled step program of one (npu, model) and write `out_tsv`.

    trace_dir: Chrome/Perfetto timelines (`<step>.trace.json`) of programs with at most
    `trace_max_instructions` instructions. decoding: the model preset's decoding recipe
    (gen_length, block_length, steps) for the per-token table `generation_tsv`.
    With dram="jedec", programs up to `jedec_max_instructions` run with the JEDEC model in the loop
    and their DRAM command trace is replayed through npu.sim.dram.check_trace (the row reports the
    commands checked and the timing violations found: the model must produce none); longer ones
    (the JEDEC model schedules every command in Python) run with the bandwidth backend, which the
    row's `dram_backend` column says.
    """
    config = load_npu_config(npu)
    if trace_dir is not None:
        Path(trace_dir).mkdir(parents=True, exist_ok=True)  # an output even when no program is traced
    rows = []
    for compiled in read_compiled_programs(compile_dir):
        reason = _skip_reason(compiled, max_instructions)
        if reason is not None:
            rows.append(_skipped_row(config, compiled, reason, dram_backend=dram))
            print(f"simulate_cycle {config.name} {compiled.row['model']} {compiled.step}: {reason}", file=sys.stderr)
            continue
        trace = trace_dir is not None and compiled.executed_instructions <= trace_max_instructions
        backend = dram if dram != "jedec" or compiled.executed_instructions <= jedec_max_instructions else "bandwidth"
        check_dram = backend == "jedec"
        simulator = CycleSimulator(config, dram=backend, record_timeline=trace,
                                   timeline_limit=trace_max_instructions + 1, record_dram_trace=check_dram)
        simulator.load(compiled.program)
        print(f"simulate_cycle {config.name} {compiled.row['model']} {compiled.step}: "
              f"{compiled.executed_instructions:,} instructions ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        with np.errstate(all="ignore"):  # timing-only: scalar FP runs on registers holding no data
            stats = simulator.run(max_instructions=max_instructions + 1)
        seconds = time.perf_counter() - began
        rows.append(cycle_row(config, compiled, stats, seconds) | _dram_check(simulator, check_dram))
        print(f"  {stats.cycles:,} cycles ({stats.time_ns / 1e3:,.1f} us) in {seconds:.1f} s "
              f"({rows[-1]['simulated_cycles_per_second']:.3g} cycles/s)", file=sys.stderr, flush=True)
        if trace:
            atomic_write_with(Path(trace_dir) / f"{compiled.step}.trace.json",
                              lambda path, s=stats: s.write_chrome_trace(path))
    write_tsv(out_tsv, rows, missing="")
    if generation_tsv is not None:
        write_tsv(generation_tsv, generation_rows(config, rows, decoding), missing="")
    return rows


def _dram_check(simulator: CycleSimulator, check: bool) -> dict:
    """Replay the run's JEDEC command trace through the independent timing checker."""
    if not check:
        return {"dram_commands_checked": "", "dram_timing_violations": "not checked"}
    from npu.sim.dram import check_trace

    trace = simulator.dram.model.trace
    violations = check_trace(trace, simulator.dram.timing)
    for violation in violations[:5]:
        print(f"  DRAM timing violation: {violation}", file=sys.stderr)
    return {"dram_commands_checked": len(trace), "dram_timing_violations": len(violations)}


def generation_rows(config: NPUConfig, step_rows: list[dict], decoding: dict | None) -> list[dict]:
    """Per cache mode, a whole top-k generation from the simulated steps: each block starts with a
    full refresh pass and its other steps are in-block steps (no cache: every step is a full pass).

    A mode whose programs were not all simulated gets a row saying which one is missing."""
    if decoding is None:
        return []
    gen, block, steps = decoding["gen_length"], decoding["block_length"], decoding["steps"]
    blocks = gen // block
    by_step = {row["step"]: row for row in step_rows if row["status"] == "ok"}
    schedules = {"none": {"refresh": steps},
                 "prefix": {"refresh": blocks, "prefix_inblock": steps - blocks},
                 "dual": {"refresh": blocks, "dual_inblock": steps - blocks}}
    rows = []
    for cache, schedule in schedules.items():
        row = {"npu": config.name, "model": step_rows[0]["model"] if step_rows else "", "cache": cache,
               "rule": "topk", "gen_length": gen, "block_length": block, "steps": steps}
        missing = [step for step, count in schedule.items() if count and step not in by_step]
        if missing:
            rows.append(row | {"status": f"missing simulated step(s): {', '.join(missing)}"})
            continue
        cycles = sum(count * by_step[step]["cycles"] for step, count in schedule.items())
        energy_uj = sum(count * by_step[step]["energy_uj"] for step, count in schedule.items())
        dram_bytes = sum(count * (by_step[step]["dram_read_bytes"] + by_step[step]["dram_write_bytes"])
                         for step, count in schedule.items())
        seconds = cycles / config.clock_hz
        rows.append(row | {"status": "ok", "latency_per_step_us": seconds / steps * 1e6,
                           "latency_per_token_us": seconds / gen * 1e6, "tokens_per_s": gen / seconds,
                           "energy_per_token_uj": energy_uj / gen, "dram_bytes_per_token": dram_bytes / gen})
    return rows


def crossvalidate_stage(npu: str | Path, compile_dir: str | Path, out_tsv: str | Path,
                        max_instructions: int = 20_000_000) -> list[dict]:
    """Analytical program model vs cycle simulator (bandwidth DRAM) for every compiled step:
    rows of kind total / class / operator with both cycle counts and the relative error."""
    config = load_npu_config(npu)
    rows = []
    for compiled in read_compiled_programs(compile_dir):
        base = {"npu": config.name, "model": compiled.row["model"], "step": compiled.step}
        reason = _skip_reason(compiled, max_instructions)
        if reason is not None:
            rows.append(base | {"status": reason})
            continue
        began = time.perf_counter()
        with np.errstate(all="ignore"):
            result = crossvalidate(compiled.program, config, name=compiled.step,
                                   regions=comment_regions(compiled.program, compiled.listing),
                                   max_instructions=max_instructions + 1)
        print(f"crossvalidate {config.name} {compiled.row['model']} {compiled.step}: total "
              f"{result.total_error:+.2%}, class MAE {result.mean_abs_error('class'):.2%}, operator MAE "
              f"{result.mean_abs_error('operator'):.2%} ({time.perf_counter() - began:.1f} s)", file=sys.stderr)
        for entry in result.table():
            rows.append(base | {"status": "ok", "kind": entry["kind"], "name": entry["name"],
                                "analytical_cycles": entry["analytical_cycles"],
                                "simulated_cycles": entry["simulated_cycles"],
                                "relative_error": entry["relative_error"]})
    write_tsv(out_tsv, rows, missing="")
    return rows


def crossvalidation_summary_stage(tables: list[str | Path], out_tsv: str | Path, out_png: str | Path) -> list[dict]:
    """One row per (npu, model, step): |error| of the step total, mean |error| per unit class and
    per operator; plus the worst case over everything, and a figure of the per-step errors."""
    rows, skipped = [], []
    for table in tables:
        with Path(table).open(encoding="utf-8", newline="") as handle:
            entries = list(csv.DictReader(handle, delimiter="\t"))
        groups: dict[tuple, list[dict]] = {}
        for entry in entries:
            key = (entry["npu"], entry["model"], entry["step"])
            if entry["status"] != "ok":
                skipped.append({"npu": key[0], "model": key[1], "step": key[2], "status": entry["status"]})
                continue
            groups.setdefault(key, []).append(entry)
        for (npu, model, step), group in groups.items():
            def errors(kind: str) -> list[float]:
                return [abs(float(e["relative_error"])) for e in group
                        if e["kind"] == kind and float(e["simulated_cycles"]) > 0]
            classes, operators = errors("class"), errors("operator")
            total = next(e for e in group if e["kind"] == "total")
            rows.append({"npu": npu, "model": model, "step": step, "status": "ok",
                         "simulated_cycles": float(total["simulated_cycles"]),
                         "step_abs_error": abs(float(total["relative_error"])),
                         "class_mean_abs_error": sum(classes) / len(classes) if classes else 0.0,
                         "class_max_abs_error": max(classes, default=0.0),
                         "operator_mean_abs_error": sum(operators) / len(operators) if operators else 0.0,
                         "operator_max_abs_error": max(operators, default=0.0)})
    if not rows:
        raise ValueError(f"crossvalidation summary: no cross-validated program in {len(tables)} table(s)")
    write_tsv(out_tsv, rows + skipped, missing="")
    _crossvalidation_figure(rows, out_png)
    return rows


def _crossvalidation_figure(rows: list[dict], out_png: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['npu']}\n{r['model']}\n{r['step']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows)), 4.0))
    x = range(len(rows))
    width = 0.28
    for offset, key, name in ((-width, "step_abs_error", "step total"),
                              (0.0, "class_mean_abs_error", "mean per unit class"),
                              (width, "operator_mean_abs_error", "mean per operator")):
        ax.bar([i + offset for i in x], [100 * r[key] for r in rows], width, label=name)
    ax.axhline(2.0, color="k", linestyle="--", linewidth=0.8, label="goal: 2 % per step")
    ax.axhline(3.0, color="grey", linestyle=":", linewidth=0.8, label="goal: 3 % per class")
    ax.set_xticks(list(x), labels, fontsize=6, rotation=90)
    ax.set_ylabel("|analytical - cycle-accurate| / cycle-accurate (%)")
    ax.set_title("Analytical model vs cycle simulator (bandwidth DRAM backend)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out_png)
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
    return path
