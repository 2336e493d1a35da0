"""Figure 2 (tokens/s and energy per token: NPU presets, the AR-NPU and the modelled GPUs) and
the speedup-ratio figure of the speedup stage, both from `results/speedup.tsv`."""

from __future__ import annotations

from pathlib import Path

from npu.plots.common import finite, note, number, pyplot, read_table, save_figure, shorten, value_axis

SPEEDUP_COLUMNS = ("model", "cache", "rule", "npu", "gpu", "npu_tokens_per_s", "gpu_tokens_per_s", "speedup",
                   "npu_energy_per_token_mj", "gpu_energy_per_token_mj", "bandwidth_matched_speedup",
                   "paper_speedup", "status")


def _configurations(rows: list[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["cache"], r["rule"]) for r in rows))


def throughput_energy_figure(speedup_tsv: str | Path, out_png: str | Path) -> Path:
    """Per public-shape model, tokens/s (left) and energy per generated token (right) of every NPU
    preset and modelled GPU for each (cache mode, commit rule), log scales; each NPU bar is
    labelled with its speedup over the first GPU of the table (the RTX A6000 of the paper's claim).
    A preset whose step does not compile has no bar and is named under the panel."""
    rows = read_table(speedup_tsv, SPEEDUP_COLUMNS)
    models = list(dict.fromkeys(r["model"] for r in rows))
    plt = pyplot()
    fig, axes = plt.subplots(max(1, len(models)), 2, figsize=(12, 4.2 * max(1, len(models))), squeeze=False)
    if not rows:
        note(axes[0, 0], f"{speedup_tsv}: no rows")
    for (tok_ax, energy_ax), model in zip(axes, models):
        mine = [r for r in rows if r["model"] == model]
        configs = _configurations(mine)
        npus = list(dict.fromkeys(r["npu"] for r in mine))
        gpus = list(dict.fromkeys(r["gpu"] for r in mine))
        reference = gpus[0] if gpus else None
        machines = [(name, "npu") for name in npus] + [(name, "gpu") for name in gpus]
        width = 0.8 / max(1, len(machines))

        def value(config, name, kind, quantity):
            for r in mine:
                if (r["cache"], r["rule"]) == config and r[kind] == name:
                    return number(r[f"{kind}_{quantity}"]), r
            return float("nan"), None

        for ax, quantity, label in ((tok_ax, "tokens_per_s", "tokens/s"),
                                    (energy_ax, "energy_per_token_mj", "energy per generated token, mJ")):
            for i, (name, kind) in enumerate(machines):
                xs = [c + (i - (len(machines) - 1) / 2) * width for c in range(len(configs))]
                values = [value(config, name, kind, quantity)[0] for config in configs]
                bars = ax.bar(xs, [v if finite(v) else 0 for v in values], width,
                              label=f"{name} ({'NPU' if kind == 'npu' else 'GPU model'})",
                              color=f"C{i}", hatch=None if kind == "npu" else "//", edgecolor="white")
                if kind == "npu" and quantity == "tokens_per_s" and reference:
                    for bar, config in zip(bars, configs):
                        ratio = next((number(r["speedup"]) for r in mine if (r["cache"], r["rule"]) == config
                                      and r["npu"] == name and r["gpu"] == reference), float("nan"))
                        if finite(ratio):
                            ax.annotate(f"{ratio:.3g}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                        ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                                        textcoords="offset points")
            value_axis(ax, [number(r[f"{kind}_{quantity}"]) for r in mine for kind in ("npu", "gpu")], span=10.0)
            low, high = ax.get_ylim()
            ax.set_ylim(low, high * (2.0 if ax.get_yscale() == "log" else 1.12))  # room for the speedup labels
            ax.set_xticks(range(len(configs)), [f"{cache} cache\n{rule}" for cache, rule in configs], fontsize=8)
            ax.set_ylabel(label)
            ax.grid(axis="y", which="major", alpha=0.3)
        tok_ax.set_title(f"{model}: tokens/s (labels: NPU speedup over {reference})", fontsize=9)
        energy_ax.set_title(f"{model}: energy per generated token", fontsize=9)

        failed = sorted({f"{r['npu']}: {shorten(r['status'], 90)}" for r in mine if r["status"] != "ok"})
        if failed:
            energy_ax.text(0.0, -0.28, "no bar (step does not compile):\n" + "\n".join(failed),
                           transform=energy_ax.transAxes, fontsize=6, va="top")
    height = fig.get_figheight()
    fig.suptitle("Generation throughput and energy: NPU presets vs modelled GPUs (analytical models, same schedule)",
                 fontsize=10, y=1 - 0.05 / height)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:  # one legend for every panel, under the title
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.3 / height),
                   ncol=min(6, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.62 / height))
    return save_figure(fig, out_png)


def speedup_figure(speedup_tsv: str | Path, out_png: str | Path) -> Path:
    """Speedup over each GPU per (NPU, model, cache, rule), bandwidth-matched beside it, on a log
    axis (the ratios span orders of magnitude across presets); configurations without figures
    are listed, not drawn, so the figure exists even when nothing compiled."""
    rows = read_table(speedup_tsv, SPEEDUP_COLUMNS)
    ok = [row for row in rows if row["status"] == "ok"]
    groups = list(dict.fromkeys((r["npu"], r["model"], r["cache"], r["rule"]) for r in ok))
    gpus = list(dict.fromkeys(r["gpu"] for r in ok))
    paper = next((number(r["paper_speedup"]) for r in rows if finite(number(r["paper_speedup"]))), float("nan"))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(groups)), 4.5))
    if ok:
        value = {(r["npu"], r["model"], r["cache"], r["rule"], r["gpu"]): r for r in ok}
        width = 0.8 / (2 * len(gpus))
        for i, gpu in enumerate(gpus):
            for j, (key, name, hatch) in enumerate((("speedup", f"vs {gpu}", None),
                                                    ("bandwidth_matched_speedup", f"vs {gpu}, per GB/s", "//"))):
                offset = (2 * i + j - len(gpus) + 0.5) * width
                ax.bar([g + offset for g in range(len(groups))],
                       [number(value[(*group, gpu)][key]) if (*group, gpu) in value else 0 for group in groups],
                       width, label=name, hatch=hatch, color=f"C{i}", alpha=0.55 if hatch else 1.0)
        value_axis(ax, [number(r[k]) for r in ok for k in ("speedup", "bandwidth_matched_speedup")] + [1.0], span=1.0)
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=0.8, label="parity")
        if finite(paper):
            ax.axhline(paper, color="k", linestyle="--", linewidth=0.8, label=f"paper: {paper:g}x over the A6000")
        ax.set_xticks(range(len(groups)), ["\n".join(group) for group in groups], fontsize=7)
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    failed = sorted({f"{r['npu']} {r['model']}: {shorten(r['status'], 60)}" for r in rows if r["status"] != "ok"})
    if failed:
        ax.text(0.01, 0.99, "no figures:\n" + "\n".join(failed), transform=ax.transAxes, fontsize=7, va="top")
    ax.set_ylabel("NPU tokens/s / GPU tokens/s")
    ax.set_title("NPU presets vs modelled GPUs, same generations (analytical models)")
    fig.tight_layout()
    return save_figure(fig, out_png)
