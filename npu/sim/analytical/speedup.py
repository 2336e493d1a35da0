"""The NPU against the modelled GPUs on the same generations: tokens/s, energy per token, ratios.

The pipeline already costs every generation twice - on each NPU preset
(`results/{npu}/{model}/analytical.tsv`) and on the roofline models of an RTX A6000, A100 and
H100 running the same decoding schedule (`results/gpu/gpu_generations.tsv`). This module only
reads and joins those tables, so the comparison can never drift from the figures it quotes.

Per (model, cache mode, commit rule, NPU preset, GPU) one row gives both machines' tokens/s and
energy per token, the speedup (NPU tokens/s / GPU tokens/s), the energy ratio (GPU mJ per token
/ NPU mJ per token; > 1 means the NPU spends less) and a bandwidth-matched speedup: each
machine's tokens/s divided by its peak DRAM bandwidth in GB/s (the NPU preset's
`dram.bandwidth_gbps`, the GPU spec's `memory_bandwidth`), then the ratio of those. Decoding a
dLLM step is mostly weight and KV streaming, so this ratio says whether the NPU's advantage
comes from its architecture or only from a faster memory; the `normalisation` column states it.

`PAPER_SPEEDUP_OVER_A6000` is the claim of the reference design, d-PLENA (arXiv 2601.20706:
up to 2.53x the generation speed of an RTX A6000), quoted on the A6000 rows for comparison.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from npu.sim.analytical.devices import GPU_PRESETS, GIGA

# d-PLENA (arXiv 2601.20706): the dLLM NPU's best generation speedup over an RTX A6000.
PAPER_SPEEDUP_OVER_A6000 = 2.53
PAPER_BASELINE_GPU = "rtx-a6000"

COMPARED_CACHES = ("dual", "prefix")  # the cache modes a deployed dLLM runs (the table)
NORMALISATION = "tokens/s per GB/s of peak DRAM bandwidth"
# Generation settings both tables carry: a ratio is only meaningful if they agree.
SCHEDULE_COLUMNS = ("prompt_length", "gen_length", "block_length", "steps", "refresh_steps")


def read_generations(path: str | Path) -> list[dict[str, str]]:
    """The rows of one generation table (analytical.tsv or gpu_generations.tsv), as strings.

    A missing table is named with the stage that writes it, since the usual cause is running
    this comparison before the simulations."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generation table (written by simulate_analytical "
                                "for an NPU, gpu_baselines for the GPUs)")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    required = {"machine", "model", "cache", "rule", "tokens_per_s", "energy_per_token_mj"}
    if rows and (missing := required - set(rows[0])):
        raise ValueError(f"{path}: not a generation table, missing column(s) {', '.join(sorted(missing))}")
    return rows


def speedup_rows(npu_tables: Iterable[str | Path], npu_bandwidth_gbps: Mapping[str, float],
                 gpu_table: str | Path, gpu_bandwidth_gbps: Mapping[str, float] | None = None,
                 caches: tuple[str, ...] = COMPARED_CACHES) -> list[dict]:
    """One row per (model, cache, rule, NPU, GPU) of the NPU tables, cache modes in `caches`.

    npu_bandwidth_gbps: peak DRAM bandwidth (GB/s) of every NPU named in the tables' `machine`
    column; gpu_bandwidth_gbps: the same per GPU (default: the GPU specs the GPU table was
    modelled with, npu.sim.analytical.devices.GPU_PRESETS). An NPU row whose status is not "ok"
    (a step that does not compile) is kept with its status and NaN figures and ratios, so the
    table shows which configurations have no answer rather than silently dropping them."""
    if gpu_bandwidth_gbps is None:
        gpu_bandwidth_gbps = {name: spec.memory_bandwidth / GIGA for name, spec in GPU_PRESETS.items()}
    gpu_rows: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in read_generations(gpu_table):
        gpu_rows.setdefault((row["model"], row["cache"], row["rule"]), []).append(row)
    out = []
    for table in npu_tables:
        for npu in read_generations(table):
            if npu["cache"] not in caches:
                continue
            if npu["machine"] not in npu_bandwidth_gbps:
                raise ValueError(f"{table}: machine {npu['machine']!r} is not among the NPU presets given "
                                 f"({', '.join(npu_bandwidth_gbps)})")
            key = (npu["model"], npu["cache"], npu["rule"])
            if key not in gpu_rows:
                raise ValueError(f"{gpu_table}: no GPU generation of {'/'.join(key)} to compare {table} with")
            for gpu in gpu_rows[key]:
                out.append(_compare(npu, gpu, npu_bandwidth_gbps[npu["machine"]],
                                    _gpu_bandwidth(gpu["machine"], gpu_bandwidth_gbps, gpu_table), table))
    if not out:
        raise ValueError(f"no {' or '.join(caches)} generation in the NPU tables to compare")
    return out


def _gpu_bandwidth(name: str, bandwidths: Mapping[str, float], table: str | Path) -> float:
    if name not in bandwidths:
        raise ValueError(f"{table}: GPU {name!r} has no known DRAM bandwidth (known: {', '.join(bandwidths)})")
    return bandwidths[name]


def _compare(npu: Mapping[str, str], gpu: Mapping[str, str], npu_gbps: float, gpu_gbps: float,
             table: str | Path) -> dict:
    """One comparison row; the schedules must match, or the ratio would compare different work
    (a configuration that does not compile has NaN for its schedule: nothing to check)."""
    for column in SCHEDULE_COLUMNS:
        if column not in npu or column not in gpu:
            continue
        mine, theirs = _number(npu[column]), _number(gpu[column])
        if not (math.isnan(mine) or math.isnan(theirs)) and mine != theirs:
            raise ValueError(f"{table}: {npu['model']} {npu['cache']}/{npu['rule']}: {column} is {npu[column]} "
                             f"on {npu['machine']} but {gpu[column]} on {gpu['machine']} (not the same schedule)")
    status = npu.get("status", "ok")
    npu_tps, npu_mj = _number(npu["tokens_per_s"]), _number(npu["energy_per_token_mj"])
    gpu_tps, gpu_mj = _number(gpu["tokens_per_s"]), _number(gpu["energy_per_token_mj"])
    if status != "ok":
        npu_tps = npu_mj = math.nan  # whatever the table holds, a failed configuration has no figure
    speedup = npu_tps / gpu_tps
    return {
        "model": npu["model"], "cache": npu["cache"], "rule": npu["rule"],
        "gen_length": npu.get("gen_length", ""), "block_length": npu.get("block_length", ""),
        "npu": npu["machine"], "gpu": gpu["machine"],
        "npu_tokens_per_s": npu_tps, "gpu_tokens_per_s": gpu_tps, "speedup": speedup,
        "npu_energy_per_token_mj": npu_mj, "gpu_energy_per_token_mj": gpu_mj,
        "energy_ratio_gpu_over_npu": gpu_mj / npu_mj if status == "ok" else math.nan,
        "npu_bandwidth_gbps": npu_gbps, "gpu_bandwidth_gbps": gpu_gbps,
        "bandwidth_matched_speedup": (npu_tps / npu_gbps) / (gpu_tps / gpu_gbps),
        "normalisation": NORMALISATION,
        "paper_speedup": PAPER_SPEEDUP_OVER_A6000 if gpu["machine"] == PAPER_BASELINE_GPU else math.nan,
        "status": status,
    }


def _number(text: str) -> float:
    """A table cell as a float ("nan" and an empty cell are NaN)."""
    return float(text) if text not in ("", None) else math.nan
