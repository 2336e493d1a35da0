"""The figure functions of npu.plots on small hand-made tables: each writes a PNG of a sensible
size from the columns the pipeline's tables have, survives tables of skipped or uncompiled
programs, and names the file and column when a table lacks one."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from npu.plots import breakdown, crossval, jobs, kv, roofline, speedup, synth
from npu.plots.common import PlotInputError, read_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_table(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(columns)] + ["\t".join(str(row.get(c, "")) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def assert_figure(path: Path, min_width: int = 700, min_height: int = 350) -> None:
    width, height = png_size(path)
    assert width >= min_width and height >= min_height, (width, height)
    assert width <= 4000 and height <= 6000, (width, height)  # readable in the report, not a poster
    assert path.stat().st_size > 10_000  # something is drawn, not an empty canvas


OPERATORS = [("embed", 900, 0), ("blocks.0.attn_norm", 1100, 0), ("blocks.0.attn.q_proj", 800, 4096),
             ("blocks.0.attn.matmul", 7400, 8192), ("blocks.0.attn.o_proj", 960, 4096),
             ("blocks.0.mlp.down_proj", 1800, 8192), ("final_norm", 180, 0), ("lm_head", 380, 2048),
             ("x0", 85, 0), ("committed", 245, 0)]


def roofline_rows(npu: str, model: str, steps=("refresh", "dual_inblock"), scale: float = 1.0) -> list[dict]:
    rows = []
    for step in steps:
        for kind in ("operator", "group"):
            for name, cycles, macs in OPERATORS:
                group = name.split(".", 2)[-1] if name.startswith("blocks.") else name
                rows.append({"npu": npu, "model": model, "step": step, "query_length": 8, "status": "ok",
                             "attained": "cycle", "kind": kind, "operator": name if kind == "operator" else group,
                             "count": 1, "attained_cycles": cycles * scale, "macs": macs, "dram_bytes": 1000,
                             "compute_bound_cycles": macs / 64, "dram_bound_cycles": 20, "bound_cycles": 64,
                             "binds": "dram", "attained_over_bound": 5, "roofline_fraction": 0.2,
                             "limiting_resource": "frontend"})
        rows.append({**rows[-1], "kind": "step", "operator": "step", "attained_cycles": 14000 * scale})
    return rows


def analytical_rows(machine: str, model: str, share: float) -> list[dict]:
    return [{"machine": machine, "model": model, "cache": cache, "rule": rule, "tokens_per_s": 1000.0,
             "energy_per_token_mj": 0.1, "sampling_share": share, "status": "ok"}
            for cache in ("none", "dual") for rule in ("topk", "threshold0.9")]


@pytest.fixture()
def machine_tables(tmp_path) -> dict[str, list[Path]]:
    """Roofline and analytical tables of two presets (dnpu-edge and the ar-npu baseline) and one
    model, plus a model that compiled for neither (status rows only, as the stages write them)."""
    tables = {"roofline": [], "analytical": []}
    for npu, scale, share in (("dnpu-edge", 1.0, 0.004), ("ar-npu", 3.0, 0.03)):
        tables["roofline"].append(write_table(tmp_path / f"{npu}_roofline.tsv", roofline_rows(npu, "tiny-add", scale=scale)))
        tables["analytical"].append(write_table(tmp_path / f"{npu}_analytical.tsv", analytical_rows(npu, "tiny-add", share)))
    skipped = [{"npu": "dnpu-edge", "model": "dream-7b", "step": "refresh", "query_length": 8,
                "status": "not compiled: does-not-fit", "attained": "cycle"}]
    tables["roofline"].append(write_table(tmp_path / "dream_roofline.tsv", skipped))
    tables["analytical"].append(write_table(tmp_path / "dream_analytical.tsv", [
        {**row, "tokens_per_s": "nan", "sampling_share": "nan", "status": "not compilable: vector_sram"}
        for row in analytical_rows("dnpu-edge", "dream-7b", 0.0)]))
    return tables


def gpu_tables(tmp_path) -> tuple[Path, Path]:
    generations = write_table(tmp_path / "gpu_generations.tsv", [
        {**row, "machine": gpu, "sampling_share": 0.05} for gpu in ("rtx-a6000", "h100-sxm")
        for row in analytical_rows(gpu, "dream-7b", 0.05)])
    sweep = write_table(tmp_path / "gpu_sampling_share.tsv", [
        {"gpu": "rtx-a6000", "model": "dream-7b", "temperature": t, "prompt_length": 100, "gen_length": 1024,
         "cache": "none", "tokens_per_s": 5.0, "sampling_share": 0.1 + 0.1 * t} for t in (0, 1)])
    return generations, sweep


def test_operator_categories_follow_the_step_program_order():
    assert breakdown.operator_category("blocks.3.attn.q_proj", False) == "transformer layers"
    assert breakdown.operator_category("blocks.3.attn.matmul", False) == "attention"
    assert breakdown.operator_category("blocks.3.attn.kv_cache_write", False) == "attention"
    assert breakdown.operator_category("blocks.3.mlp.silu", False) == "transformer layers"
    assert breakdown.operator_category("embed", False) == "transformer layers"
    assert breakdown.operator_category("lm_head", False) == "LM head"
    assert breakdown.operator_category("committed", True) == "sampling"


def test_step_breakdown_sums_every_operator_cycle_into_one_category(machine_tables):
    rows = read_table(machine_tables["roofline"][0], breakdown.ROOFLINE_COLUMNS, breakdown.ROOFLINE_RESULTS)
    split = breakdown.step_breakdown(rows)
    assert set(split) == {("dnpu-edge", "tiny-add", "refresh"), ("dnpu-edge", "tiny-add", "dual_inblock")}
    refresh = split[("dnpu-edge", "tiny-add", "refresh")]
    assert sum(refresh.values()) == sum(cycles for _, cycles, _ in OPERATORS)
    assert refresh["sampling"] == 85 + 245 and refresh["LM head"] == 180 + 380 and refresh["attention"] == 7400


def test_latency_breakdown_figure(machine_tables, tmp_path):
    generations, sweep = gpu_tables(tmp_path)
    out = breakdown.latency_breakdown_figure(machine_tables["roofline"], machine_tables["analytical"],
                                             generations, sweep, tmp_path / "fig1.png")
    assert_figure(out)


def test_latency_breakdown_figure_without_gpu_tables(machine_tables, tmp_path):
    out = breakdown.latency_breakdown_figure(machine_tables["roofline"], machine_tables["analytical"],
                                             None, None, tmp_path / "fig1.png")
    assert_figure(out)


def test_sampling_share_figure(machine_tables, tmp_path):
    out = breakdown.sampling_share_figure(machine_tables["analytical"], machine_tables["roofline"], tmp_path / "fig9.png")
    assert_figure(out)


def speedup_table(tmp_path) -> Path:
    rows = []
    for npu, tokens in (("dnpu-cloud", 900.0), ("ar-npu", 300.0), ("dnpu-edge", "nan")):
        for gpu, gpu_tokens in (("rtx-a6000", 25.0), ("h100-sxm", 70.0)):
            for cache in ("prefix", "dual"):
                ok = tokens != "nan"
                rows.append({"model": "dream-7b", "cache": cache, "rule": "topk", "gen_length": 256, "block_length": 32,
                             "npu": npu, "gpu": gpu, "npu_tokens_per_s": tokens, "gpu_tokens_per_s": gpu_tokens,
                             "speedup": tokens / gpu_tokens if ok else "nan",
                             "npu_energy_per_token_mj": 50.0 if ok else "nan", "gpu_energy_per_token_mj": 10000.0,
                             "energy_ratio_gpu_over_npu": 200.0 if ok else "nan", "npu_bandwidth_gbps": 819,
                             "gpu_bandwidth_gbps": 768, "bandwidth_matched_speedup": 30.0 if ok else "nan",
                             "normalisation": "tokens/s per GB/s", "paper_speedup": 2.53 if gpu == "rtx-a6000" else "nan",
                             "status": "ok" if ok else "not compilable: dnpu-edge: vector_sram"})
    return write_table(tmp_path / "speedup.tsv", rows)


def test_throughput_energy_and_speedup_figures(tmp_path):
    table = speedup_table(tmp_path)
    assert_figure(speedup.throughput_energy_figure(table, tmp_path / "fig2.png"))
    assert_figure(speedup.speedup_figure(table, tmp_path / "speedup.png"))


def test_roofline_figure_draws_compiled_steps_and_lists_skipped_ones(machine_tables, tmp_path):
    assert_figure(roofline.roofline_figure(machine_tables["roofline"][0], tmp_path / "roofline.png"))
    # a model that compiled nowhere: the figure says so instead of failing
    assert_figure(roofline.roofline_figure(machine_tables["roofline"][2], tmp_path / "skipped.png"),
                  min_height=300)


def crossval_rows(npu: str, model: str) -> list[dict]:
    rows = []
    for step, total in (("refresh", 90000), ("dual_inblock", 60000)):
        rows.append({"npu": npu, "model": model, "step": step, "status": "ok", "kind": "total", "name": "cycles",
                     "analytical_cycles": total * 0.996, "simulated_cycles": total, "relative_error": -0.004})
        for i, name in enumerate(("frontend", "dma", "matrix", "vector")):
            rows.append({"npu": npu, "model": model, "step": step, "status": "ok", "kind": "class", "name": name,
                         "analytical_cycles": total / (i + 2) * 1.001, "simulated_cycles": total / (i + 2),
                         "relative_error": 0.001})
        for i in range(8):
            cycles = 200 * 3 ** i
            rows.append({"npu": npu, "model": model, "step": step, "status": "ok", "kind": "operator",
                         "name": f"op{i}", "analytical_cycles": cycles * (1 - 0.002 * i),
                         "simulated_cycles": cycles, "relative_error": -0.002 * i})
    return rows


def test_crossval_figures(tmp_path):
    tables = [write_table(tmp_path / "a.tsv", crossval_rows("dnpu-edge", "tiny-add")),
              write_table(tmp_path / "b.tsv", [{"npu": "dnpu-edge", "model": "dream-7b", "step": "refresh",
                                                "status": "skipped: too long"}])]
    rtl = write_table(tmp_path / "rtl.tsv", [{"npu": "dnpu-edge", "model": "tiny-add", "program": "dual 0",
                                              "cycle_sim_cycles": 90000, "rtl_cycles": 90500}])
    assert_figure(crossval.crossval_scatter_figure(tables, tmp_path / "fig4.png"))
    assert_figure(crossval.crossval_scatter_figure(tables, tmp_path / "fig4_rtl.png", [rtl]))
    summary = write_table(tmp_path / "summary.tsv", [
        {"npu": "dnpu-edge", "model": "tiny-add", "step": step, "status": "ok", "simulated_cycles": 9e4,
         "step_abs_error": 0.004, "class_mean_abs_error": 0.002, "class_max_abs_error": 0.01,
         "operator_mean_abs_error": 0.004, "operator_max_abs_error": 0.017} for step in ("refresh", "dual_inblock")])
    assert_figure(crossval.crossval_summary_figure(summary, tmp_path / "summary.png"))


def kv_tables(tmp_path) -> tuple[Path, Path]:
    accuracy, ablation = [], []
    for model in ("tiny-sort", "tiny-sort+outliers"):
        accuracy.append({"model": model, "task": "sort", "method": "bf16", "storage": "bf16", "bits": 16,
                         "cache": "dual", "window": "block", "metric": "exact_match", "value": 0.9,
                         "token_accuracy": 0.97, "ci95": 0.05, "n": 64, "status": "ok"})
        for method, drop in (("int", 0.1), ("baos-int", 0.02)):
            for bits in (8, 4, 3, 2):
                accuracy.append({**accuracy[0], "model": model, "method": method, "storage": "int", "bits": bits,
                                 "value": max(0.0, 0.9 - drop * (8 - bits)), "ci95": 0.07})
    for variant in ("default", "alpha 0 (no smoothing)", "no block window"):
        for bits in (4, 3, 2):
            ablation.append({"variant": variant, "model": "tiny-sort", "task": "sort", "method": "baos-int",
                             "storage": "int", "bits": bits, "cache": "dual", "window": "block",
                             "metric": "exact_match", "value": 0.1 * bits, "token_accuracy": 0.9, "ci95": 0.05,
                             "n": 64, "status": "ok"})
    return write_table(tmp_path / "accuracy.tsv", accuracy), write_table(tmp_path / "ablation.tsv", ablation)


def test_kv_accuracy_figure(tmp_path):
    accuracy, ablation = kv_tables(tmp_path)
    assert_figure(kv.kv_accuracy_figure(accuracy, ablation, tmp_path / "fig5.png"))


def test_kv_drift_figure_with_and_without_the_channel_table(tmp_path):
    stats = write_table(tmp_path / "kv_stats.tsv", [
        {"model": model, "layer": layer, "tensor": tensor, "absmax": 1.0, "mean": 0.0, "std": 0.2,
         "channel_max_over_median": 1.5 + layer * (20 if "outliers" in model else 1), "outlier_ratio": 0.0,
         "mask_over_decoded_absmax": 0.5, "mask_decoded_mean_distance": 0.4, "block_drift_median": 0.1,
         "block_drift_p90": 0.4, "step_drift_median": 0.5, "step_drift_p90": 3.0}
        for model in ("tiny-sort", "tiny-sort+outliers") for layer in range(4) for tensor in "KV"])
    channels = write_table(tmp_path / "kv_channels.tsv", [
        {"model": model, "layer": 3, "block": block, "tensor": tensor, "rows": rows, "channel": channel,
         "absmax": 0.5 + 0.01 * channel + 0.1 * block}
        for model in ("tiny-sort", "tiny-sort+outliers") for block in range(3) for tensor in "KV"
        for rows in ("decoded", "mask") for channel in range(32)])
    assert_figure(kv.kv_drift_figure(stats, tmp_path / "fig6.png", channels))
    assert_figure(kv.kv_drift_figure(stats, tmp_path / "fig6_stats_only.png"))


def test_area_power_figure(tmp_path):
    units = write_table(tmp_path / "units.tsv", [
        {"npu": "dnpu-edge", "unit": unit, "corner": corner, "cell_area_um2": area, "leakage_uw": area / 400,
         "power_default_activity_uw": area, "power_activity_uw": 3 * area, "fmax_ghz": 2.0}
        for unit, area in (("fp32_to_bf16", 6.2), ("fp32_add", 150.0), ("systolic_array_8x8", 9000.0))
        for corner in ("TT", "SS")])
    sram = write_table(tmp_path / "sram.tsv", [
        {"npu": "dnpu-edge", "memory": memory, "area_um2": area, "read_pj_per_access": 29.0,
         "write_pj_per_access": 3.0, "read_power_mw": 58.0, "leakage_mw": leakage}
        for memory, area, leakage in (("vector_sram", 1.2e6, 0.6), ("matrix_sram", 2.4e6, "-"))])
    assert_figure(synth.area_power_figure([units], [sram], tmp_path / "fig7.png"))


@pytest.mark.parametrize("draw, column", [
    (lambda t, out: speedup.throughput_energy_figure(t, out), "npu_tokens_per_s"),
    (lambda t, out: roofline.roofline_figure(t, out), "attained_cycles"),
    (lambda t, out: kv.kv_drift_figure(t, out), "step_drift_p90"),
])
def test_a_missing_column_is_named_with_its_file(tmp_path, draw, column):
    source = {"npu_tokens_per_s": speedup_table(tmp_path),
              "attained_cycles": write_table(tmp_path / "roofline.tsv", roofline_rows("dnpu-edge", "tiny-add")),
              "step_drift_p90": write_table(tmp_path / "kv_stats.tsv", [
                  {key: 1 for key in kv.STATS_COLUMNS} | {"model": "m", "tensor": "K"}])}[column]
    lines = source.read_text().splitlines()
    index = lines[0].split("\t").index(column)
    source.write_text("\n".join("\t".join(c for i, c in enumerate(line.split("\t")) if i != index)
                                for line in lines) + "\n")
    out = tmp_path / "figure.png"
    with pytest.raises(PlotInputError, match=rf"{source.name}: missing column '{column}'"):
        draw(source, out)
    assert not out.exists()


def test_a_missing_table_is_named(tmp_path):
    with pytest.raises(PlotInputError, match=r"nowhere\.tsv: table not found"):
        kv.kv_accuracy_figure(tmp_path / "nowhere.tsv", tmp_path / "ablation.tsv", tmp_path / "out.png")


def test_job_table_pairs_each_log_with_its_benchmark(tmp_path):
    logs = tmp_path / "logs"
    (logs / "train").mkdir(parents=True)
    log = logs / "train" / "tiny-sort.log"
    log.write_text("step 10 loss 2.1\nstep 20 loss 1.4\n")
    bench = write_table(tmp_path / "tiny-sort.tsv", [{"s": 12.345, "h:m:s": "0:00:12", "max_rss": 512.4}])
    plain = logs / "speedup.log"
    plain.write_text("")
    rows = jobs.job_rows([(log, bench), (plain, None)], logs)
    assert rows[0] == {"job": "train/tiny-sort", "log": str(log), "log_bytes": log.stat().st_size,
                            "log_last_line": "step 20 loss 1.4", "benchmark": str(bench), "wall_s": "12.35",
                            "max_rss_mb": "512"}
    assert rows[1]["job"] == "speedup" and rows[1]["wall_s"] == "" and rows[1]["log_last_line"] == "(empty log)"
    with pytest.raises(PlotInputError, match="missing.log: log not found"):
        jobs.job_rows([(logs / "missing.log", None)], logs)
