"""npu_top: the whole core (npu_core, issue queues, DMA engine, vector and matrix units, SRAMs)
as Verilog parameters and sources for a preset, and the reduced presets the tests simulate.

`top_parameters(config)` derives every parameter from the preset (npu.hw.config.NPUConfig):
memory sizes and widths, VLEN, the vector format, mx_block, MLEN / BLEN / accumulators, the
matrix SRAM's rows per access; `reduced_config` shrinks a preset to what a simulation can afford.
docs/rtl.md, "npu_top", describes the design.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from npu.hw.config import NPUConfig, load_npu_config
from npu.rtl import DMA_CODEC_MODULES, RTL_DIR, rtl_sources
from npu.rtl import core, matrix, vector

TOP = "npu_top"
QUEUE_DEPTH = 8   # the cycle simulator's default queue_depth (npu.sim.cycle.CycleSimulator)
TOP_MODULES = ("issue_queue", "word_memory", "scalar_sram", "register_file", "loop_stack", "scalar_alu",
               "address_alu", "int32_to_fp32", "fp32_to_int32", "scalar_fpu", "npu_core",
               *[name for name in DMA_CODEC_MODULES], "dma_engine",
               "fp32_compare", "smoothing_factor", "vector_lane", "vector_sum_tree", "vector_max_tree",
               "vector_argmax_tree", "vector_rank", "vector_unit", "vector_sequencer",
               "matrix_pe", "systolic_array", "matrix_accumulator", "matrix_unit", "matrix_sequencer",
               "sram_bank", "row_sram", TOP)


def top_sources() -> list[Path]:
    """Every Verilog file of npu_top: the arithmetic units and generated modules, then its own."""
    own = []
    for name in TOP_MODULES:
        path = RTL_DIR / f"{name}.v"
        if path not in own:
            own.append(path)
    return [path for path in rtl_sources() if path not in own] + own


def top_parameters(config: NPUConfig, dram_bytes: int, program_words: int = 1024,
                   queue_depth: int = QUEUE_DEPTH) -> dict[str, int]:
    """npu_top's Verilog parameters for machine `config` with a DRAM of `dram_bytes`."""
    vector_bits = vector.vector_parameters(config)["VECTOR_BITS"]
    vlen = config.vlen
    if config.vector_sram.width_bits != vlen * vector_bits:
        raise ValueError(f"{config.name}: vector_sram.width_bits = {config.vector_sram.width_bits}; npu_top's "
                         f"vector SRAM moves one row of vlen x {vector_bits} = {vlen * vector_bits} bits per access")
    for key in ("fp_sram", "int_sram"):
        if getattr(config, key).width_bits != 32 * vlen:
            raise ValueError(f"{config.name}: {key}.width_bits = {getattr(config, key).width_bits}; npu_top's "
                             f"units move vlen = {vlen} words per access ({32 * vlen} bits)")
    if queue_depth & (queue_depth - 1) or queue_depth < 2:
        raise ValueError(f"queue_depth = {queue_depth}: npu_top's issue queues take a power of two >= 2")
    m = matrix.matrix_parameters(config)
    return {**core.core_parameters(config, program_words),
            "QUEUE_DEPTH": queue_depth, "VLEN": vlen, "VECTOR_BITS": vector_bits,
            "VECTOR_WORDS": config.vector_sram.size_bytes * 8 // vector_bits,
            "MATRIX_LANES": config.matrix_sram.width_bits // 16, "MATRIX_WORDS": config.matrix_sram.size_bytes // 2,
            "BLOCK": config.mx_block, "RANK_STEP_LANES": vector.vector_parameters(config)["RANK_STEP_LANES"],
            "MLEN": m["MLEN"], "BLEN": m["BLEN"], "ACCUMULATORS": m["ACCUMULATORS"], "WROWS": m["WROWS"],
            "DRAM_BYTES": dram_bytes}


def reduced_config(preset: str | NPUConfig = "dnpu-edge", *, vlen: int = 8, mlen: int = 8, blen: int = 2,
                   accumulators: int = 2, vector_bytes: int = 2048, matrix_bytes: int = 1024,
                   scalar_bytes: int = 1024) -> NPUConfig:
    """`preset` shrunk for simulation: VLEN = MLEN = mx_block = 8 (mx_block must divide VLEN), BLEN 2,
    small SRAMs whose widths are one row; formats, DRAM and the dLLM instructions are the preset's
    (`preset`: a name, a preset file or a loaded NPUConfig)."""
    config = preset if isinstance(preset, NPUConfig) else load_npu_config(preset)
    vector_bits = vector.vector_parameters(config)["VECTOR_BITS"]
    reduced = dataclasses.replace(
        config, name=f"{config.name}-reduced", vlen=vlen, mlen=mlen, blen=blen, mx_block=min(vlen, config.mx_block),
        accumulators=accumulators,
        vector_sram=dataclasses.replace(config.vector_sram, size_bytes=vector_bytes, width_bits=vlen * vector_bits),
        matrix_sram=dataclasses.replace(config.matrix_sram, size_bytes=matrix_bytes, width_bits=2 * mlen * 16),
        fp_sram=dataclasses.replace(config.fp_sram, size_bytes=scalar_bytes, width_bits=32 * vlen),
        int_sram=dataclasses.replace(config.int_sram, size_bytes=scalar_bytes, width_bits=32 * vlen))
    reduced.validate()
    return reduced


__all__ = ["TOP", "QUEUE_DEPTH", "load_npu_config", "reduced_config", "top_parameters", "top_sources"]
