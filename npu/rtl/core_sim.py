"""Run the control core (npu_core) and its generated decoder in cocotb simulations.

`decode_words(words)` applies instruction words to instruction_decoder; `run_programs(config,
programs)` loads each program into npu_core, runs it to `halt` or a fault and returns the final
registers, scalar SRAMs, error code, cycle count and the instructions the core issued to the
DMA / matrix / vector queues (the testbench stands in for those units). One simulator run per
call, however many words or programs (npu/rtl/cocotb_decoder.py, npu/rtl/cocotb_core.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu.rtl import GENERATED_DIR, RTL_DIR
from npu.rtl import core, sim

DECODER_OUTPUTS = ("legal", "mnemonic", "unit", "dllm",
                   *(f"int_read{i}" for i in range(core.INT_READ_SLOTS)),
                   *(f"fp_read{i}" for i in range(core.FP_READ_SLOTS)),
                   "int_write", "int_write_valid", "fp_write", "fp_write_valid",
                   "addr_read", "addr_read_valid", "addr_write", "addr_write_valid",
                   *(f"imm{i}" for i in range(core.IMMEDIATE_SLOTS)))


def decode_words(words: np.ndarray, simulator: str | None = None) -> dict[str, np.ndarray]:
    """instruction_decoder's outputs (name -> array, one entry per word) for every word."""
    build_dir = sim.build_design("instruction_decoder", [GENERATED_DIR / "instruction_decoder.v"], simulator)
    out = sim.run_cocotb("instruction_decoder", build_dir, "npu.rtl.cocotb_decoder", simulator,
                         files={"words": np.asarray(words, dtype=np.uint64), "names": np.array(DECODER_OUTPUTS)})["out"]
    return {name: out[:, i] for i, name in enumerate(DECODER_OUTPUTS)}
