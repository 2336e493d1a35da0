"""The lowering the analytical model costs: one denoising step compiled by npu.compiler.

The simulators must not import the compiler (tests/test_layering.py), so the analytical NPU
model (npu.sim.analytical.npu_ops.NpuStepModel) receives the compiled program through this
callable, which lives above both. It builds the same `StepSpec` the compile stage reads from an
exported graph (npu.compiler.spec_from_graph; tests check the programs are identical) and
`SimulatorStepper` builds for a generation, skipping the export: the program depends only on the
shapes, and exporting an LLaDA-8B step costs more than compiling it.
"""

from __future__ import annotations

from npu.compiler import Shapes, StepSpec, compile_spec
from npu.compiler.asm import CompileError
from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.models.transformer import ModelConfig
from npu.sim.analytical.generation import GenerationSetup, StepModel, generation_report, unavailable_report
from npu.sim.analytical.operators import StepShape


def step_spec(config: NPUConfig, model: ModelConfig, shape: StepShape) -> StepSpec:
    """The compiler's description of the step: the sampled block starts at the first query row."""
    spec = StepSpec(Shapes(model, config, shape.kv_length), shape.query_length, shape.sample_length,
                    shape.sampling)
    spec.check()
    return spec


def step_program(config: NPUConfig, model: ModelConfig, shape: StepShape) -> Program:
    """The step's program with its labels (the `op_` operator regions); raises CompileError
    (a ValueError) when the machine cannot run the step."""
    step = compile_spec(step_spec(config, model, shape))
    return Program(step.program, step.labels, source=f"{model.name}.{shape.cache_mode}.step")


def generation_row(machine: StepModel, model: ModelConfig, setup: GenerationSetup, shared: dict) -> dict:
    """generation_report's row plus `status`: "ok", or why a step of it does not compile (NaN
    figures then). The analytical.tsv rows of the simulate_analytical stage and the design
    points of the sweep (npu.dse.point) are both made here."""
    try:
        return {**generation_report(machine, model, setup, shared).row(), "status": "ok"}
    except CompileError as error:  # the step does not fit this machine
        return {**unavailable_report(machine, model, setup).row(),
                "status": "not compilable: " + " ".join(str(error).split())}
