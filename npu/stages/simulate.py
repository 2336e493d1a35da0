"""Stages of workflow/rules/simulate.smk: the analytical and cycle-accurate performance models.

- `simulate_analytical_stage` (rule simulate_analytical): per (NPU, model) a TSV of generations -
  latency per step and per token, tokens/s, utilisation, energy per token, DRAM traffic per
  token, sampling share;
- `simulate_cycle_stage` (rule simulate_cycle): every compiled step program of one (NPU, model)
  on the cycle simulator with the DRAM model in the loop (JEDEC timing by default) -> `cycle.tsv`
  (cycles, per-unit busy/stall, DRAM traffic and bandwidth, energy) and `cycle_generation.tsv`
  (latency per step and per generated token, tokens/s, energy per token, DRAM bytes per token
  for the preset's top-k schedule);
- `crossvalidate_stage` (rule crossvalidate): the analytical program model against the cycle
  simulator (bandwidth DRAM backend, the analytical model's closed form) per step, unit class
  and operator -> `crossval.tsv`;
- `crossvalidation_summary_stage` (rule crossvalidation_summary): every (npu, model) crossval
  table -> one summary table and figure;
- `roofline_stage` (rule roofline): every compiled step program of one (NPU, model), per
  operator and per step: attained cycles vs compute bound vs DRAM bound and which binds
  (npu.check.roofline) -> `roofline.tsv` and `roofline.png`;
- `gpu_baselines_stage` (rule gpu_baselines): the GPU roofline models of the same generations,
  the Fast-dLLM A100 check and the GPU sampling-share sweep;
- `speedup_stage` (rule speedup): the NPU tables of the public-shape models next to the GPU
  table - tokens/s, energy per token, the ratios, a bandwidth-matched ratio and the paper's
  claim (npu.sim.analytical.speedup) -> `results/speedup.{tsv,png}`;
- `device_validation_stage` (no rule; tests, benchmarks): the device model calibrated on this
  machine vs measured PyTorch.

The cycle, cross-validation and roofline stages read what the `compile` stage wrote into
`results/{npu}/{model}/` (`compile.tsv` and, per step program, `<step>.s`). Programs whose
executed-instruction count (from compile.tsv) exceeds `max_instructions` get a row with status
`skipped: ...` instead of figures, so a sweep always completes within its budget.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from npu.io import atomic_write_with, write_tsv


def simulate_analytical_stage(npu_name: str | Path, model_name: str | Path, out: str | Path,
                              settings=None, technology: str | Path | None = None) -> Path:
    """One (NPU, model) table: a row per (cache mode, commit rule) generation, costed on the
    compiled step programs (npu.runtime.lowering); settings: the experiment's
    npu.sim.analytical.scenarios.ScenarioSettings (default: its defaults). A generation with a
    step the machine cannot run gets NaN figures and the compiler's reason in `status`.
    `technology`: a technology table replacing the preset's (the calibrated one, npu.hw.config.with_technology)."""
    from npu.hw.config import load_npu_config, with_technology
    from npu.runtime.lowering import generation_row, step_program
    from npu.sim.analytical.npu_ops import NpuStepModel
    from npu.sim.analytical.scenarios import ScenarioSettings, model_scenarios

    machine = NpuStepModel(with_technology(load_npu_config(npu_name), technology), step_program)
    model, setups = model_scenarios(model_name, settings or ScenarioSettings())
    shared: dict = {}
    rows = []
    for number, setup in enumerate(setups, 1):  # progress: a long model costs minutes per generation
        rows.append(generation_row(machine, model, setup, shared))
        print(f"analytical {machine.config.name} {model.name}: generation {number}/{len(setups)} "
              f"({rows[-1]['cache']}/{rows[-1]['rule']}) {rows[-1]['status'][:60]}", file=sys.stderr, flush=True)
    print(f"analytical {npu_name} {model_name}: " + ", ".join(
        f"{r['cache']}/{r['rule']} " + (f"{r['tokens_per_s']:.3g} tok/s" if r["status"] == "ok" else r["status"])
        for r in rows), file=sys.stderr)
    return write_tsv(out, rows)


