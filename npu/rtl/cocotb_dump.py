"""The scalar half of npu_core's testbench state dump (cocotb_core.py): the `debug_index` scan of
the INT / FP / address registers and the INT / FP SRAMs (npu_core's debug ports). npu_top's
free-running testbench (npu_top_bench.v) scans the same ports in Verilog."""

from __future__ import annotations

import numpy as np
from cocotb.triggers import Timer


async def dump_scalar_state(dut, p: int, int_regs: np.ndarray, fp_regs: np.ndarray, addr_regs: np.ndarray,
                            int_sram: np.ndarray, fp_sram: np.ndarray) -> None:
    """Scan program p's final r0-r15, f0-f7, a0-a7 and both scalar SRAMs into row p of the arrays
    (the SRAM arrays' widths are the words dumped)."""
    int_words, fp_words = int_sram.shape[1], fp_sram.shape[1]
    for i in range(max(int_words, fp_words)):
        dut.debug_index.value = i
        await Timer(1, unit="ns")
        if i < 16:
            int_regs[p, i] = int(dut.debug_int_register.value)
        if i < 8:
            fp_regs[p, i] = int(dut.debug_fp_register.value)
            addr_regs[p, i] = int(dut.debug_address_register.value)
        if i < int_words:
            int_sram[p, i] = int(dut.debug_int_sram.value)
        if i < fp_words:
            fp_sram[p, i] = int(dut.debug_fp_sram.value)
