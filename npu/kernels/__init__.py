"""Hand-written NPU kernels: assembly in asm/, runners that lay out memory and run them.

The kernels are readable, executable specifications of the arithmetic the compiler's emitters
implement (GEMM in tile order, RMSNorm, softmax, the one-pass vocabulary argmax + confidence and
the commit, in the dLLM and the generic lowering): each .s file starts with its layout contract
(assembler constants, what lives where), each runner places data accordingly on the functional
simulator. tests/test_kernels.py checks them bit for bit against the compiler's references
(npu.compiler.linear.reference_gemm, npu.compiler.vector_ops.reference_rmsnorm, which the
compiled programs equal) or, where the compiler has no stand-alone reference, against
npu.kernels.reference (softmax, the sampling confidence; the compiler's fused LM-head epilogue is
checked against the latter too). Nothing in the package imports the kernels: the lowering lives
in npu.compiler alone; the shared hardware arithmetic is npu.hw (rows.dequantized_weights,
numerics.chained_row_sum) and the Gumbel draws npu.models.decoding.gumbel_noise.
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
