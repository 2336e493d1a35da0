"""The compile stage's output as the simulators read it: compile.tsv's rows with their programs.

- `read_compiled_programs(compile_dir)`: every row of `compile.tsv` (in `STEP_ORDER`) with its
  program assembled from `<step>.s` (None when it did not compile);
- `generation_rows(config, step_rows, decoding)`: whole top-k generations (per cache mode) from
  simulated step programs: the cycle stage's `cycle_generation.tsv`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program, assemble

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
