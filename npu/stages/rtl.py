"""Stage of workflow/rules/rtl.smk: `rtl_verify` (`npu rtl-verify`).

Compiled step programs of a trained model on the RTL (npu_top, a reduced machine of the preset:
npu.check.rtl.rtl_machine): a generation decoded by the runtime on the functional simulator, each
of its first `steps` steps run on the RTL from the same DRAM image and compared bit for bit
(registers, all four SRAMs, DRAM), with the RTL's cycles beside the cycle simulator's; then the
microbenchmarks of npu/rtl/top_microbenchmarks.py. One row per program in verify.tsv; a value
change dump of the first cycles of one compiled step for the synthesis power step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu.io import write_tsv


def rtl_verify_stage(npu: str | Path, checkpoints: list[str | Path], out: str | Path, vcd: str | Path,
                     caches: list[str] = ("dual",), steps: int = 2, simulator: str = "verilator",
                     vcd_cycles: int = 2000, seed: int = 1234, microbenchmarks: bool = True) -> list[dict]:
    """Write verify.tsv (`out`) and the activity dump (`vcd`); returns the table's rows."""
    from npu.check.prompts import task_prompts
    from npu.check.rtl import (STEP_DRAM_BYTES, STEP_PROGRAM_WORDS, dram_timing, microbenchmark_cases,
                               record_generation, rtl_machine, run_steps_on_rtl)
    from npu.hw.config import load_npu_config
    from npu.ir import weights_from_model
    from npu.models.checkpoint import load_checkpoint
    from npu.models.decoding import DecodeConfig
    from npu.models.tasks import get_task
    from npu.rtl.top_sim import record_activity

    if steps < 1:
        raise ValueError(f"--steps {steps}: run at least one step of each generation")
    preset = load_npu_config(npu)
    machine = rtl_machine(preset)
    print(f"rtl-verify: {preset.name} reduced to {machine.name}: VLEN {machine.vlen}, MLEN {machine.mlen}, "
          f"BLEN {machine.blen}; simulator {simulator}", flush=True)
    rows: list[dict] = []
    activity, dram_bytes = None, STEP_DRAM_BYTES
    for checkpoint in checkpoints:
        model, meta = load_checkpoint(str(checkpoint))
        spec = meta["extra"]["preset"]
        decoding = spec["decoding"]
        prompt = task_prompts(get_task(spec["task"]), 1, seed)[0][0]
        weights = weights_from_model(model)
        for cache in caches:
            plan = DecodeConfig(decoding["gen_length"], decoding["block_length"], decoding["steps"], cache)
            print(f"rtl-verify: {model.config.name} {cache}: decoding on the functional simulator", flush=True)
            cases, _ = record_generation(model.config, weights, machine, prompt, plan, max_steps=steps)
            print(f"rtl-verify: {model.config.name} {cache}: {len(cases)} steps on the RTL "
                  f"({sum(c.instructions for c in cases):,} instructions)", flush=True)
            results = run_steps_on_rtl(machine, cases, simulator, program_words=STEP_PROGRAM_WORDS,
                                       dram_bytes=STEP_DRAM_BYTES, progress=lambda line: print(line, flush=True))
            for result in results:
                rows.append({"npu": preset.name, "model": model.config.name, "cache": cache, **result.row()})
                print(f"rtl-verify: {result.name}: {'bit-exact' if result.bit_exact else 'DIFFERS'}, "
                      f"RTL {result.rtl_cycles:,} cycles, cycle simulator {result.cycle_sim_cycles:,} "
                      f"({result.error_pct:+.1f} %)", flush=True)
            if activity is None:
                activity = cases[-1]
    if microbenchmarks or activity is None:
        print("rtl-verify: microbenchmarks", flush=True)
        # beside compiled steps, padded to their DRAM (the same build); alone, a 16 KiB DRAM (faster dumps)
        dram_bytes = STEP_DRAM_BYTES if activity is not None else 1 << 14
        cases = microbenchmark_cases(machine)
        for result in run_steps_on_rtl(machine, cases, simulator, program_words=STEP_PROGRAM_WORDS,
                                       dram_bytes=dram_bytes):
            rows.append({"npu": preset.name, "model": "microbenchmark", "cache": "", **result.row()})
        activity = activity or cases[-1]   # no compiled step: the activity of the queue-overlap benchmark
    if not rows:
        raise ValueError("nothing to verify: give a --checkpoint or leave the microbenchmarks on")
    write_tsv(out, rows)
    print(f"rtl-verify: activity of {activity.name}, first {vcd_cycles} cycles -> {vcd}", flush=True)
    image = np.concatenate([activity.image, np.zeros(dram_bytes - len(activity.image), np.uint8)])
    record_activity(machine, activity.program, image, dram_timing(machine), Path(vcd), vcd_cycles,
                    simulator="icarus", program_words=STEP_PROGRAM_WORDS)
    bad = [row["program"] for row in rows if row["bit_exact"] is not True]
    print(f"rtl-verify: {len(rows) - len(bad)} of {len(rows)} programs bit-exact" + (f"; differ: {bad}" if bad else ""),
          flush=True)
    return rows


__all__ = ["rtl_verify_stage"]
