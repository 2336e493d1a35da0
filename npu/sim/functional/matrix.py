"""Matrix-unit handlers: BLEN x MLEN activations times an MLEN x MLEN weight tile into one of the
fp32 accumulators (in the systolic array's accumulation order, npu.hw.numerics), and its write-back.
Each accumulator sums its own tile ops in issue order, so naming several changes no arithmetic."""

from __future__ import annotations


import numpy as np

from npu.hw import numerics
from npu.isa.encoding import Instruction
from npu.sim.functional.handlers import Handler, HandlerBuilder, InstructionFault, Machine, fault_handler



def _rows_indexer(sim: Machine):
    """index(first, stride, write): the vector SRAM elements of BLEN rows of MLEN, checked."""
    vector, sync, strict = sim.vector_sram, sim.sync, sim.strict
    offsets = np.arange(sim.blen, dtype=np.int64)[:, None], np.arange(sim.mlen, dtype=np.int64)[None, :]

    def rows_index(first: int, stride: int, write: bool) -> np.ndarray:
        index = first + stride * offsets[0] + offsets[1]
        low, high = int(index.min()), int(index.max()) + 1
        if low < 0 or high > vector.size:
            raise InstructionFault(f"vector SRAM elements [{low}, {high}) outside [0, {vector.size})")
        if strict and not write and not vector.written[index].all():
            raise InstructionFault(f"activation rows at vector SRAM {first} read before written (strict mode)")
        sync.access("matrix", "vector_sram", low, high, write)
        return index
    return rows_index


def _missing_accumulator(sim: Machine, ins: Instruction) -> Handler | None:
    """A faulting handler when the `acc` operand names an accumulator this machine lacks."""
    acc, count = ins.operands["acc"], sim.accumulators.shape[0]
    if acc < count:
        return None
    return fault_handler(f"{ins.mnemonic}: accumulator {acc} does not exist: {sim.config.name} has {count} "
                         f"(`accumulators` in its preset)")


def build_writeback(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """mwb: accumulator `acc`, rounded to the vector format, into BLEN vector SRAM rows."""
    ops, regs, following, vector = ins.operands, sim.int_regs, pc + 1, sim.vector_sram
    rows_index = _rows_indexer(sim)

    acc = ins.operands["acc"]
    missing = _missing_accumulator(sim, ins)
    if missing is not None:
        return missing

    def writeback() -> int:
        index = rows_index(regs[ops["dst"]], regs[ops["stride"]], True)
        vector.data[index] = vector.round(sim.accumulators[acc])
        if vector.written is not None:
            vector.written[index] = True
        return following
    return writeback


def build_multiply(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """mm / mma / mmt / mmta: ACC <- [ACC +] A @ W (or W^T)."""
    name, ops, regs, following = ins.mnemonic, ins.operands, sim.int_regs, pc + 1
    matrix, sync, strict, vector, mlen = sim.matrix_sram, sim.sync, sim.strict, sim.vector_sram, sim.mlen
    rows_index = _rows_indexer(sim)
    accumulate, transpose = name in ("mma", "mmta"), name in ("mmt", "mmta")
    tile = mlen * mlen
    acc = ins.operands["acc"]
    missing = _missing_accumulator(sim, ins)
    if missing is not None:
        return missing

    def multiply() -> int:
        act = vector.data[rows_index(regs[ops["act"]], regs[ops["stride"]], False)]
        w_at = regs[ops["w"]]
        if w_at < 0 or w_at + tile > matrix.size:
            raise InstructionFault(f"weight tile matrix SRAM [{w_at}, {w_at + tile}) outside [0, {matrix.size})")
        if w_at % mlen:
            raise InstructionFault(f"weight tile address {w_at} is not aligned to a matrix SRAM row of {mlen}")
        if strict and not matrix.written[w_at:w_at + tile].all():
            raise InstructionFault(f"weight tile at matrix SRAM {w_at} read before written (strict mode)")
        sync.access("matrix", "matrix_sram", w_at, w_at + tile, False)
        weight = matrix.data[w_at:w_at + tile].reshape(mlen, mlen)
        start = sim.accumulators[acc] if accumulate else np.zeros_like(sim.accumulators[acc])
        sim.accumulators[acc] = numerics.hw_matmul_accumulate(start, act, weight.T if transpose else weight)
        return following
    return multiply


HANDLERS: dict[str, HandlerBuilder] = {
    **dict.fromkeys(("mm", "mma", "mmt", "mmta"), build_multiply), "mwb": build_writeback,
}
