# The paper's figures (npu.plots, docs/figures.md), each drawn by one `npu plot-<figure>` from
# tables earlier stages wrote, and the HTML report (`snakemake --report results/report.html`,
# `make report`): every figure and key table wrapped in report() with a caption from
# workflow/report/. Figures 3 (roofline) and 6 (K/V drift) are drawn by the roofline and
# kv_analysis stages themselves (the same npu.plots functions) and wrapped there.
#
#   plot_breakdown   figure 1: where a step's time goes, NPU presets and GPU models   results/figures/fig1_latency_breakdown.png
#   plot_throughput  figure 2: tokens/s and energy per token vs the GPU models       results/figures/fig2_throughput_energy.png
#   plot_crossval    figure 4: analytical vs cycle simulator (vs RTL when present)   results/figures/fig4_crossvalidation.png
#   plot_kv_accuracy figure 5: KV accuracy vs bits per method, BAOS ablation         results/figures/fig5_kv_accuracy.png
#   plot_area_power  figure 7: area and power per unit (when synth.enabled)          results/figures/fig7_area_power.png
#   plot_sampling    figure 9: sampling share with / without the dLLM instructions   results/figures/fig9_sampling_share.png
#   report_jobs      the log and benchmark of every job behind the figures           results/report/jobs.tsv
from npu.provenance import source_revision

FIGURES = f"{RESULTS}/figures"

# What the captions quote about the run (workflow/report/*.rst read it as
# snakemake.config["report_provenance"]); added after validation, for the report only: no rule
# reads it, so it reruns nothing. The commit is the checkout's when the report is built.
config["report_provenance"] = {"commit": source_revision(Path(workflow.basedir))}


PER_MACHINE = dict(npu=NPUS, model=ALL_MODELS)
ROOFLINE_TABLES = expand(f"{RESULTS}/{{npu}}/{{model}}/roofline.tsv", **PER_MACHINE)
ANALYTICAL_TABLES = expand(f"{RESULTS}/{{npu}}/{{model}}/analytical.tsv", **PER_MACHINE)
SYNTH_UNIT_TABLES = expand(f"{RESULTS}/synth/{{npu}}/units.tsv", npu=NPUS) if SYNTH["enabled"] and SYNTH_UNIT_NAMES else []
SYNTH_SRAM_TABLES = expand(f"{RESULTS}/synth/{{npu}}/sram.tsv", npu=NPUS) if SYNTH["enabled"] else []
BASELINE_NPU = "ar-npu"  # the preset without the dLLM instructions (config/npu/ar-npu.yaml)

# The figures `rule all` asks for: each only where the run makes its tables.
FIGURE_TARGETS = (
    ([f"{FIGURES}/fig1_latency_breakdown.png", f"{FIGURES}/fig9_sampling_share.png",
      f"{FIGURES}/fig4_crossvalidation.png"] if NPUS and ALL_MODELS else [])
    + ([f"{FIGURES}/fig2_throughput_energy.png"] if SPEEDUP_TARGETS else [])
    + ([f"{FIGURES}/fig5_kv_accuracy.png"] if QUANT_MODELS else [])
    + ([f"{FIGURES}/fig7_area_power.png"] if SYNTH_UNIT_TABLES or SYNTH_SRAM_TABLES else [])
)

PLOT_LOGS = f"{RESULTS}/logs/plots"
PLOT_BENCHMARKS = f"{BENCHMARKS}/plots"


rule plot_breakdown:
    """Figure 1: the share of transformer layers, attention, LM head and sampling in each step
    program, and the sampling share of whole generations on the NPU presets and GPU models."""
    input:
        roofline=ROOFLINE_TABLES,
        analytical=ANALYTICAL_TABLES,
        gpu=GPU_TARGETS,
    output:
        figure=figure(f"{FIGURES}/fig1_latency_breakdown.png", "fig1_latency_breakdown.rst", "1 latency breakdown"),
    params:
        code=stage_code("plots", "plot_breakdown_stage"),
        gpu=lambda wildcards, input: (f"--gpu-generations {input.gpu[0]} --gpu-sampling "
                                      f"$(dirname {input.gpu[0]})/gpu_sampling_share.tsv") if input.gpu else "",
    log:
        f"{PLOT_LOGS}/fig1_latency_breakdown.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig1_latency_breakdown.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-breakdown --roofline {input.roofline} --analytical {input.analytical} {params.gpu} "
        "--out {output.figure} 2> {log}"


rule plot_throughput:
    """Figure 2: tokens/s and energy per token of the NPU presets and the GPU models."""
    input:
        speedup=f"{RESULTS}/speedup.tsv",
    output:
        figure=figure(f"{FIGURES}/fig2_throughput_energy.png", "fig2_throughput_energy.rst", "2 throughput and energy"),
    params:
        code=stage_code("plots", "plot_throughput_stage"),
    log:
        f"{PLOT_LOGS}/fig2_throughput_energy.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig2_throughput_energy.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-throughput --speedup {input.speedup} --out {output.figure} 2> {log}"


