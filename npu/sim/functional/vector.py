"""Vector-unit handlers: one row of VLEN lanes per operand, element-wise arithmetic and the
hardware special functions, reductions, transfers between the SRAMs, and the dLLM sampling
and KV-smoothing instructions.

Results are rounded to the vector SRAM's format; special functions, max / min, tree sums and
smoothing factors come from npu.hw.numerics, so they match the accuracy simulator and the RTL.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from npu.hw import numerics
from npu.hw.numerics import smoothing_factor
from npu.isa.encoding import Instruction
from npu.isa.table import SMOOTH_MODES
from npu.sim.functional.handlers import (
    INT32_MAX,
    INT32_MIN,
    Handler,
    HandlerBuilder,
    InstructionFault,
    Machine,
    fault_handler,
    wrap32,
)
from npu.sim.functional.memory import Sram


RowChecker = Callable[[int, bool], int]  # (address, write) -> address, after the checks
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


def row_checker(sim: Machine, sram: Sram, space: str, aligned: bool) -> RowChecker:
    """Checks one access of a VLEN-element row at `addr` (bounds, alignment, strict, sync)."""
    size, written, strict, sync, vlen = sram.size, sram.written, sim.strict, sim.sync, sim.vlen
    span = vlen

    def check(addr: int, write: bool) -> int:
        if addr < 0 or addr + span > size:
            raise InstructionFault(f"{sram.name} elements [{addr}, {addr + span}) outside [0, {size})")
        if aligned and addr % vlen:
            raise InstructionFault(f"{sram.name} address {addr} is not aligned to a row of VLEN={vlen}")
        if written is not None:
            if write:
                written[addr:addr + span] = True
            elif strict and not written[addr:addr + span].all():
                raise InstructionFault(f"{sram.name} elements [{addr}, {addr + span}) "
                                       f"read before written (strict mode)")
        sync.access("vector", space, addr, addr + span, write)
        return addr
    return check


def _vector_rows(sim: Machine) -> RowChecker:
    return row_checker(sim, sim.vector_sram, "vector_sram", aligned=True)


def _fp_rows(sim: Machine) -> RowChecker:
    return row_checker(sim, sim.fp_sram, "fp_sram", aligned=False)


def _int_rows(sim: Machine) -> RowChecker:
    return row_checker(sim, sim.int_sram, "int_sram", aligned=False)


# ---- element-wise ----------------------------------------------------------------------------
_BINARY_OPERATIONS = {
    "vadd": np.add, "vsub": np.subtract, "vmul": np.multiply, "vmax": numerics.hw_maximum,
    "vmin": numerics.hw_minimum, "vgt": lambda x, y: np.where(x > y, _ONE, _ZERO),
    "vge": lambda x, y: np.where(x >= y, _ONE, _ZERO), "veq": lambda x, y: np.where(x == y, _ONE, _ZERO),
    "vamax": lambda x, y: numerics.hw_maximum(x, np.abs(y)),
}


def build_binary(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vd <- vs1 op vs2."""
    regs, following, vlen, V, rnd = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.vector_sram.round
    vrow, operation = _vector_rows(sim), _BINARY_OPERATIONS[ins.mnemonic]
    d, a, b = ins.operands["vd"], ins.operands["vs1"], ins.operands["vs2"]

    def binary() -> int:
        x, y = vrow(regs[a], False), vrow(regs[b], False)
        out = operation(V[x:x + vlen], V[y:y + vlen])
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(out)
        return following
    return binary


_UNARY_OPERATIONS = {
    "vmov": lambda x: x, "vneg": np.negative, "vabs": np.abs, "vexp": numerics.hw_exp,
    "vrecip": numerics.hw_recip, "vrsqrt": numerics.hw_rsqrt, "vsilu": numerics.hw_silu,
}


