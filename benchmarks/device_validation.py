"""Device validation of the analytical model, and its cross-validation against the cycle simulator.

1. Device: the roofline device model is calibrated on this machine by microbenchmarks (GEMM peak,
   triad bandwidth per cache level, exp / argmax rates, dispatch and first-touch costs) and
   predicts measured PyTorch times of GEMMs, scaled_dot_product_attention, vocabulary-wide
   argmax / softmax, top-k and a whole tiny-model denoising step; prints measured, predicted and
   relative error per kernel (CPU: single thread, CPU time; `--device cuda` on a GPU machine).
2. `--crossvalidate`: the analytical NPU models against the cycle-accurate simulator on compiled
   tiny steps (program-level model, and the step model on the compiled program) on every NPU preset.
3. `--gpu`: the GPU baselines - the Fast-dLLM A100 check and the largest GPU sampling share.

Usage: python benchmarks/device_validation.py [--device cpu|cuda] [--rounds 2] [--tsv out.tsv]
                                              [--crossvalidate] [--gpu]
Every figure is measured or computed here; nothing is asserted.
"""

from __future__ import annotations

import argparse
import warnings

from npu.io import write_tsv


def device_section(device: str, rounds: int, scale: float, tsv: str | None) -> None:
    from npu.sim.analytical.validation import error_summary, validate

    calibration, rows = validate(device, scale=scale, rounds=rounds)
    print(f"== device validation on {device} ({calibration.dtype}, {calibration.threads} thread(s)) ==")
    for row in calibration.rows():
        print(f"  {row['quantity']:22s} {row['value']:.4g}")
    print(f"  {'group':10s} {'kernel':32s} {'measured ms':>12s} {'predicted ms':>13s} {'error':>8s}")
    for row in rows:
        print(f"  {row.group:10s} {row.name:32s} {1e3 * row.measured_s:12.4f} {1e3 * row.predicted_s:13.4f} "
              f"{row.error:+8.1%}")
    print("  mean |error|: " + ", ".join(f"{group} {value:.1%}" for group, value in error_summary(rows).items()))
    if tsv:
        write_tsv(tsv, [row.to_dict() for row in rows])
        print(f"  written: {tsv}")


def crossvalidation_section() -> None:
    from npu.compiler import compile_step
    from npu.hw.config import load_npu_config
    from npu.ir import export_step
    from npu.isa.assembler import assemble
    from npu.models.transformer import ModelConfig
    from npu.check.crossval import crossvalidate
    from npu.runtime.lowering import step_program
    from npu.sim.analytical.npu_ops import NpuStepModel
    from npu.sim.analytical.operators import StepShape
    from npu.sim.analytical.program import comment_regions

    print("== analytical NPU models vs the cycle simulator on compiled steps ==")
    model = ModelConfig("mini-gqa", 300, 299, 2, 256, 4, 2, 128, 512, 160, qkv_bias=True)
    print(f"  model {model.name}: 2 layers, d 256, 4 heads / 2 KV heads of 128, QKV bias, vocab 300")
    print(f"  {'npu':11s} {'step':22s} {'cycles':>9s} {'program':>8s} {'op MAE':>7s} {'class MAE':>9s} "
          f"{'static':>8s}")
    for preset in ("dnpu-cloud", "dnpu-edge", "ar-npu"):
        config = load_npu_config(preset)
        for mode, query, kv, sample, rule in (("dual", 32, 150, 32, "threshold"), ("prefix", 70, 150, 32, "topk"),
                                              ("none", 150, 150, 32, "topk")):
            graph = export_step(model, cache_mode=mode, query_length=query, kv_length=kv if mode != "none" else None,
                                sample_range=(0, sample), sampling=rule)
            step = compile_step(graph, config)
            program = assemble(step.listing, source="step")
            result = crossvalidate(program, config, regions=comment_regions(program, step.listing))
            static = NpuStepModel(config, step_program).step(model, StepShape(mode, query, kv, sample, rule))
            static_error = static.seconds * config.clock_hz / result.stats.cycles - 1
            print(f"  {preset:11s} {mode + ' q' + str(query) + ' ' + rule:22s} {result.stats.cycles:9d} "
                  f"{result.total_error:+8.2%} {result.mean_abs_error('operator'):7.2%} "
                  f"{result.mean_abs_error('class'):9.2%} {static_error:+8.2%}")


def gpu_section() -> None:
    from npu.models.presets import load_model_spec
    from npu.sim.analytical.baselines import SAMPLING_CLAIM, fast_dllm_check, sampling_share_sweep

    llada = load_model_spec("llada-8b").architecture
    print("== Fast-dLLM A100 check (LLaDA, GSM8K-like prompt of 1000 tokens, gen 256, block 32) ==")
    for row in fast_dllm_check(llada):
        print(f"  {row['rates']:20s} {row['configuration']:20s} tokens/step {row['tokens_per_step']:5.2f}  "
              f"published {row['published_tok_s']:5.1f}  predicted {row['predicted_tok_s']:6.1f} tok/s "
              f"({row['relative_error']:+.0%})")
    models = {name: load_model_spec(name).architecture for name in ("llada-8b", "dream-7b")}
    sweep = sampling_share_sweep(models)
    peak = max(sweep, key=lambda row: row["sampling_share"])
    print(f"  largest GPU sampling share {peak['sampling_share']:.1%}: {peak['gpu']}, {peak['model']}, "
          f"T={peak['temperature']}, {peak['cache']}, gen {peak['gen_length']} (claim: up to {SAMPLING_CLAIM:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=2, help="calibration + measurement rounds (best kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the kernels (quick runs)")
    parser.add_argument("--tsv", help="write the device validation table here")
    parser.add_argument("--crossvalidate", action="store_true", help="NPU models vs the cycle simulator")
    parser.add_argument("--gpu", action="store_true", help="GPU baselines and the Fast-dLLM check")
    parser.add_argument("--skip-device", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # timing-mode FP registers hold no data
    if not args.skip_device:
        device_section(args.device, args.rounds, args.scale, args.tsv)
    if args.crossvalidate:
        crossvalidation_section()
    if args.gpu:
        gpu_section()


if __name__ == "__main__":
    main()
