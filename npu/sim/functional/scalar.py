"""Scalar-unit handlers: integer ALU and INT SRAM words, fp32 arithmetic and FP SRAM words,
and the 64-bit DRAM address registers.

Floating-point results go through npu.hw.numerics (exp / reciprocal / rsqrt approximations),
so they match the vector unit and the RTL bit for bit.
"""

from __future__ import annotations


import numpy as np

from npu.hw import numerics
from npu.isa.encoding import Instruction
from npu.sim.functional.handlers import (INT32_MAX, INT32_MIN, MASK64, Handler, HandlerBuilder, InstructionFault, Machine,
                                         wrap32)


# The most frequent scalar instructions (addi, add, sub, aaddi, aadd: loop counters and address
# steps, millions per compiled step) get handlers with wrap32 inlined and no operation lambda,
# the same arithmetic in fewer calls; False builds the generic handlers for every instruction
# (the reference the tests compare against). Read when a program is loaded.
SPECIALISED_SCALAR = True
_BIAS32 = 1 << 31

# Scalar fexp / frecip / frsqrt remember their results by input bits (see build_fp_unary);
# False computes every one (the reference the tests compare against). Read when a program is loaded.
MEMOISED_UNARY = True
_UNARY_MEMO: dict[str, dict[bytes, np.float32]] = {}  # mnemonic -> input bits -> result


# ---- integer ---------------------------------------------------------------------------------
def _destination(ins: Instruction) -> int:
    """The register index a result goes to: writes to r0 land in index 16, which nothing reads."""
    return ins.operands.get("rd", 0) or 16


