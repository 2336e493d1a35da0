"""Figures 1 (where a dLLM step's time goes: transformer layers / attention / LM head / sampling,
on the NPU presets and the modelled GPUs) and 9 (the sampling share with and without the dLLM
instructions: the dnpu presets vs the autoregressive baseline `ar-npu`).

The per-operator split comes from the roofline tables (`results/{npu}/{model}/roofline.tsv`: one
row per operator of each compiled step program, in program order, with its attained cycles); the
whole-generation sampling share from the analytical tables (`analytical.tsv`, and
`results/gpu/gpu_generations.tsv` for the GPU models, whose tables split only sampling from the
rest of the step)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from npu.plots.common import finite, note, number, pyplot, read_table, read_tables, save_figure, shorten, value_axis
from npu.plots.roofline import ROOFLINE_COLUMNS, ROOFLINE_RESULTS

CATEGORIES = ("transformer layers", "attention", "LM head", "sampling")
CATEGORY_NOTES = {
    "transformer layers": "embedding, Q/K/V/O projections, MLP, norms, residual adds",
    "attention": "scores, softmax, weighted sum, RoPE, KV-cache writes",
    "LM head": "final norm and vocabulary projection",
    "sampling": "softmax/argmax over the vocabulary, confidence, commit",
}
LM_HEAD_OPERATORS = ("final_norm", "lm_head")
GENERATION_COLUMNS = ("machine", "model", "cache", "rule", "sampling_share", "status")
GPU_GENERATION_COLUMNS = ("machine", "model", "cache", "rule", "sampling_share")
GPU_SWEEP_COLUMNS = ("gpu", "model", "temperature", "prompt_length", "gen_length", "cache", "sampling_share")
PAPER_GPU_SAMPLING_SHARE = 0.70  # d-PLENA (arXiv 2601.20706) v1: sampling takes up to 70 % of GPU latency


def operator_category(name: str, after_lm_head: bool) -> str:
    """The latency category of one operator of a step program, by its IR name: operators inside a
    transformer block's attention that are not weight projections are attention; the rest of a
    block is the transformer layers; the final norm and vocabulary projection are the LM head;
    whatever runs after the LM head is the sampling pass."""
    if name.startswith("blocks."):
        inner = name.split(".", 2)[2] if name.count(".") >= 2 else ""
        if inner.startswith("attn.") and not inner.endswith("_proj"):
            return "attention"
        return "transformer layers"
    if name in LM_HEAD_OPERATORS:
        return "LM head"
    return "sampling" if after_lm_head else "transformer layers"


def step_breakdown(rows: list[dict]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Attained cycles per category of every (npu, model, step) with per-operator rows, in
    program order as the roofline table lists them."""
    result: dict[tuple[str, str, str], dict[str, float]] = {}
    seen_lm_head: dict[tuple[str, str, str], bool] = {}
    for row in rows:
        if row["status"] != "ok" or row["kind"] != "operator":
            continue
        key = (row["npu"], row["model"], row["step"])
        after = seen_lm_head.get(key, False)
        category = operator_category(row["operator"], after)
        seen_lm_head[key] = after or row["operator"] == "lm_head"
        totals = result.setdefault(key, dict.fromkeys(CATEGORIES, 0.0))
        totals[category] += max(number(row["attained_cycles"]), 0.0)
    return result


