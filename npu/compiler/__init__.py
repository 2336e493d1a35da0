"""The dnpu compiler: IR step graphs -> ISA programs, plus the step under NPU arithmetic.

    from npu.compiler import compile_step, write_artifacts
    step = compile_step(export_step(model, cache_mode="dual", query_length=32, kv_length=1024), npu)
    step.program, step.listing, step.dram_map, step.stats

Modules: asm (assembly writer), layout (padded shapes, DRAM map, weight packing, SRAM
allocator), context (step spec, scalar SRAM layout), one module per op family with its
`emit_<op>` and `reference_<op>` side by side (linear, vector_ops, attention, sampling),
lower (compile_step), reference (reference_step). docs/compiler.md explains the design.
"""

from npu.compiler.asm import CompileError
from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes
from npu.compiler.lower import CompiledStep, compile_spec, compile_step, spec_from_graph, write_artifacts
from npu.compiler.reference import ReferenceState, reference_step

__all__ = ["CompileError", "CompiledStep", "ReferenceState", "Shapes", "StepSpec", "compile_spec",
           "compile_step", "reference_step", "spec_from_graph", "write_artifacts"]