def build_int_memory(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """lw / sw: one INT SRAM word at base + offset."""
    ops, regs, following, rd = ins.operands, sim.int_regs, pc + 1, _destination(ins)
    base, offset, sram, sync, strict = ops["base"], ops["offset"], sim.int_sram, sim.sync, sim.strict
    data, written = sram.data, sram.written
    write = ins.mnemonic == "sw"
    source = ops.get("rs", 0)

    def memory() -> int:
        addr = regs[base] + offset
        if not 0 <= addr < sram.size:
            raise InstructionFault(f"INT SRAM word {addr} outside [0, {sram.size})")
        sync.access("scalar", "int_sram", addr, addr + 1, write)
        if write:
            data[addr] = regs[source]
            if written is not None:
                written[addr] = True
        else:
            if strict and not written[addr]:
                raise InstructionFault(f"INT SRAM word {addr} read before it was ever written (strict mode)")
            regs[rd] = int(data[addr])
        return following
    return memory


def build_lui(sim: Machine, pc: int, ins: Instruction) -> Handler:
    regs, following, rd = sim.int_regs, pc + 1, _destination(ins)
    value = wrap32(ins.operands["imm"] << 16)

    def lui() -> int:
        regs[rd] = value
        return following
    return lui


_IMMEDIATE_OPERATIONS = {
    "addi": lambda x, imm: x + imm, "andi": lambda x, imm: x & imm, "ori": lambda x, imm: x | imm,
    "slti": lambda x, imm: int(x < imm), "slli": lambda x, imm: x << imm,
    "srli": lambda x, imm: (x & 0xFFFFFFFF) >> imm, "srai": lambda x, imm: x >> imm,
}


def build_immediate(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """rd <- wrap32(rs1 op imm) for the immediate and shift-immediate ALU instructions."""
    ops, regs, following, rd = ins.operands, sim.int_regs, pc + 1, _destination(ins)
    a, imm = ops["rs1"], ops.get("imm", ops.get("shamt"))
    operation = _IMMEDIATE_OPERATIONS[ins.mnemonic]

    def immediate() -> int:
        regs[rd] = wrap32(operation(regs[a], imm))
        return following
    return immediate


def build_addi(sim: Machine, pc: int, ins: Instruction) -> Handler:
    if not SPECIALISED_SCALAR:
        return build_immediate(sim, pc, ins)
    regs, following, rd, a = sim.int_regs, pc + 1, _destination(ins), ins.operands["rs1"]
    bias = ins.operands["imm"] + _BIAS32  # wrap32(x + imm) = ((x + imm + 2**31) & 0xFFFFFFFF) - 2**31

    def addi() -> int:
        regs[rd] = ((regs[a] + bias) & 0xFFFFFFFF) - 0x80000000  # literals: no global lookups
        return following
    return addi


_REGISTER_OPERATIONS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "and": lambda x, y: x & y, "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y,
    "sll": lambda x, y: x << (y & 31), "srl": lambda x, y: (x & 0xFFFFFFFF) >> (y & 31),
    "sra": lambda x, y: x >> (y & 31), "slt": lambda x, y: int(x < y),
    "sltu": lambda x, y: int((x & 0xFFFFFFFF) < (y & 0xFFFFFFFF)),
    "min": min, "max": max,
}


def build_register(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """rd <- wrap32(rs1 op rs2) for the register-register ALU instructions."""
    ops, regs, following, rd = ins.operands, sim.int_regs, pc + 1, _destination(ins)
    a, b, operation = ops["rs1"], ops["rs2"], _REGISTER_OPERATIONS[ins.mnemonic]

    def register() -> int:
        regs[rd] = wrap32(operation(regs[a], regs[b]))
        return following
    return register


def build_add(sim: Machine, pc: int, ins: Instruction) -> Handler:
    if not SPECIALISED_SCALAR:
        return build_register(sim, pc, ins)
    regs, following, rd, a, b = sim.int_regs, pc + 1, _destination(ins), ins.operands["rs1"], ins.operands["rs2"]

    def add() -> int:
        regs[rd] = ((regs[a] + regs[b] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return following
    return add


def build_sub(sim: Machine, pc: int, ins: Instruction) -> Handler:
    if not SPECIALISED_SCALAR:
        return build_register(sim, pc, ins)
    regs, following, rd, a, b = sim.int_regs, pc + 1, _destination(ins), ins.operands["rs1"], ins.operands["rs2"]

    def sub() -> int:
        regs[rd] = ((regs[a] - regs[b] + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return following
    return sub


# ---- floating point --------------------------------------------------------------------------
def build_fp_memory(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """flw / fsw: one FP SRAM word at base + offset."""
    ops, regs, fregs, following, f32 = ins.operands, sim.int_regs, sim.fp_regs, pc + 1, np.float32
    base, offset, sram, sync, strict = ops["base"], ops["offset"], sim.fp_sram, sim.sync, sim.strict
    data, written = sram.data, sram.written
    write = ins.mnemonic == "fsw"
    freg = ops["fs"] if write else ops["fd"]

    def memory() -> int:
        addr = regs[base] + offset
        if not 0 <= addr < sram.size:
            raise InstructionFault(f"FP SRAM word {addr} outside [0, {sram.size})")
        sync.access("scalar", "fp_sram", addr, addr + 1, write)
        if write:
            data[addr] = fregs[freg]
            if written is not None:
                written[addr] = True
        else:
            if strict and not written[addr]:
                raise InstructionFault(f"FP SRAM word {addr} read before it was ever written (strict mode)")
            fregs[freg] = f32(data[addr])
        return following
    return memory


def build_flui(sim: Machine, pc: int, ins: Instruction) -> Handler:
    fregs, following, d = sim.fp_regs, pc + 1, ins.operands["fd"]
    value = np.array([ins.operands["value"] << 16], dtype=np.uint32).view(np.float32)[0]

    def flui() -> int:
        fregs[d] = value
        return following
    return flui


_FP_BINARY_OPERATIONS = {"fadd": np.add, "fsub": np.subtract, "fmul": np.multiply,
                         "fmax": np.maximum, "fmin": np.minimum}


def build_fp_binary(sim: Machine, pc: int, ins: Instruction) -> Handler:
    fregs, following, f32 = sim.fp_regs, pc + 1, np.float32
    d, a, b = ins.operands["fd"], ins.operands["fs1"], ins.operands["fs2"]
    operation = _FP_BINARY_OPERATIONS[ins.mnemonic]

    def binary() -> int:
        fregs[d] = f32(operation(fregs[a], fregs[b]))
        return following
    return binary


_FP_SIMPLE_UNARY = {"fmov": lambda x: x, "fneg": np.negative, "fabs": np.abs}
_FP_HARDWARE_UNARY = {"fexp": numerics.hw_exp, "frecip": numerics.hw_recip, "frsqrt": numerics.hw_rsqrt}


def build_fp_unary(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """fmov / fneg / fabs, and the hardware approximations fexp / frecip / frsqrt."""
    name, fregs, following, f32 = ins.mnemonic, sim.fp_regs, pc + 1, np.float32
    d, s = ins.operands["fd"], ins.operands["fs"]
    vector_op = _FP_HARDWARE_UNARY.get(name)
    simple = _FP_SIMPLE_UNARY.get(name)
    if MEMOISED_UNARY and vector_op is not None:
        # The hardware functions are pure functions of the input's bits, and a program
        # feeds them few distinct values: remember each result by the input's bit pattern.
        memo = _UNARY_MEMO.setdefault(name, {})

        def unary_memoised() -> int:
            x = fregs[s]
            if type(x) is not f32:
                fregs[d] = vector_op(np.array([x], dtype=f32))[0]
                return following
            key = x.tobytes()
            result = memo.get(key)
            if result is None:
                if len(memo) >= 4096:
                    memo.clear()
                result = memo[key] = vector_op(np.array([x], dtype=f32))[0]
            fregs[d] = result
            return following
        return unary_memoised

    def unary() -> int:
        x = fregs[s]
        fregs[d] = f32(simple(x)) if vector_op is None else vector_op(np.array([x], dtype=f32))[0]
        return following
    return unary


_FP_COMPARISONS = {"flt": np.less, "fle": np.less_equal, "feq": np.equal}


def build_fp_compare(sim: Machine, pc: int, ins: Instruction) -> Handler:
    regs, fregs, following = sim.int_regs, sim.fp_regs, pc + 1
    rd, a, b = _destination(ins), ins.operands["fs1"], ins.operands["fs2"]
    compare = _FP_COMPARISONS[ins.mnemonic]

    def fcompare() -> int:
        regs[rd] = int(compare(fregs[a], fregs[b]))
        return following
    return fcompare


def build_int_to_float(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """fcvt.f.i: fd <- float(rs), rounded to nearest even."""
    regs, fregs, following, f32 = sim.int_regs, sim.fp_regs, pc + 1, np.float32
    d, s = ins.operands["fd"], ins.operands["rs"]

    def int_to_float() -> int:
        fregs[d] = f32(regs[s])
        return following
    return int_to_float


def build_bits_to_float(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """fmv.f.i: fd <- the bits of rs."""
    regs, fregs, following, f32 = sim.int_regs, sim.fp_regs, pc + 1, np.float32
    d, s = ins.operands["fd"], ins.operands["rs"]

    def bits_to_float() -> int:
        fregs[d] = np.array([regs[s] & 0xFFFFFFFF], dtype=np.uint32).view(f32)[0]
        return following
    return bits_to_float


def build_float_bits(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """fmv.i.f: rd <- the bits of fs."""
    regs, fregs, following, f32 = sim.int_regs, sim.fp_regs, pc + 1, np.float32
    rd, s = _destination(ins), ins.operands["fs"]

    def float_bits() -> int:
        regs[rd] = wrap32(int(np.array([fregs[s]], dtype=f32).view(np.uint32)[0]))
        return following
    return float_bits


def build_float_to_int(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """fcvt.i.f: rd <- int(fs), rounded to nearest even and saturated; NaN faults."""
    regs, fregs, following = sim.int_regs, sim.fp_regs, pc + 1
    rd, s = _destination(ins), ins.operands["fs"]

    def float_to_int() -> int:
        x = fregs[s]
        if np.isnan(x):
            raise InstructionFault(f"fcvt.i.f of NaN in f{s}")
        regs[rd] = int(min(max(np.rint(np.float64(x)), INT32_MIN), INT32_MAX))
        return following
    return float_to_int


# ---- DRAM address registers ------------------------------------------------------------------
def build_address(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """amov / aadd / amac / aset / aaddi: ad <- a 64-bit DRAM address."""
    name, ops, regs, aregs = ins.mnemonic, ins.operands, sim.int_regs, sim.addr_regs
    following, d = pc + 1, ops["ad"]
    if SPECIALISED_SCALAR and name == "aaddi":
        source, imm = ops["as"], ops["imm"]

        def aaddi() -> int:
            aregs[d] = (aregs[source] + imm) & MASK64
            return following
        return aaddi
    if SPECIALISED_SCALAR and name == "aadd":
        source, step = ops["as"], ops["rs"]

        def aadd() -> int:
            aregs[d] = (aregs[source] + regs[step]) & MASK64
            return following
        return aadd
    compute = {
        "amov": lambda: regs[ops["rs"]] & 0xFFFFFFFF,
        "aadd": lambda: aregs[ops["as"]] + regs[ops["rs"]],
        "amac": lambda: aregs[ops["as"]] + regs[ops["rs1"]] * regs[ops["rs2"]],
        "aset": lambda: (regs[ops["rhi"]] & 0xFFFFFFFF) << 32 | regs[ops["rlo"]] & 0xFFFFFFFF,
        "aaddi": lambda: aregs[ops["as"]] + ops["imm"],
    }[name]

    def address() -> int:
        aregs[d] = compute() & MASK64
        return following
    return address


HANDLERS: dict[str, HandlerBuilder] = {
    "lw": build_int_memory, "sw": build_int_memory, "lui": build_lui,
    **dict.fromkeys(_IMMEDIATE_OPERATIONS, build_immediate), "addi": build_addi,
    **dict.fromkeys(_REGISTER_OPERATIONS, build_register), "add": build_add, "sub": build_sub,
    "flw": build_fp_memory, "fsw": build_fp_memory, "flui": build_flui,
    **dict.fromkeys(_FP_BINARY_OPERATIONS, build_fp_binary),
    **dict.fromkeys([*_FP_SIMPLE_UNARY, *_FP_HARDWARE_UNARY], build_fp_unary),
    **dict.fromkeys(_FP_COMPARISONS, build_fp_compare),
    "fcvt.f.i": build_int_to_float, "fcvt.i.f": build_float_to_int,
    "fmv.f.i": build_bits_to_float, "fmv.i.f": build_float_bits,
    **dict.fromkeys(("amov", "aadd", "amac", "aset", "aaddi"), build_address),
}
