"""Analytical (closed-form) performance and energy models of the dnpu and of GPUs / CPUs.

- `estimate_program(program, config)`: a program's cycles, per-operator and per-unit time and
  energy from its dynamic instruction counts x the cycle simulator's per-instruction costs,
  overlapped per `wait`-delimited segment (segments.py, program.py); `estimate_static` the same
  figures from one walk of the program with its hardware loops extrapolated (static.py);
- `NpuStepModel(config, lower).step(model, StepShape(...))`: every operator of a denoising step,
  costed on the program `lower` compiles (npu.runtime.lowering.step_program, injected: the
  simulators do not import the compiler) by the static walk (static.py) - seconds per step;
- `DeviceModel(spec).step(...)`: roofline model of the PyTorch reference on a GPU (A6000, A100,
  H100 presets) or on a CPU calibrated by microbenchmarks (validation.py);
- `generation_report(machine, model, GenerationSetup(...))`: a whole dLLM generation;
- `model_scenarios(preset)` (scenarios.py): the generations the pipeline evaluates a model on;
- baselines.py: the Fast-dLLM A100 check and the GPU sampling share. The pipeline's stages that
  run these models are in npu.stages.simulate.
docs/analytical.md describes the equations and the measured errors.
"""

from npu.sim.analytical.costs import OperatorCost, StepCost, roofline_bound
from npu.sim.analytical.devices import A100, A6000, GPU_PRESETS, H100, DeviceModel, DeviceSpec
from npu.sim.analytical.generation import GenerationReport, GenerationSetup, generation_report, step_schedule
from npu.sim.analytical.npu_ops import NpuStepModel
from npu.sim.analytical.operators import Operator, StepShape, operators_from_graph, step_operators
from npu.sim.analytical.program import (
    CountProfile,
    DmaTransfer,
    ProgramEstimate,
    comment_regions,
    estimate_counts,
    estimate_program,
)
from npu.sim.analytical.static import estimate_static

__all__ = [
    "A100", "A6000", "GPU_PRESETS", "H100", "CountProfile", "DeviceModel",
    "DeviceSpec", "DmaTransfer", "GenerationReport", "GenerationSetup", "NpuStepModel", "Operator", "OperatorCost",
    "ProgramEstimate", "StepCost", "StepShape", "comment_regions",
    "estimate_counts", "estimate_program", "estimate_static", "generation_report", "operators_from_graph",
    "roofline_bound", "step_operators", "step_schedule",
]
