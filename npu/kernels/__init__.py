"""Hand-written NPU kernels: assembly in asm/, runners that lay out memory and run them.

The kernels are executable specifications of the sequences a compiler emits: each .s file
starts with its layout contract (assembler constants, what lives where), each runner places
data accordingly on the functional simulator, and npu.kernels.reference repeats every kernel's
arithmetic through npu.hw.numerics so the results can be checked bit for bit.
"""

from npu.kernels.dense import DenseResult, run_gemm, run_rmsnorm, run_softmax
from npu.kernels.layout import KernelRun, kernel_source
from npu.kernels.sampling import (
    ConfidenceResult,
    SamplingLayout,
    SamplingResult,
    lowering,
    run_sampling_pass,
    run_token_confidence,
    sampling_layout,
    sampling_program,
)

__all__ = ["ConfidenceResult", "DenseResult", "KernelRun", "SamplingLayout", "SamplingResult", "kernel_source",
           "lowering", "run_gemm", "run_rmsnorm", "run_sampling_pass", "run_softmax", "run_token_confidence",
           "sampling_layout", "sampling_program"]