def build_unary(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vd <- op(vs)."""
    regs, following, vlen, V, rnd = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.vector_sram.round
    vrow, operation = _vector_rows(sim), _UNARY_OPERATIONS[ins.mnemonic]
    d, s = ins.operands["vd"], ins.operands["vs"]

    def unary() -> int:
        x = vrow(regs[s], False)
        out = operation(V[x:x + vlen])
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(out)
        return following
    return unary


_SCALAR_OPERATIONS = {
    "vadds": np.add, "vsubs": np.subtract, "vmuls": np.multiply, "vmaxs": numerics.hw_maximum,
    "vmins": numerics.hw_minimum, "vges": lambda x, y: np.where(x >= y, _ONE, _ZERO),
    "vgts": lambda x, y: np.where(x > y, _ONE, _ZERO),
}


def build_vector_scalar(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vd <- vs op fs (the fp register in every lane)."""
    regs, fregs, following, vlen = sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, rnd = sim.vector_sram.data, sim.vector_sram.round
    vrow, operation = _vector_rows(sim), _SCALAR_OPERATIONS[ins.mnemonic]
    d, s, fs = ins.operands["vd"], ins.operands["vs"], ins.operands["fs"]

    def scalar() -> int:
        x = vrow(regs[s], False)
        out = operation(V[x:x + vlen], fregs[fs])
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(out)
        return following
    return scalar


def build_broadcast(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vbcast: fs in every lane."""
    regs, fregs, following, vlen = sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, rnd, vrow, f32 = sim.vector_sram.data, sim.vector_sram.round, _vector_rows(sim), np.float32
    d, fs = ins.operands["vd"], ins.operands["fs"]

    def broadcast() -> int:
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(np.full(vlen, fregs[fs], dtype=f32))
        return following
    return broadcast


def build_rotate_half(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vrothalf: RoPE's rotate-half within each group of 2^glog2 lanes."""
    regs, following, vlen, V, vrow = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, _vector_rows(sim)
    d, s, glog2 = ins.operands["vd"], ins.operands["vs"], ins.operands["glog2"]
    group = 1 << glog2
    if not 2 <= group <= vlen:
        return fault_handler(f"vrothalf group 2^{glog2} = {group} must be in [2, VLEN={vlen}]")

    def rotate_half() -> int:
        x = vrow(regs[s], False)
        lanes = V[x:x + vlen].reshape(-1, group)
        out = np.concatenate([-lanes[:, group // 2:], lanes[:, :group // 2]], axis=1).reshape(-1)
        z = vrow(regs[d], True)
        V[z:z + vlen] = out
        return following
    return rotate_half


# ---- reductions ------------------------------------------------------------------------------
def build_reduce(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vsum (fd + tree sum of the row) / vmaxr (max of fd and the row), chaining in fd."""
    name, regs, fregs, following, vlen = ins.mnemonic, sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, vrow, f32, tree_sum = sim.vector_sram.data, _vector_rows(sim), np.float32, numerics.hw_tree_sum
    fd, s = ins.operands["fd"], ins.operands["vs"]

    def reduce() -> int:
        x = vrow(regs[s], False)
        row = V[x:x + vlen]
        if name == "vsum":
            fregs[fd] = f32(fregs[fd] + tree_sum(row))
        else:
            fregs[fd] = f32(numerics.hw_maximum(fregs[fd], numerics.hw_max_reduce(row)))
        return following
    return reduce


# ---- transfers between the SRAMs -------------------------------------------------------------
def build_load_fp(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vldf: an FP SRAM row, rounded to the vector format."""
    regs, following, vlen, V, F = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.fp_sram.data
    vrow, frow, rnd = _vector_rows(sim), _fp_rows(sim), sim.vector_sram.round
    d, s = ins.operands["vd"], ins.operands["fsrc"]

    def load_fp() -> int:
        x = frow(regs[s], False)
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(F[x:x + vlen])
        return following
    return load_fp


def build_store_fp(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vstf: a vector row into FP SRAM."""
    regs, following, vlen, V, F = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.fp_sram.data
    vrow, frow = _vector_rows(sim), _fp_rows(sim)
    d, s = ins.operands["fdst"], ins.operands["vs"]

    def store_fp() -> int:
        x = vrow(regs[s], False)
        z = frow(regs[d], True)
        F[z:z + vlen] = V[x:x + vlen]
        return following
    return store_fp


def build_load_int(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vldi: an INT SRAM row as floats, rounded to the vector format."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, irow, rnd = _vector_rows(sim), _int_rows(sim), sim.vector_sram.round
    d, s = ins.operands["vd"], ins.operands["isrc"]

    def load_int() -> int:
        x = irow(regs[s], False)
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(I[x:x + vlen].astype(np.float32))
        return following
    return load_int


def build_store_int(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vsti: a vector row into INT SRAM, rounded to nearest even and saturated; NaN faults."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, irow = _vector_rows(sim), _int_rows(sim)
    d, s = ins.operands["idst"], ins.operands["vs"]

    def store_int() -> int:
        x = vrow(regs[s], False)
        row = V[x:x + vlen]
        if np.isnan(row).any():
            raise InstructionFault(f"vsti: NaN in vector SRAM row {x} cannot become an integer")
        z = irow(regs[d], True)
        I[z:z + vlen] = np.clip(np.rint(row.astype(np.float64)), INT32_MIN, INT32_MAX).astype(np.int32)
        return following
    return store_int


def build_int_equal(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vieq: 1.0 in the lanes whose INT SRAM word equals rs."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, irow = _vector_rows(sim), _int_rows(sim)
    d, s, value = ins.operands["vd"], ins.operands["isrc"], ins.operands["rs"]

    def int_equal() -> int:
        x = irow(regs[s], False)
        z = vrow(regs[d], True)
        V[z:z + vlen] = np.where(I[x:x + vlen] == regs[value], _ONE, _ZERO)
        return following
    return int_equal


# ---- dLLM sampling and KV smoothing ----------------------------------------------------------
def build_argmax(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vargmax: running argmax over chunks (NaN lanes never win; ties keep the lowest lane)."""
    ops, regs, fregs, following, vlen = ins.operands, sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, vrow, f32 = sim.vector_sram.data, _vector_rows(sim), np.float32
    fmax, ridx, s, base = ops["fmax"], ops["ridx"] or 16, ops["vs"], ops["base"]

    def argmax() -> int:
        x = vrow(regs[s], False)
        row = V[x:x + vlen]
        if np.isnan(row).any():
            row = np.where(np.isnan(row), -np.inf, row).astype(f32)
        lane = int(np.argmax(row))
        if row[lane] > fregs[fmax]:
            fregs[fmax] = f32(row[lane])
            regs[ridx] = wrap32(regs[base] + lane)
        return following
    return argmax


def build_rank(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vrank: adds to each candidate's INT SRAM rank how many `other` lanes beat it."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, rank_row = _vector_rows(sim), _int_rows(sim)
    d, c, o = ins.operands["vd"], ins.operands["vcand"], ins.operands["vother"]
    lanes = np.arange(vlen)

    def rank() -> int:
        x, y = vrow(regs[c], False), vrow(regs[o], False)
        cand, other = V[x:x + vlen], V[y:y + vlen]
        earlier = (y + lanes)[None, :] < (x + lanes)[:, None]
        beats = (other[None, :] > cand[:, None]) | ((other[None, :] == cand[:, None]) & earlier)
        z = rank_row(regs[d], False)
        rank_row(z, True)
        I[z:z + vlen] += beats.sum(axis=1).astype(np.int32)
        return following
    return rank


def build_topk(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vtopk: 1.0 where eligible and the rank is below k."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, irow = _vector_rows(sim), _int_rows(sim)
    d, rk, e, k = ins.operands["vd"], ins.operands["vrank"], ins.operands["velig"], ins.operands["k"]

    def topk() -> int:
        ranks = irow(regs[rk], False)
        x = vrow(regs[e], False)
        mask = (V[x:x + vlen] != 0) & (I[ranks:ranks + vlen] < regs[k])
        z = vrow(regs[d], True)
        V[z:z + vlen] = np.where(mask, _ONE, _ZERO)
        return following
    return topk


def build_threshold(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vthresh: 1.0 where eligible and the confidence reaches tau."""
    regs, fregs, following, vlen = sim.int_regs, sim.fp_regs, pc + 1, sim.vlen
    V, vrow = sim.vector_sram.data, _vector_rows(sim)
    d, c, e, tau = ins.operands["vd"], ins.operands["vconf"], ins.operands["velig"], ins.operands["tau"]

    def threshold() -> int:
        x, y = vrow(regs[c], False), vrow(regs[e], False)
        mask = (V[y:y + vlen] != 0) & (V[x:x + vlen] >= fregs[tau])
        z = vrow(regs[d], True)
        V[z:z + vlen] = np.where(mask, _ONE, _ZERO)
        return following
    return threshold


def build_select(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vsel: vs1 where the mask is non-zero, else vs2."""
    regs, following, vlen, V, vrow = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, _vector_rows(sim)
    d, a, b, m = ins.operands["vd"], ins.operands["vs1"], ins.operands["vs2"], ins.operands["vmask"]

    def select() -> int:
        x, y, w = vrow(regs[a], False), vrow(regs[b], False), vrow(regs[m], False)
        out = np.where(V[w:w + vlen] != 0, V[x:x + vlen], V[y:y + vlen])
        z = vrow(regs[d], True)
        V[z:z + vlen] = out
        return following
    return select


def build_select_int(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vseli: INT SRAM isrc1 where the vector mask is non-zero, else isrc2 (commits token ids)."""
    regs, following, vlen, V, I = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data, sim.int_sram.data
    vrow, irow = _vector_rows(sim), _int_rows(sim)
    d, a, b, m = ins.operands["idst"], ins.operands["isrc1"], ins.operands["isrc2"], ins.operands["vmask"]

    def select_int() -> int:
        x, y, w = irow(regs[a], False), irow(regs[b], False), vrow(regs[m], False)
        out = np.where(V[w:w + vlen] != 0, I[x:x + vlen], I[y:y + vlen])
        z = irow(regs[d], True)
        I[z:z + vlen] = out
        return following
    return select_int


def build_smoothing_scale(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """vsmscale: per-channel smoothing factors from a max|x| statistics row (npu.hw.numerics)."""
    regs, following, vlen, V = sim.int_regs, pc + 1, sim.vlen, sim.vector_sram.data
    vrow, rnd = _vector_rows(sim), sim.vector_sram.round
    d, s, mode = ins.operands["vd"], ins.operands["vs"], SMOOTH_MODES[ins.operands["mode"]]

    def smoothing_scale() -> int:
        x = vrow(regs[s], False)
        z = vrow(regs[d], True)
        V[z:z + vlen] = rnd(smoothing_factor(V[x:x + vlen], mode))
        return following
    return smoothing_scale


HANDLERS: dict[str, HandlerBuilder] = {
    **dict.fromkeys(_BINARY_OPERATIONS, build_binary),
    **dict.fromkeys(_UNARY_OPERATIONS, build_unary),
    **dict.fromkeys(_SCALAR_OPERATIONS, build_vector_scalar),
    "vbcast": build_broadcast, "vrothalf": build_rotate_half,
    "vsum": build_reduce, "vmaxr": build_reduce,
    "vldf": build_load_fp, "vstf": build_store_fp, "vldi": build_load_int, "vsti": build_store_int,
    "vieq": build_int_equal,
    "vargmax": build_argmax, "vrank": build_rank, "vtopk": build_topk, "vthresh": build_threshold,
    "vsel": build_select, "vseli": build_select_int, "vsmscale": build_smoothing_scale,
}