def latency_breakdown_figure(roofline_tsvs: Sequence[str | Path], analytical_tsvs: Sequence[str | Path],
                             gpu_generations_tsv: str | Path | None, gpu_sweep_tsv: str | Path | None,
                             out_png: str | Path) -> Path:
    """Top: the share of each category in every compiled step program (one bar per NPU preset,
    model and step program; its cycle count written beside it). Bottom: the sampling share of
    whole generations of the public-shape models on every NPU preset and modelled GPU, per cache
    mode and commit rule, with the paper's GPU claim and the largest share of the GPU sweep."""
    breakdown = step_breakdown(read_tables(roofline_tsvs, ROOFLINE_COLUMNS, ROOFLINE_RESULTS))
    generations = [r for r in read_tables(analytical_tsvs, GENERATION_COLUMNS)]
    gpu_rows = list(read_table(gpu_generations_tsv, GPU_GENERATION_COLUMNS)) if gpu_generations_tsv else []
    sweep = list(read_table(gpu_sweep_tsv, GPU_SWEEP_COLUMNS)) if gpu_sweep_tsv else []
    public = list(dict.fromkeys(r["model"] for r in gpu_rows))
    plt = pyplot()
    height = 0.32 * max(4, len(breakdown)) + 6.5
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, height),
                                      gridspec_kw={"height_ratios": [max(4, len(breakdown)), 8]})
    keys = list(breakdown)
    if keys:
        left = [0.0] * len(keys)
        for i, category in enumerate(CATEGORIES):
            shares = [100 * breakdown[k][category] / max(sum(breakdown[k].values()), 1e-30) for k in keys]
            top.barh(range(len(keys)), shares, left=left, color=f"C{i}",
                     label=f"{category} ({CATEGORY_NOTES[category]})")
            left = [a + b for a, b in zip(left, shares)]
        top.set_yticks(range(len(keys)), [f"{npu} {model} {step}" for npu, model, step in keys], fontsize=7)
        for y, k in enumerate(keys):
            top.text(101, y, f"{sum(breakdown[k].values()):,.0f} cycles", va="center", fontsize=6)
        top.invert_yaxis()
        top.set_xlim(0, 118)
        top.set_xlabel("share of the step program's cycles, % (roofline stage, attained cycles)")
        fig.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    else:
        note(top, "no step program with per-operator cycles (none compiled or all skipped)")
    top.set_title("Where a denoising step's time goes on the NPU presets (per compiled step program)", fontsize=10)

    machines = list(dict.fromkeys([r["machine"] for r in generations if r["model"] in public]
                                  + [r["machine"] for r in gpu_rows]))
    configs = list(dict.fromkeys((r["cache"], r["rule"]) for r in gpu_rows))
    groups = [(model, cache, rule) for model in public for cache, rule in configs]
    if groups:
        share = {(r["machine"], r["model"], r["cache"], r["rule"]): number(r["sampling_share"])
                 for r in generations + gpu_rows}
        width = 0.8 / max(1, len(machines))
        gpu_names = {r["machine"] for r in gpu_rows}
        for i, machine in enumerate(machines):
            xs = [g + (i - (len(machines) - 1) / 2) * width for g in range(len(groups))]
            values = [100 * share.get((machine, *group), float("nan")) for group in groups]
            bottom.bar(xs, [v if finite(v) else 0 for v in values], width, color=f"C{(i + 4) % 10}",
                       hatch="//" if machine in gpu_names else None, edgecolor="white",
                       label=f"{machine} ({'GPU model' if machine in gpu_names else 'NPU'})")
        bottom.axhline(100 * PAPER_GPU_SAMPLING_SHARE, color="k", linestyle="--", linewidth=0.8,
                       label=f"paper (v1): sampling up to {PAPER_GPU_SAMPLING_SHARE:.0%} of GPU latency")
        if sweep:
            peak = max(sweep, key=lambda r: number(r["sampling_share"]))
            bottom.axhline(100 * number(peak["sampling_share"]), color="grey", linestyle=":", linewidth=0.8,
                           label=(f"largest share in the GPU sweep: {number(peak['sampling_share']):.1%} "
                                  f"({peak['gpu']}, {peak['model']}, T={peak['temperature']}, prompt "
                                  f"{peak['prompt_length']}, gen {peak['gen_length']}, {peak['cache']} cache)"))
        bottom.set_xticks(range(len(groups)), [f"{m}\n{c} cache\n{r}" for m, c, r in groups], fontsize=7)
        bottom.set_ylabel("sampling share of generation time, %")
        bottom.set_ylim(0, 100)
        bottom.legend(fontsize=6, loc="upper left", ncol=2)
        bottom.grid(axis="y", alpha=0.3)
        missing = sorted({f"{r['machine']} {r['model']}: {shorten(r['status'], 70)}" for r in generations
                          if r["model"] in public and r["status"] != "ok"})
        if missing:
            bottom.text(0.0, -0.3, "no bar (step does not compile):\n" + "\n".join(missing),
                        transform=bottom.transAxes, fontsize=6, va="top")
    else:
        note(bottom, "no public-shape model in this run: no GPU comparison")
    bottom.set_title("Sampling share of whole generations (analytical models): NPU presets vs GPU models", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height))  # room for the category legend above
    return save_figure(fig, out_png)


