"""cocotb test module run inside the simulator by npu.rtl.core_sim.decode_words: applies every
instruction word of words.npy to instruction_decoder and saves the outputs named in names.npy
to out.npy (one row per word, in $DNPU_RTL_WORK). Not imported outside cocotb."""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Timer


@cocotb.test()
async def decode_words(dut) -> None:
    """Apply each word, let the combinational decoder settle, record every named output."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    words = np.load(work / "words.npy")
    names = [str(name) for name in np.load(work / "names.npy")]
    outputs = [getattr(dut, name) for name in names]
    results = np.zeros((len(words), len(names)), dtype=np.uint64)
    for i, word in enumerate(words.tolist()):
        dut.word.value = word
        await Timer(1, unit="ns")
        results[i] = [int(output.value) for output in outputs]
    np.save(work / "out.npy", results)
