"""Which generations the compiler accepts, for the tables of the analytical model.

The analytical model costs any step shape in closed form, so on its own it would report
tokens/s for a model the machine cannot run (e.g. a d_model that the matrix unit's MLEN-wide
tiles do not divide). Its table takes the compiler's verdict from here instead: a generation
whose step programs the compiler refuses gets a row with `status` `does-not-compile`, the
compiler's message in `error`, and no figures.

The verdict combines the compile stage's own table (`compile.tsv`, when given: the pipeline
passes it) with the checks the compiler runs before it emits code (`StepSpec.check`: tiling,
head_dim, KV format, sampling rule) on every step shape of the generation, since the compiled
steps may have other shapes (shape-only models are compiled at a shorter sequence).
"""

from __future__ import annotations

import csv
from pathlib import Path

from npu.compiler.asm import CompileError
from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes
from npu.errors import UserError
from npu.hw.config import NPUConfig
from npu.models.transformer import ModelConfig
from npu.sim.analytical.generation import GenerationSetup, generation_report, step_schedule

# The step programs a generation of each cache mode runs (compile.tsv's `step` column).
STEPS_BY_CACHE = {"none": ("refresh",), "prefix": ("refresh", "prefix_inblock"),
                  "dual": ("refresh", "dual_inblock")}
# GenerationReport.row()'s columns that are figures (left empty in a refused row).
FIGURE_COLUMNS = ("steps", "refresh_steps", "latency_per_step_ms", "latency_per_token_ms", "tokens_per_s",
                  "utilisation", "energy_per_token_mj", "dram_mb_per_token", "sampling_share", "total_s",
                  "roofline_tokens_per_s")
OK, REFUSED = "ok", "does-not-compile"


class CompileTableError(UserError, ValueError):
    """A compile table that is missing or lacks the columns the analytical stage reads."""


def rule_name(setup: GenerationSetup) -> str:
    """The `rule` column of a generation, as GenerationReport writes it."""
    threshold = setup.decode.threshold
    return "topk" if threshold is None else f"threshold{threshold:g}"


def static_refusal(npu: NPUConfig, model: ModelConfig, setup: GenerationSetup) -> str | None:
    """The CompileError message the compiler raises, before emitting code, for a step of this
    generation on this machine; None when every step shape passes."""
    for shape, _count in step_schedule(setup):
        spec = StepSpec(Shapes(model, npu, shape.kv_length), shape.query_length, shape.sample_length,
                        shape.sampling)
        try:
            spec.check()
        except CompileError as exc:
            return str(exc)
    return None


def read_compile_verdicts(path: str | Path) -> dict[str, str]:
    """step kind -> '' (compiled) or the compiler's error, from a compile stage's compile.tsv."""
    path = Path(path)
    if not path.is_file():
        raise CompileTableError(f"{path}: no compile table (run the compile stage first)")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in ("step", "status", "error") if c not in (reader.fieldnames or [])]
        if missing:
            raise CompileTableError(f"{path}: not a compile table (no column {', '.join(missing)})")
        rows = list(reader)
    return {row["step"]: "" if row["status"] == OK else (row["error"] or row["status"]) for row in rows}


def table_refusal(verdicts: dict[str, str], cache: str, table: str | Path) -> str | None:
    """Why the compile table says this cache mode's generation does not run; None if it does."""
    for step in STEPS_BY_CACHE[cache]:
        if step not in verdicts:
            return f"{table}: no {step} program (not compiled)"
        if verdicts[step]:
            return f"{step}: {verdicts[step]}"
    return None


def refused_row(machine: str, model: ModelConfig, setup: GenerationSetup, reason: str) -> dict:
    """A table row naming the generation and why it does not compile, with no figures."""
    decode = setup.decode
    return {"machine": machine, "model": model.name, "cache": decode.cache, "rule": rule_name(setup),
            "status": REFUSED, "prompt_length": setup.prompt_length, "gen_length": decode.gen_length,
            "block_length": decode.block_length, **dict.fromkeys(FIGURE_COLUMNS, ""), "error": reason}


def analytical_rows(machine, npu: NPUConfig, model: ModelConfig, setups: list[GenerationSetup],
                    compile_table: str | Path | None = None) -> list[dict]:
    """The analytical table of one (machine, model): a `status` column, figures only for the
    generations the compiler accepts (see the module docstring). `machine` is a StepModel."""
    verdicts = read_compile_verdicts(compile_table) if compile_table is not None else None
    shared: dict = {}
    rows = []
    for setup in setups:
        reason = None if verdicts is None else table_refusal(verdicts, setup.decode.cache, compile_table)
        if reason is None:  # the compile table's steps may have other shapes than this generation's
            reason = static_refusal(npu, model, setup)
        if reason is not None:
            rows.append(refused_row(machine.name, model, setup, reason))
            continue
        row = generation_report(machine, model, setup, shared).row()
        identity = {key: row.pop(key) for key in ("machine", "model", "cache", "rule")}
        rows.append({**identity, "status": OK, **row, "error": ""})
    return rows