def sampling_share_figure(analytical_tsvs: Sequence[str | Path], roofline_tsvs: Sequence[str | Path],
                          out_png: str | Path, baseline: str = "ar-npu") -> Path:
    """Left: the sampling share of every generation (model, cache mode, commit rule) on each NPU
    preset, the baseline without the dLLM instructions hatched. Right: the cycles of the sampling
    pass in each compiled step program (log scale), per preset."""
    generations = read_tables(analytical_tsvs, GENERATION_COLUMNS)
    breakdown = step_breakdown(read_tables(roofline_tsvs, ROOFLINE_COLUMNS, ROOFLINE_RESULTS))
    machines = list(dict.fromkeys(r["machine"] for r in generations))
    machines = [m for m in machines if m != baseline] + [m for m in machines if m == baseline]
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    ok = [r for r in generations if r["status"] == "ok"]
    groups = list(dict.fromkeys((r["model"], r["cache"], r["rule"]) for r in ok))
    share = {(r["machine"], r["model"], r["cache"], r["rule"]): number(r["sampling_share"]) for r in ok}
    width = 0.8 / max(1, len(machines))
    for i, machine in enumerate(machines):
        xs = [g + (i - (len(machines) - 1) / 2) * width for g in range(len(groups))]
        values = [100 * share.get((machine, *group), float("nan")) for group in groups]
        left.bar(xs, [v if finite(v) else 0 for v in values], width, color=f"C{i}",
                 hatch="//" if machine == baseline else None, edgecolor="white",
                 label=f"{machine}" + (" (no dLLM instructions)" if machine == baseline else " (dLLM instructions)"))
    if groups:
        left.set_xticks(range(len(groups)), [f"{m}\n{c}\n{r}" for m, c, r in groups], fontsize=6)
        left.legend(fontsize=7)
    else:
        note(left, "no generation with figures (nothing compiled)")
    left.set_ylabel("sampling share of generation time, % (analytical model)")
    left.set_title("Sampling share of a generation per NPU preset"
                   + ("" if baseline in machines else f"\n({baseline} is not in this run's npus: no baseline bars)"),
                   fontsize=10)
    left.grid(axis="y", alpha=0.3)

    steps = list(dict.fromkeys((model, step) for _, model, step in breakdown))
    step_machines = [m for m in machines if any(k[0] == m for k in breakdown)] or \
        list(dict.fromkeys(k[0] for k in breakdown))
    width = 0.8 / max(1, len(step_machines))
    for i, machine in enumerate(step_machines):
        xs = [s + (i - (len(step_machines) - 1) / 2) * width for s in range(len(steps))]
        values = [breakdown.get((machine, model, step), {}).get("sampling", 0.0) for model, step in steps]
        right.bar(xs, values, width, color=f"C{machines.index(machine) if machine in machines else i}",
                  hatch="//" if machine == baseline else None, edgecolor="white", label=machine)
    if steps:
        value_axis(right, [v.get("sampling", 0.0) for v in breakdown.values()])
        right.set_xticks(range(len(steps)), [f"{m}\n{s}" for m, s in steps], fontsize=6)
        right.legend(fontsize=7)
    else:
        note(right, "no step program with per-operator cycles")
    right.set_ylabel("sampling-pass cycles per step program")
    right.set_title("Cycles of the sampling pass (roofline stage)", fontsize=10)
    right.grid(axis="y", alpha=0.3)
    fig.suptitle("Sampling on the NPU with the dLLM instructions (dnpu presets) and without them "
                 f"({baseline})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)
