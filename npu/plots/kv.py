"""Figures 5 (KV-cache accuracy vs bits per method, and the BAOS ablation) and 6 (K/V
distribution drift across steps and blocks), from the KV study's tables in `results/kv/`."""

from __future__ import annotations

import math
from pathlib import Path

from npu.plots.common import finite, note, number, pyplot, read_table, save_figure, value_axis

ACCURACY_COLUMNS = ("model", "method", "bits", "cache", "metric", "value", "ci95", "n", "status")
ABLATION_COLUMNS = ("variant", "model", "method", "bits", "cache", "metric", "value", "ci95", "n", "status")
CHANNEL_COLUMNS = ("model", "layer", "block", "tensor", "rows", "channel", "absmax")
STATS_COLUMNS = ("model", "layer", "tensor", "channel_max_over_median", "mask_over_decoded_absmax",
                 "block_drift_median", "block_drift_p90", "step_drift_median", "step_drift_p90")


def _metric_label(metric: str) -> str:
    return {"exact_match": "exact match (fraction of prompts)", "perplexity": "perplexity (lower is better)"}.get(
        metric, metric)


def _bits_axis(ax, bits: list[int]) -> None:
    """Bit widths as evenly spaced categories, widest first (16 ... 2), as papers draw them."""
    ax.set_xticks(range(len(bits)), [str(b) for b in bits])
    ax.set_xlabel("KV-cache bits per element")


def _lines(ax, rows: list[dict], series_key: str, bits: list[int]) -> None:
    """One line per series against the bit width; a series measured at the widest width only (the
    bf16 reference) is a dashed horizontal line across the panel."""
    for i, series in enumerate(dict.fromkeys(r[series_key] for r in rows)):
        mine = {int(number(r["bits"])): r for r in rows if r[series_key] == series}
        if len(bits) > 1 and list(mine) == [bits[0]]:
            ax.axhline(number(mine[bits[0]]["value"]), color=f"C{i % 10}", linestyle="--", linewidth=1.2,
                       label=f"{series} ({bits[0]}-bit reference)")
            continue
        xs = [bits.index(b) for b in bits if b in mine]
        ys = [number(mine[b]["value"]) for b in bits if b in mine]
        errors = [number(mine[b]["ci95"]) for b in bits if b in mine]
        ax.errorbar(xs, ys, yerr=[e if finite(e) else 0 for e in errors], marker="o", markersize=4, capsize=2,
                    linewidth=1.2, label=series, color=f"C{i % 10}", linestyle="-" if i < 10 else "--")


def kv_accuracy_figure(accuracy_tsv: str | Path, ablation_tsv: str | Path, out_png: str | Path) -> Path:
    """One panel per (model, cache mode): the task metric of every KV method against the bit width
    (error bars: 95 % confidence half-width over the prompts); a last panel: the BAOS ablation,
    one line per design variant. Cells that did not run (status) are left out."""
    rows = [r for r in read_table(accuracy_tsv, ACCURACY_COLUMNS) if r["status"] == "ok"]
    ablation = [r for r in read_table(ablation_tsv, ABLATION_COLUMNS) if r["status"] == "ok"]
    cells = list(dict.fromkeys((r["model"], r["cache"]) for r in rows))
    panels = len(cells) + 1
    columns = min(3, panels)
    plt = pyplot()
    fig, axes = plt.subplots(math.ceil(panels / columns), columns, figsize=(5.2 * columns, 4.0 * math.ceil(panels / columns)),
                             squeeze=False)
    flat = list(axes.flat)
    for ax, (model, cache) in zip(flat, cells):
        mine = [r for r in rows if (r["model"], r["cache"]) == (model, cache)]
        bits = sorted({int(number(r["bits"])) for r in mine}, reverse=True)
        _lines(ax, mine, "method", bits)
        _bits_axis(ax, bits)
        prompts = max(int(number(r["n"])) for r in mine)
        ax.set_ylabel(_metric_label(mine[0]["metric"]))
        ax.set_title(f"{model}, {cache} cache ({prompts} prompts per cell)", fontsize=9)
        ax.legend(fontsize=7, title="KV method", title_fontsize=7)
        ax.grid(alpha=0.3)
    ax = flat[len(cells)]
    if ablation:
        bits = sorted({int(number(r["bits"])) for r in ablation}, reverse=True)
        _lines(ax, ablation, "variant", bits)
        _bits_axis(ax, bits)
        first = ablation[0]
        ax.set_ylabel(_metric_label(first["metric"]))
        ax.set_title(f"BAOS ablation: {first['model']}, {first['cache']} cache, {first['method']}", fontsize=9)
        ax.legend(fontsize=6, title="variant", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(alpha=0.3)
    else:
        note(ax, f"{ablation_tsv}: no ablation rows ran")
    if not cells:
        note(flat[0], f"{accuracy_tsv}: no accuracy cell ran")
    for ax in flat[panels:]:
        ax.axis("off")
    fig.suptitle("KV-cache quantization: task accuracy vs bits per method (accuracy simulator, NPU number formats)",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)


def _layer_axis(ax, stats: list[dict]) -> None:
    layers = sorted({int(number(r["layer"])) for r in stats})
    ax.set_xticks(layers, [str(layer) for layer in layers])
    ax.set_xlabel("layer")


def _drift_bars(ax, stats: list[dict], prefix: str, title: str) -> None:
    """Median (bar) and 90th percentile (tick) of one drift measure per layer, K and V."""
    for offset, tensor, colour in ((-0.2, "K", "C0"), (0.2, "V", "C1")):
        mine = [r for r in stats if r["tensor"] == tensor]
        xs = [number(r["layer"]) + offset for r in mine]
        ax.bar(xs, [number(r[f"{prefix}_median"]) for r in mine], width=0.4, color=colour, label=f"{tensor}: median")
        ax.scatter(xs, [number(r[f"{prefix}_p90"]) for r in mine], marker="_", s=200, color="k",
                   label="90th percentile" if tensor == "K" else None)
    ax.set_title(title, fontsize=9)
    _layer_axis(ax, stats)
    ax.set_ylabel("relative change of per-channel max|x|")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _channel_lines(ax, channels: list[dict], model: str) -> None:
    """Per-channel max|K| of each block's refresh: prompt + decoded rows solid, [MASK] rows dashed."""
    mine = [r for r in channels if r["model"] == model and r["tensor"] == "K"]
    blocks = list(dict.fromkeys(r["block"] for r in mine))
    for i, block in enumerate(blocks):
        for kind, style in (("decoded", "-"), ("mask", "--")):
            series = sorted(((int(number(r["channel"])), number(r["absmax"])) for r in mine
                             if r["block"] == block and r["rows"] == kind))
            if series:
                ax.plot([c for c, _ in series], [v for _, v in series], linestyle=style, linewidth=1,
                        color=f"C{i % 10}", label=f"block {block} {'[MASK] rows' if kind == 'mask' else 'decoded rows'}")
    layer = mine[0]["layer"] if mine else "?"
    ax.set_title(f"{model}: layer {layer}, per-channel max|K| at each block's refresh", fontsize=9)
    ax.set_xlabel("channel (head x head_dim)")
    ax.set_ylabel("max|K| over the block's rows")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)


