"""Run a whole dLLM generation on the functional simulator, or on the NPU-arithmetic reference.

`generate(stepper, prompt, plan)` is LLaDA's block schedule (npu.models.decoding: a DecodeConfig,
its query windows, fixed-k counts and StepRecord) driving one of
two steppers with the same interface: `SimulatorStepper` builds the DRAM image (quantised
weights, RoPE tables, KV regions, token ids), compiles the step programs it needs and runs them
on `FunctionalSimulator`; `ReferenceStepper` runs `npu.compiler.reference.reference_step`.
Both see the same run-time parameters (q0, s0, k, tau, and with DecodeConfig.temperature > 0 the
temperature and the seeded Gumbel noise of each step), so their tokens must agree exactly.
"""

from npu.runtime.generate import (
    Generation,
    GumbelNoise,
    ReferenceStepper,
    SimulatorStepper,
    generate,
    generation_difference,
)

__all__ = ["Generation", "GumbelNoise", "ReferenceStepper", "SimulatorStepper", "generate", "generation_difference"]