def gpu_baselines_stage(out_dir: str | Path, models: tuple[str | Path, ...] = ("llada-8b", "dream-7b"),
                        settings=None) -> list[Path]:
    """Write gpu_generations.tsv, fast_dllm_check.tsv and gpu_sampling_share.tsv to out_dir."""
    from npu.models.presets import load_model_spec
    from npu.sim.analytical.baselines import SAMPLING_CLAIM, fast_dllm_check, sampling_share_sweep
    from npu.sim.analytical.devices import GPU_PRESETS, DeviceModel
    from npu.sim.analytical.generation import generation_report
    from npu.sim.analytical.scenarios import ScenarioSettings, model_scenarios

    out_dir = Path(out_dir)
    rows = []
    configs = {}
    for model_name in models:
        model, setups = model_scenarios(model_name, settings or ScenarioSettings())
        configs[model.name] = model
        for spec in GPU_PRESETS.values():
            shared: dict = {}
            rows += [generation_report(DeviceModel(spec), model, setup, shared).row() for setup in setups]
    # Fast-dLLM's published A100 throughput (arXiv 2505.22618) is for LLaDA-8B as released: the
    # check always uses the package's llada-8b preset (the public shape), whatever `models` holds.
    check = fast_dllm_check(load_model_spec("llada-8b").architecture)
    sweep = sampling_share_sweep(configs)
    peak = max(sweep, key=lambda row: row["sampling_share"])
    print(f"gpu baselines: Fast-dLLM A100 check {[(r['rates'], r['configuration'], round(r['predicted_tok_s'], 1)) for r in check]}; "
          f"largest GPU sampling share {peak['sampling_share']:.1%} ({peak['gpu']}, {peak['model']}, "
          f"T={peak['temperature']}, {peak['cache']}) vs the claimed {SAMPLING_CLAIM:.0%}", file=sys.stderr)
    return [write_tsv(out_dir / "gpu_generations.tsv", rows), write_tsv(out_dir / "fast_dllm_check.tsv", check),
            write_tsv(out_dir / "gpu_sampling_share.tsv", sweep)]


def speedup_stage(analytical: list[str | Path], npus: list[str | Path], gpu_table: str | Path,
                  out_tsv: str | Path, out_png: str | Path) -> list[dict]:
    """The generation table of the NPU presets against the modelled GPUs, read from the tables
    the simulation stages wrote (no recomputation, so it quotes exactly their figures); npus:
    the presets named in the tables' `machine` column, read for their DRAM bandwidth."""
    from npu.hw.config import load_npu_config
    from npu.plots.speedup import speedup_figure
    from npu.sim.analytical.speedup import speedup_rows

    bandwidths = {config.name: config.dram.bandwidth_gbps for config in map(load_npu_config, npus)}
    rows = speedup_rows(analytical, bandwidths, gpu_table)
    for row in rows:
        figure = (f"{row['speedup']:.3g}x (bandwidth-matched {row['bandwidth_matched_speedup']:.3g}x)"
                  if row["status"] == "ok" else row["status"])
        print(f"speedup {row['npu']} vs {row['gpu']} {row['model']} {row['cache']}/{row['rule']}: {figure}",
              file=sys.stderr)
    write_tsv(out_tsv, rows)
    speedup_figure(out_tsv, out_png)
    return rows


def device_validation_stage(out_dir: str | Path, device: str = "cpu", scale: float = 1.0, rounds: int = 2) -> list[Path]:
    """Calibrate the device model on this machine, predict and measure the validation kernels;
    write device_calibration.tsv and device_validation.tsv to out_dir."""
    from npu.sim.analytical.validation import error_summary, validate

    calibration, rows = validate(device, scale=scale, rounds=rounds)
    summary = error_summary(rows)
    print("device validation: mean |error| " + ", ".join(f"{k} {v:.1%}" for k, v in summary.items()), file=sys.stderr)
    out_dir = Path(out_dir)
    return [write_tsv(out_dir / "device_calibration.tsv", calibration.rows()),
            write_tsv(out_dir / "device_validation.tsv", [row.to_dict() for row in rows])]


