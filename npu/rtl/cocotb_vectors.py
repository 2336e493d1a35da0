"""cocotb test module run inside the simulator by npu.rtl.sim: drives one unit of the testbench
with every input vector of in.npy and saves its outputs to out.npy (both in $DNPU_RTL_WORK), so
one simulator run checks thousands of vectors. Not imported outside cocotb."""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Timer


@cocotb.test()
async def drive_vectors(dut) -> None:
    """Apply each row of DNPU_RTL_IN to the unit's inputs, settle, record its output."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    unit = str(np.load(work / "unit.npy"))
    inputs = np.load(work / "in.npy")
    ports = [getattr(dut, f"{unit}_{name}") for name in ("a", "b")[: inputs.shape[1]]]
    output = getattr(dut, f"{unit}_y")
    results = np.zeros(len(inputs), dtype=np.uint64)
    for i, row in enumerate(inputs.tolist()):
        for port, value in zip(ports, row):
            port.value = value
        await Timer(1, unit="ns")
        results[i] = int(output.value)
    np.save(work / "out.npy", results)
