"""The pipeline's stages as plain functions: one module per rule file, each Snakemake rule runs
exactly one of these functions (through its `npu <stage>` command).

    npu.stages.train      workflow/rules/train.smk      train_stage
    npu.stages.evaluate   workflow/rules/evaluate.smk   evaluate_stage
    npu.stages.export     workflow/rules/export.smk     export_stage
    npu.stages.compile    workflow/rules/compile.smk    compile_stage
    npu.stages.simulate   workflow/rules/simulate.smk   simulate_analytical_stage, simulate_cycle_stage,
                                                        crossvalidate_stage, crossvalidation_summary_stage,
                                                        gpu_baselines_stage
    npu.stages.quantize   workflow/rules/quantize.smk   calibrate_stage, accuracy_stage, ablation_stage,
                                                        exact_accuracy_stage, kv_analysis_stage, kv_traffic_stage
    npu.stages.verify     workflow/rules/verify.smk     verify_stage
    npu.stages.common     (what several of them share, as workflow/rules/common.smk)

Stages are thin: they read and validate presets, call into the package (check, runtime, sim,
compiler, quant, models) and write their outputs atomically (npu.io), so every stage can be run
and tested without Snakemake. They sit above everything they call and below npu.cli; the
pipeline fingerprints the code of each stage from its import closure (npu.provenance).
Nothing is imported here: `npu --help` and the Snakefile stay fast.
"""