def _skip_reason(compiled, max_instructions: int) -> str | None:
    if compiled.program is None:
        return f"not compiled: {compiled.row['status']}"
    if compiled.executed_instructions > max_instructions:
        return (f"skipped: {compiled.executed_instructions:,} instructions > max_instructions "
                f"{max_instructions:,}")
    return None


def cycle_row(config, compiled, stats, seconds: float) -> dict:
    """The cycle.tsv row of one simulated step program (a CompiledProgram, its CycleStats)."""
    from npu.check.crossval import UNIT_CLASSES

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


def _skipped_row(config, compiled, reason: str, **extra) -> dict:
    return {"npu": config.name, "model": compiled.row["model"], "step": compiled.step,
            "query_length": compiled.row["query_length"], "status": reason, **extra}


def simulate_cycle_stage(npu: str | Path, compile_dir: str | Path, out_tsv: str | Path,
                         generation_tsv: str | Path | None = None, dram: str = "jedec",
                         max_instructions: int = 20_000_000, trace_dir: str | Path | None = None,
                         trace_max_instructions: int = 200_000, decoding: dict | None = None,
                         jedec_max_instructions: int = 2_000_000, model: str | Path | None = None,
                         settings=None, technology: str | Path | None = None,
                         whole_generation_kv_length: int = 0) -> list[dict]:
    """Simulate every compiled step program of one (npu, model) and write `out_tsv`.

    trace_dir: Chrome/Perfetto timelines (`<step>.trace.json`) of programs with at most
    `trace_max_instructions` instructions. decoding: the generation (gen_length, block_length,
    steps) of the per-token table `generation_tsv`; by default the one the analytical stage
    evaluates `model` (a model preset) on (npu.sim.analytical.scenarios.generation_recipe with
    `settings`, a ScenarioSettings).
    With dram="jedec", programs up to `jedec_max_instructions` run with the JEDEC model in the loop
    and their DRAM command trace is replayed through npu.sim.dram.check_trace (the row reports the
    commands checked and the timing violations found: the model must produce none); longer ones
    (the JEDEC model schedules every command in Python) run with the bandwidth backend, which the
    row's `dram_backend` column says. `technology`: a technology table replacing the preset's
    (the calibrated one, npu.hw.config.with_technology).

    `generation_tsv` is by default the steps' figures times their counts in the schedule; with
    `whole_generation_kv_length` > 0 it comes from every step of the generations simulated
    (`whole_generation_rows`: a sequence of that many positions, the prompt the part before the
    generated tokens).
    """
    import numpy as np

    from npu.hw.config import load_npu_config, with_technology
    from npu.sim.cycle.compiled import read_compiled_programs, generation_rows
    from npu.sim.cycle.simulator import CycleSimulator

    config = with_technology(load_npu_config(npu), technology)
    if decoding is None and model is not None:
        from npu.sim.analytical.scenarios import ScenarioSettings, generation_recipe

        decoding = generation_recipe(model, settings or ScenarioSettings())
    programs = read_compiled_programs(compile_dir)  # every listing assembled (named errors) before any output
    if trace_dir is not None:
        Path(trace_dir).mkdir(parents=True, exist_ok=True)  # an output even when no program is traced
    rows = []
    for compiled in programs:
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
        if whole_generation_kv_length:
            if model is None:
                raise ValueError("simulate_cycle: whole generations need the model preset (model=...)")
            generations = whole_generation_rows(config, model, decoding, whole_generation_kv_length, dram,
                                                jedec_max_instructions)
        else:
            generations = generation_rows(config, rows, decoding)
        write_tsv(generation_tsv, generations, missing="")
    return rows