def kv_drift_figure(stats_tsv: str | Path, out_png: str | Path, channels_tsv: str | Path | None = None) -> Path:
    """One column per model of the K/V analysis: (first, when the channel table is given)
    per-channel max|K| of each block's refresh in the last layer; block-to-block drift of the
    whole cache's per-channel max|x| per layer; drift of a block's own rows from its refresh to
    its later steps ([MASK] rows turning into tokens); outlier measures - channel max over median
    channel, and [MASK] rows' max|x| over decoded rows'. Bars: median, ticks: p90."""
    rows = read_table(stats_tsv, STATS_COLUMNS)
    channels = read_table(channels_tsv, CHANNEL_COLUMNS) if channels_tsv is not None else None
    models = list(dict.fromkeys(r["model"] for r in rows))
    panels = 3 + (channels is not None)
    plt = pyplot()
    fig, axes = plt.subplots(panels, max(1, len(models)), figsize=(6 * max(1, len(models)), 3.4 * panels),
                             squeeze=False)
    for column, model in enumerate(models):
        stats = [r for r in rows if r["model"] == model]
        if channels is not None:
            _channel_lines(axes[0][column], channels, model)
        first = panels - 3
        _drift_bars(axes[first][column], stats, "block_drift", f"{model}: whole cache, one block's refresh to the next")
        _drift_bars(axes[first + 1][column], stats, "step_drift", f"{model}: the block's rows, refresh to later steps")
        ax = axes[first + 2][column]
        for offset, tensor, colour in ((-0.2, "K", "C0"), (0.2, "V", "C1")):
            mine = [r for r in stats if r["tensor"] == tensor]
            xs = [number(r["layer"]) + offset for r in mine]
            ax.bar(xs, [number(r["channel_max_over_median"]) for r in mine], width=0.4, color=colour,
                   label=f"{tensor}: largest channel max / median channel max")
            ax.scatter(xs, [number(r["mask_over_decoded_absmax"]) for r in mine], marker="D", s=20, color="k" if
                       tensor == "K" else "grey", label=f"{tensor}: max|x| of [MASK] rows / of decoded rows")
        ax.axhline(1.0, color="k", linewidth=0.6, linestyle=":")
        ax.set_title(f"{model}: outlier channels and [MASK] vs decoded rows", fontsize=9)
        _layer_axis(ax, stats)
        value_axis(ax, [number(r[k]) for r in stats for k in ("channel_max_over_median", "mask_over_decoded_absmax")],
                   span=10.0)
        ax.set_ylabel("ratio")
        ax.legend(fontsize=6)
        ax.grid(axis="y", alpha=0.3)
    if not models:
        note(axes[0][0], f"{stats_tsv}: no rows")
    fig.suptitle("K/V distribution drift across denoising steps and blocks", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)