rule plot_crossval:
    """Figure 4: the analytical model against the cycle simulator, per step, unit class and operator."""
    input:
        crossval=expand(f"{RESULTS}/{{npu}}/{{model}}/crossval.tsv", **PER_MACHINE),
        rtl=RTL_TABLES,
    output:
        figure=figure(f"{FIGURES}/fig4_crossvalidation.png", "fig4_crossvalidation.rst", "4 cross-validation"),
    params:
        code=stage_code("plots", "plot_crossval_stage"),
    log:
        f"{PLOT_LOGS}/fig4_crossvalidation.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig4_crossvalidation.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-crossval --crossval {input.crossval} --rtl {input.rtl} --out {output.figure} 2> {log}"


rule plot_kv_accuracy:
    """Figure 5: KV-cache accuracy against bits per method, and the BAOS ablation."""
    input:
        accuracy=f"{RESULTS}/kv/accuracy.tsv",
        ablation=f"{RESULTS}/kv/ablation.tsv",
    output:
        figure=figure(f"{FIGURES}/fig5_kv_accuracy.png", "fig5_kv_accuracy.rst", "5 KV-cache accuracy"),
    params:
        code=stage_code("plots", "plot_kv_accuracy_stage"),
    log:
        f"{PLOT_LOGS}/fig5_kv_accuracy.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig5_kv_accuracy.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-kv-accuracy --accuracy {input.accuracy} --ablation {input.ablation} --out {output.figure} 2> {log}"


rule plot_area_power:
    """Figure 7: area and power of every synthesized unit and SRAM macro of each preset."""
    input:
        units=SYNTH_UNIT_TABLES,
        sram=SYNTH_SRAM_TABLES,
    output:
        figure=figure(f"{FIGURES}/fig7_area_power.png", "fig7_area_power.rst", "7 area and power"),
    params:
        code=stage_code("plots", "plot_area_power_stage"),
    log:
        f"{PLOT_LOGS}/fig7_area_power.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig7_area_power.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-area-power --units {input.units} --sram {input.sram} --out {output.figure} 2> {log}"


rule plot_sampling:
    """Figure 9: the sampling share with the dLLM instructions (dnpu presets) and without (ar-npu)."""
    input:
        analytical=ANALYTICAL_TABLES,
        roofline=ROOFLINE_TABLES,
    output:
        figure=figure(f"{FIGURES}/fig9_sampling_share.png", "fig9_sampling_share.rst", "9 sampling share"),
    params:
        code=stage_code("plots", "plot_sampling_stage"),
        baseline=BASELINE_NPU,
    log:
        f"{PLOT_LOGS}/fig9_sampling_share.log",
    benchmark:
        f"{PLOT_BENCHMARKS}/fig9_sampling_share.tsv"
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu plot-sampling --analytical {input.analytical} --roofline {input.roofline} "
        "--baseline {params.baseline} --out {output.figure} 2> {log}"


# The jobs whose log (and benchmark, where the rule has one) the jobs table lists: the figure
# jobs, the stages that draw figures themselves, and the long stages behind them.
SYNTH_JOB_KEYS = sorted({job.key for jobs in SYNTH_PRESET_JOBS.values() for job in jobs.values()})
REPORT_JOBS = [] if not FIGURE_TARGETS else (
    [(f"{PLOT_LOGS}/{Path(target).stem}.log", f"{PLOT_BENCHMARKS}/{Path(target).stem}.tsv") for target in FIGURE_TARGETS]
    + [(f"{RESULTS}/logs/{rule}/{npu}__{model}.log", f"{BENCHMARKS}/{rule}/{npu}__{model}.tsv")
       for rule in ("roofline", "simulate_cycle") for npu in NPUS for model in ALL_MODELS]
    + [(f"{RESULTS}/logs/train/{model}.log", f"{BENCHMARKS}/train/{model}.tsv")
       for model in dict.fromkeys(TRAINED_MODELS + KV_ONLY_MODELS)]
    + ([(f"{RESULTS}/logs/{rule}.log", f"{BENCHMARKS}/{rule}.tsv") for rule in ("accuracy", "kv_analysis")]
       if QUANT_MODELS else [])
    + ([(f"{RESULTS}/logs/synth/units/{key}_netlist.log", f"{BENCHMARKS}/synth/units/{key}_netlist.tsv")
        for key in SYNTH_JOB_KEYS]
       + [(f"{RESULTS}/logs/synth/units/{key}_timing_{corner}.log",
           f"{BENCHMARKS}/synth/units/{key}_timing_{corner}.tsv")
          for key in SYNTH_JOB_KEYS for corner in SYNTH_CORNERS]
       if SYNTH["enabled"] else [])
)


rule report_jobs:
    """The log and benchmark of every job behind the report's figures, as one table."""
    input:
        logs=[log for log, _ in REPORT_JOBS],
        benchmarks=[benchmark for _, benchmark in REPORT_JOBS],
    output:
        table=table(f"{RESULTS}/report/jobs.tsv", "jobs.rst", "jobs: logs and benchmarks"),
    params:
        code=stage_code("plots", "report_jobs_stage"),
        jobs=" ".join(f"{log}={benchmark}" for log, benchmark in REPORT_JOBS),
    log:
        f"{RESULTS}/logs/report_jobs.log",
    conda:
        "../../envs/dnpu.yaml"
    shell:
        "npu report-jobs --jobs {params.jobs} --logs-root $(dirname {log}) --out {output.table} 2> {log}"


REPORT_TARGETS = FIGURE_TARGETS + ([f"{RESULTS}/report/jobs.tsv"] if REPORT_JOBS else [])