def whole_generation_rows(config, model: str | Path, decoding: dict, kv_length: int, dram: str = "jedec",
                          jedec_max_instructions: int = 2_000_000,
                          caches: tuple[str, ...] = ("none", "prefix", "dual")) -> list[dict]:
    """Per cache mode, a whole top-k generation with every step run on the cycle simulator
    (npu.runtime.cycle_generation: each step its own program and run-time parameters; steps whose
    start state or timing inputs were already simulated reuse those statistics exactly).

    The step programs are compiled here, one per query length, as npu.runtime's SimulatorStepper
    compiles them (for the compile stage's query lengths they are its programs word for word).
    The sequence holds `kv_length` positions: a prompt of kv_length - gen_length, then the
    generated tokens. Programs up to `jedec_max_instructions` run with the JEDEC DRAM model when
    dram is "jedec", longer ones with the bandwidth model (as in cycle.tsv)."""
    import numpy as np

    from npu.compiler import CompileError
    from npu.compiler.context import StepSpec
    from npu.compiler.layout import Shapes
    from npu.compiler.lower import compile_spec
    from npu.models.presets import load_model_spec
    from npu.runtime.cycle_generation import StepProgram, generation_row, simulate_generations, topk_schedule

    spec = load_model_spec(model)
    gen, block, steps = decoding["gen_length"], decoding["block_length"], decoding["steps"]
    prompt = kv_length - gen
    if prompt < 1:
        raise ValueError(f"whole generation of {spec.name}: kv_length {kv_length} leaves no prompt before "
                         f"{gen} generated tokens")
    base = {"npu": config.name, "model": spec.name, "rule": "topk", "gen_length": gen, "block_length": block,
            "steps": steps, "prompt_length": prompt, "method": "every step simulated or exactly reused"}
    shapes = Shapes(spec.architecture, config, kv_length)
    try:
        shapes.check()
    except CompileError as error:
        return [base | {"cache": cache, "status": f"not compiled: {error}"} for cache in caches]
    programs: dict[int, StepProgram] = {}

    def program_for(query_length: int) -> StepProgram:
        if query_length not in programs:
            began = time.process_time()
            step = compile_spec(StepSpec(shapes, query_length, block, "topk"))
            programs[query_length] = StepProgram(np.asarray(step.program, "<u4"), step.dram_map, step.constants,
                                                 int(step.stats["executed_total"]))
            print(f"whole generation {config.name} {spec.name}: compiled the query-{query_length} step "
                  f"({step.stats['executed_total']:,} instructions, {time.process_time() - began:.1f} CPU s)",
                  file=sys.stderr, flush=True)
        return programs[query_length]

    def backend(program: StepProgram) -> str:
        return dram if dram != "jedec" or program.executed_instructions <= jedec_max_instructions else "bandwidth"

    schedules = [topk_schedule(cache, prompt, gen, block, steps) for cache in caches]
    tokens = np.array([0] * prompt + [spec.architecture.mask_token_id] * gen, np.int32)
    began = time.process_time()
    try:
        results = simulate_generations(config, schedules, program_for, tokens, dram=backend)
    except CompileError as error:
        return [base | {"cache": cache, "status": f"not compiled: {error}"} for cache in caches]
    seconds = time.process_time() - began
    rows = [base | {"cache": cache} | generation_row(config, result) | {"cpu_seconds_all_modes": seconds}
            for cache, result in zip(caches, results)]
    for row in rows:
        print(f"whole generation {config.name} {spec.name} {row['cache']}: {row['tokens_per_s']:.4g} tokens/s, "
              f"{row['steps']} steps ({row['steps_simulated']} simulated, {row['steps_same_start']} + "
              f"{row['steps_same_timing']} reused); {seconds:.0f} CPU s for all modes", file=sys.stderr, flush=True)
    return rows


