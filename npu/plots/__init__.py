"""The pipeline's figures: one function per figure, each reading only the TSV tables the
pipeline wrote and writing one PNG atomically (matplotlib, Agg backend).

| figure | function | reads |
|---|---|---|
| 1 latency breakdown of a step | `breakdown.latency_breakdown_figure` | roofline.tsv, analytical.tsv, gpu/*.tsv |
| 2 tokens/s and energy per token | `speedup.throughput_energy_figure` | speedup.tsv |
| 3 roofline per operator | `roofline.roofline_figure` | roofline.tsv |
| 4 cross-validation | `crossval.crossval_scatter_figure` | crossval.tsv (and an RTL cycle table when one exists) |
| 5 KV accuracy vs bits, BAOS ablation | `kv.kv_accuracy_figure` | kv/accuracy.tsv, kv/ablation.tsv |
| 6 K/V drift across steps and blocks | `kv.kv_drift_figure` | kv/kv_stats.tsv |
| 7 area and power per unit | `synth.area_power_figure` | synth/{npu}/units.tsv, sram.tsv |
| 8 design-space Pareto front | `dse.pareto_figure` | dse/points.tsv, dse/pareto.tsv |
| 9 sampling share with / without dLLM instructions | `breakdown.sampling_share_figure` | analytical.tsv, roofline.tsv |

The stages' own figures (speedup.png: `speedup.speedup_figure`, crossval/summary.png:
`crossval.crossval_summary_figure`) live here too: there is one way to plot. docs/figures.md
says what each figure shows.
"""