def _dram_check(simulator, check: bool) -> dict:
    """Replay the run's JEDEC command trace through the independent timing checker."""
    if not check:
        return {"dram_commands_checked": "", "dram_timing_violations": "not checked"}
    from npu.sim.dram import check_trace

    trace = simulator.dram.model.trace
    violations = check_trace(trace, simulator.dram.timing)
    for violation in violations[:5]:
        print(f"  DRAM timing violation: {violation}", file=sys.stderr)
    return {"dram_commands_checked": len(trace), "dram_timing_violations": len(violations)}


def crossvalidate_stage(npu: str | Path, compile_dir: str | Path, out_tsv: str | Path,
                        max_instructions: int = 20_000_000) -> list[dict]:
    """Analytical program model vs cycle simulator (bandwidth DRAM) for every compiled step:
    rows of kind total / class / operator with both cycle counts and the relative error."""
    import numpy as np

    from npu.check.crossval import crossvalidate
    from npu.hw.config import load_npu_config
    from npu.sim.analytical.program import comment_regions
    from npu.sim.cycle.compiled import read_compiled_programs

    config = load_npu_config(npu)
    rows = []
    for compiled in read_compiled_programs(compile_dir):
        base = {"npu": config.name, "model": compiled.row["model"], "step": compiled.step}
        reason = _skip_reason(compiled, max_instructions)
        if reason is not None:
            rows.append(base | {"status": reason})
            continue
        print(f"crossvalidate {config.name} {compiled.row['model']} {compiled.step}: "
              f"{compiled.executed_instructions:,} instructions ...", file=sys.stderr, flush=True)
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
    from npu.plots.crossval import crossval_summary_figure

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
    crossval_summary_figure(out_tsv, out_png)
    return rows


def roofline_stage(npu: str | Path, compile_dir: str | Path, out_tsv: str | Path, out_png: str | Path,
                   max_instructions: int = 20_000_000, attained: str = "cycle") -> list[dict]:
    """Every compiled step program of one (npu, model) against the machine's roofline
    (npu.check.roofline): a row per operator, per operator group (the same operator over all
    layers) and per step, and a figure of attained vs bound cycles per group and step.

    attained: "cycle" (cycle simulator, bandwidth DRAM backend) or "analytical" (static walk).
    Programs that did not compile or execute more than `max_instructions` get a status row."""
    from npu.check.roofline import roofline
    from npu.hw.config import load_npu_config
    from npu.plots.roofline import roofline_figure
    from npu.sim.cycle.compiled import read_compiled_programs

    config = load_npu_config(npu)
    rows = []
    for compiled in read_compiled_programs(compile_dir):
        base = {"npu": config.name, "model": compiled.row["model"], "step": compiled.step,
                "query_length": compiled.row["query_length"]}
        reason = _skip_reason(compiled, max_instructions)
        if reason is not None:
            rows.append(base | {"status": reason, "attained": attained})
            print(f"roofline {config.name} {compiled.row['model']} {compiled.step}: {reason}", file=sys.stderr)
            continue
        print(f"roofline {config.name} {compiled.row['model']} {compiled.step}: "
              f"{compiled.executed_instructions:,} instructions ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        result = roofline(compiled.program, config, attained=attained, max_instructions=max_instructions + 1)
        rows += [base | {"status": "ok", "attained": attained} | _ten_digits(row) for row in result.rows()]
        total = result.total
        print(f"roofline {config.name} {compiled.row['model']} {compiled.step}: {total.attained_cycles:,.0f} cycles "
              f"({attained}), bound {total.bound_cycles:,.0f} ({total.binds}): {total.roofline_fraction:.1%} of the "
              f"roofline ({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
    write_tsv(out_tsv, rows, missing="")
    roofline_figure(out_tsv, out_png)
    return rows


def _ten_digits(row: dict) -> dict:
    """Floats as 10 significant digits: write_tsv's 6 would not let a 2e8-cycle step's operators
    add up to its total in the table."""
    return {key: f"{value:.10g}" if isinstance(value, float) else value for key, value in row.items()}
