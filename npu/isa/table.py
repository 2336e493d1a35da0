"""The dnpu instruction set as ONE table.

Every instruction is an `InstructionSpec` record: mnemonic, 6-bit opcode (+ optional 4-bit
function code for grouped opcodes), operand fields with exact bit positions, executing unit,
one-line semantics, latency class, whether it is a dLLM instruction (absent on `ar-npu`) and
which register operands it reads and writes. The encoder, decoder, assembler, disassembler,
`docs/isa.md`, the RTL decoder constants (`opcode_constants()`) and the register scoreboards
of both timing models are all derived from `INSTRUCTIONS`; nothing else lists instructions.

Word layout (32 bits): opcode in bits [31:26]; operands are packed from bit 25 downwards in
the order they are written in assembly; grouped opcodes carry their function code in bits
[3:0]. Unused bits must be zero (the decoder rejects anything else as illegal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

WORD_BITS = 32
OPCODE_LSB, OPCODE_WIDTH = 26, 6
FUNCT_LSB, FUNCT_WIDTH = 0, 4

NUM_INT_REGS = 16  # r0 reads as zero
NUM_FP_REGS = 8
NUM_ADDR_REGS = 8
MAX_LOOP_DEPTH = 4  # nested zero-overhead loops the loop stack holds
# Accumulators the matrix-unit instructions can name (`acc` field); a machine has
# NPUConfig.accumulators <= 2**ACC_INDEX_BITS of them (config/npu/*.yaml `accumulators`).
ACC_INDEX_BITS = 3

# Data formats a DMA transfer converts between DRAM and an SRAM (3-bit `fmt` field).
# Names follow npu.hw.numerics.FORMATS (int32 is raw two's complement, for INT SRAM only).
# MX formats store blocks of `mx_block` elements as [1 shared E8M0 scale byte][packed elements].
DRAM_FORMATS = ("fp32", "bf16", "int32", "mxint8", "mxint4", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp4")

# The MX scale rule (npu.hw.numerics.MX_SCALE_RULES) of each store that can write an MX format.
# The fmt field is full (3 bits, 8 formats), and the rule changes only how a block is encoded,
# never the DRAM layout or its decoding, so the no-clip rule is a store opcode of its own ("nc",
# no clip) rather than a format code: loads need no twin.
STORE_SCALE_RULES = {"dst.v": "ocp", "dst.f": "ocp", "dstkv.v": "ocp",
                     "dstnc.v": "no_clip", "dstnc.f": "no_clip", "dstkvnc.v": "no_clip"}
NO_CLIP_STORE = {"dst.v": "dstnc.v", "dst.f": "dstnc.f", "dstkv.v": "dstkvnc.v"}  # OCP store -> its twin

# Units named by `wait` (a bit mask).
SYNC_UNITS = ("dma", "matrix", "vector")

# Smoothing-scale modes of `vsmscale` (stats row m -> per-channel factor s).
SMOOTH_MODES = ("p2a25", "p2a50", "p2a75", "p2a100", "sqrt", "ident")


class Kind(Enum):
    """What an operand field holds; decides its assembly syntax and range."""

    INT_REG = "an int register r0..r15"
    FP_REG = "an fp register f0..f7"
    ADDR_REG = "a DRAM address register a0..a7"
    IMM_S = "signed immediate"
    IMM_U = "unsigned immediate"
    BF16 = "bf16 constant (upper 16 bits of an fp32)"
    ENUM = "name from a fixed list"
    UNIT_MASK = "units joined by '|'"
    BRANCH = "pc-relative target (label or offset)"
    LOOP_END = "loop end (label after the body, or body length)"


class Unit(Enum):
    CONTROL = "control"
    SCALAR = "scalar"
    DMA = "dma"
    MATRIX = "matrix"
    VECTOR = "vector"


@dataclass(frozen=True)
class OperandField:
    name: str
    kind: Kind
    lsb: int
    width: int
    choices: tuple[str, ...] = ()

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def value_range(self) -> tuple[int, int]:
        """Inclusive range of the value this field can encode."""
        if self.kind in (Kind.IMM_S, Kind.BRANCH):
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        if self.kind is Kind.ENUM:
            return 0, len(self.choices) - 1
        if self.kind is Kind.INT_REG:
            return 0, NUM_INT_REGS - 1
        if self.kind is Kind.FP_REG:
            return 0, NUM_FP_REGS - 1
        if self.kind is Kind.ADDR_REG:
            return 0, NUM_ADDR_REGS - 1
        return 0, (1 << self.width) - 1


@dataclass(frozen=True)
class InstructionSpec:
    mnemonic: str
    opcode: int
    funct: int | None
    fields: tuple[OperandField, ...]
    unit: Unit
    semantics: str
    latency: str
    dllm: bool
    syntax: str  # operand template, e.g. "{rd}, {offset}({base})"
    group: str   # documentation section
    # Register operands (names of INT/FP/address register fields), derived from operand roles
    # in `_TableBuilder.add`: `reads` are read at issue (ISA rule 2), `writes` are written (a
    # scalar destination rd/fd/ad, or a register the vector unit accumulates into), and
    # `accumulates` (a subset of `writes`) are read-modify-written by the executing unit, not
    # read at issue: `vsum fd` chains fd <- fd + sum in the vector unit (ISA rule 3).
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    accumulates: tuple[str, ...] = ()

    @property
    def fixed_bits(self) -> int:
        word = self.opcode << OPCODE_LSB
        if self.funct is not None:
            word |= self.funct << FUNCT_LSB
        return word

    @property
    def used_mask(self) -> int:
        mask = ((1 << OPCODE_WIDTH) - 1) << OPCODE_LSB
        if self.funct is not None:
            mask |= ((1 << FUNCT_WIDTH) - 1) << FUNCT_LSB
        for operand in self.fields:
            mask |= operand.mask
        return mask

    def field(self, name: str) -> OperandField:
        for operand in self.fields:
            if operand.name == name:
                return operand
        raise KeyError(f"{self.mnemonic} has no operand {name!r}")

    def registers_read(self, operands: Mapping[str, int]) -> tuple[int, ...]:
        """Register numbers (see `register_number`) this instruction reads at issue; r0 omitted."""
        return self._registers(self.reads, operands)

    def registers_written(self, operands: Mapping[str, int]) -> tuple[int, ...]:
        """Register numbers this instruction writes (accumulated ones included); r0 omitted."""
        return self._registers(self.writes, operands)

    def _registers(self, names: tuple[str, ...], operands: Mapping[str, int]) -> tuple[int, ...]:
        numbers = []
        for name in names:
            kind = self.field(name).kind
            if not (kind is Kind.INT_REG and operands[name] == 0):  # r0 reads 0, writes are dropped
                numbers.append(register_number(kind, operands[name]))
        return tuple(numbers)


_REGISTER_BASE = {Kind.INT_REG: 0, Kind.FP_REG: NUM_INT_REGS, Kind.ADDR_REG: NUM_INT_REGS + NUM_FP_REGS}
# Scalar destinations are named rd (INT), fd (FP) and ad (address) throughout the table.
_DESTINATION_NAMES = ("rd", "fd", "ad")


def register_number(kind: Kind, index: int) -> int:
    """One number per architectural register, for scoreboards: r0..r15 -> 0..15,
    f0..f7 -> 16..23, a0..a7 -> 24..31."""
    return _REGISTER_BASE[kind] + index


def _register_roles(fields: tuple[OperandField, ...], unit: Unit,
                    accumulates: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(reads, writes) of the register operands: a scalar instruction writes its rd/fd/ad, a
    vector reduction writes the registers it accumulates into; every other register is read."""
    reads, writes = [], []
    for operand in fields:
        if operand.kind not in _REGISTER_BASE:
            continue
        if operand.name in accumulates or (unit is Unit.SCALAR and operand.name in _DESTINATION_NAMES):
            writes.append(operand.name)
        else:
            reads.append(operand.name)
    return tuple(reads), tuple(writes)


_WIDTHS = {Kind.INT_REG: 4, Kind.FP_REG: 3, Kind.ADDR_REG: 3, Kind.UNIT_MASK: len(SYNC_UNITS)}


def _operand_fields(mnemonic: str, operands: str, grouped: bool, widths: dict[str, int],
                    choices: dict[str, tuple[str, ...]]) -> tuple[OperandField, ...]:
    """Pack operands from bit 25 down; an immediate without a width takes what is left."""
    kinds = {"r": Kind.INT_REG, "f": Kind.FP_REG, "a": Kind.ADDR_REG, "s": Kind.IMM_S,
             "u": Kind.IMM_U, "h": Kind.BF16, "e": Kind.ENUM, "m": Kind.UNIT_MASK,
             "b": Kind.BRANCH, "l": Kind.LOOP_END}
    lowest = FUNCT_LSB + FUNCT_WIDTH if grouped else 0
    top = OPCODE_LSB
    fields = []
    for item in operands.split():
        name, code = item.split(":")
        kind = kinds[code]
        if kind is Kind.ENUM:
            width = max(1, (len(choices[name]) - 1).bit_length())
        elif kind is Kind.BF16:
            width = 16
        else:
            width = widths.get(name) or _WIDTHS.get(kind) or (top - lowest)
        top -= width
        if top < lowest:
            raise ValueError(f"{mnemonic}: operands do not fit in 26 bits")
        fields.append(OperandField(name, kind, top, width, choices.get(name, ())))
    return tuple(fields)


@dataclass
class _TableBuilder:
    instructions: list[InstructionSpec] = field(default_factory=list)
    group: str = ""

    def add(self, mnemonic: str, opcode: int, operands: str, unit: Unit, semantics: str,
            latency: str, *, funct: int | None = None, dllm: bool = False,
            syntax: str | None = None, widths: dict[str, int] | None = None,
            choices: dict[str, tuple[str, ...]] | None = None, accumulates: tuple[str, ...] = ()) -> None:
        fields = _operand_fields(mnemonic, operands, funct is not None, widths or {}, choices or {})
        if syntax is None:
            syntax = ", ".join("{" + operand.name + "}" for operand in fields)
        reads, writes = _register_roles(fields, unit, accumulates)
        self.instructions.append(InstructionSpec(
            mnemonic, opcode, funct, fields, unit, semantics, latency, dllm, syntax, self.group,
            reads, writes, accumulates))


def _build() -> tuple[InstructionSpec, ...]:
    t = _TableBuilder()
    C, S, D, M, V = Unit.CONTROL, Unit.SCALAR, Unit.DMA, Unit.MATRIX, Unit.VECTOR

    t.group = "Control and synchronisation"
    t.add("halt", 0, "", C, "stop the machine", "control")
    t.add("nop", 1, "", C, "do nothing", "control")
    t.add("j", 2, "target:b", C, "pc <- pc + target", "branch")
    for op, name, cond in ((3, "beq", "=="), (4, "bne", "!="), (5, "blt", "<"), (6, "bge", ">=")):
        t.add(name, op, "rs1:r rs2:r target:b", C,
              f"if rs1 {cond} rs2 (signed) then pc <- pc + target", "branch")
    t.add("loop", 7, "count:r end:l", C,
          "run the body [pc+1, end) count times with zero overhead (count 0 skips it)", "control",
          widths={"end": 16})
    t.add("loopi", 8, "count:u end:l", C,
          "run the body [pc+1, end) count times with zero overhead (count 0 skips it)", "control",
          widths={"count": 10, "end": 16})
    t.add("wait", 9, "units:m", C,
          "stall issue until every listed unit (dma|matrix|vector) has finished its queue", "sync")

    t.group = "Scalar integer"
    alu = (("add", "rd <- rs1 + rs2"), ("sub", "rd <- rs1 - rs2"), ("mul", "rd <- low 32 bits of rs1 * rs2"),
           ("and", "rd <- rs1 & rs2"), ("or", "rd <- rs1 | rs2"), ("xor", "rd <- rs1 ^ rs2"),
           ("sll", "rd <- rs1 << rs2[4:0]"), ("srl", "rd <- rs1 >> rs2[4:0] (logical)"),
           ("sra", "rd <- rs1 >> rs2[4:0] (arithmetic)"), ("slt", "rd <- 1 if rs1 < rs2 (signed) else 0"),
           ("sltu", "rd <- 1 if rs1 < rs2 (unsigned) else 0"), ("min", "rd <- min(rs1, rs2) (signed)"),
           ("max", "rd <- max(rs1, rs2) (signed)"))
    for funct, (name, sem) in enumerate(alu):
        t.add(name, 10, "rd:r rs1:r rs2:r", S, sem, "alu", funct=funct)
    t.add("addi", 11, "rd:r rs1:r imm:s", S, "rd <- rs1 + imm", "alu")
    t.add("andi", 12, "rd:r rs1:r imm:u", S, "rd <- rs1 & imm", "alu")
    t.add("ori", 13, "rd:r rs1:r imm:u", S, "rd <- rs1 | imm", "alu")
    t.add("slti", 14, "rd:r rs1:r imm:s", S, "rd <- 1 if rs1 < imm (signed) else 0", "alu")
    for funct, (name, sem) in enumerate((("slli", "rd <- rs1 << shamt"), ("srli", "rd <- rs1 >> shamt (logical)"),
                                         ("srai", "rd <- rs1 >> shamt (arithmetic)"))):
        t.add(name, 15, "rd:r rs1:r shamt:u", S, sem, "alu", funct=funct, widths={"shamt": 5})
    t.add("lui", 16, "rd:r imm:u", S, "rd <- imm << 16", "alu", widths={"imm": 16})
    t.add("lw", 17, "rd:r base:r offset:s", S, "rd <- INT_SRAM[base + offset]", "scalar_mem",
          syntax="{rd}, {offset}({base})")
    t.add("sw", 18, "rs:r base:r offset:s", S, "INT_SRAM[base + offset] <- rs", "scalar_mem",
          syntax="{rs}, {offset}({base})")

    t.group = "Scalar floating point"
    t.add("flw", 19, "fd:f base:r offset:s", S, "fd <- FP_SRAM[base + offset]", "scalar_mem",
          syntax="{fd}, {offset}({base})")
    t.add("fsw", 20, "fs:f base:r offset:s", S, "FP_SRAM[base + offset] <- fs", "scalar_mem",
          syntax="{fs}, {offset}({base})")
    for funct, (name, sem) in enumerate((("fadd", "fd <- fs1 + fs2"), ("fsub", "fd <- fs1 - fs2"),
                                         ("fmul", "fd <- fs1 * fs2"), ("fmax", "fd <- max(fs1, fs2)"),
                                         ("fmin", "fd <- min(fs1, fs2)"))):
        t.add(name, 21, "fd:f fs1:f fs2:f", S, sem + " (fp32)", "fpu", funct=funct)
    for funct, (name, sem) in enumerate((("fmov", "fd <- fs"), ("fneg", "fd <- -fs"), ("fabs", "fd <- |fs|"),
                                         ("fexp", "fd <- hw_exp(fs)"), ("frecip", "fd <- hw_recip(fs)"),
                                         ("frsqrt", "fd <- hw_rsqrt(fs)"))):
        t.add(name, 22, "fd:f fs:f", S, sem, "fpu", funct=funct)
    t.add("fcvt.f.i", 23, "fd:f rs:r", S, "fd <- float(rs) (round to nearest even)", "fpu", funct=0)
    t.add("fcvt.i.f", 23, "rd:r fs:f", S, "rd <- int(fs) (round to nearest even, saturating)", "fpu", funct=1)
    t.add("fmv.f.i", 23, "fd:f rs:r", S, "fd <- bits of rs", "fpu", funct=2)
    t.add("fmv.i.f", 23, "rd:r fs:f", S, "rd <- bits of fs", "fpu", funct=3)
    for funct, (name, sem) in enumerate((("flt", "<"), ("fle", "<="), ("feq", "=="))):
        t.add(name, 24, "rd:r fs1:f fs2:f", S, f"rd <- 1 if fs1 {sem} fs2 else 0", "fpu", funct=funct)
    t.add("flui", 25, "fd:f value:h", S, "fd <- value (bf16 constant, e.g. 1.0, -inf, 0x3f80)", "fpu")

    t.group = "DRAM address registers"
    t.add("amov", 26, "ad:a rs:r", S, "ad <- zero-extended rs", "alu", funct=0)
    t.add("aadd", 26, "ad:a as:a rs:r", S, "ad <- as + sign-extended rs", "alu", funct=1)
    t.add("amac", 26, "ad:a as:a rs1:r rs2:r", S,
          "ad <- as + rs1 * rs2 (slot / block addressing)", "alu", funct=2)
    t.add("aset", 26, "ad:a rhi:r rlo:r", S, "ad <- (rhi << 32) | zero-extended rlo", "alu", funct=3)
    t.add("aaddi", 27, "ad:a as:a imm:s", S, "ad <- as + imm", "alu")

    t.group = "DMA"
    dma_operands = "dram:a sram:r rows:r cols:r dstride:r sstride:r fmt:e"
    fmt = {"fmt": DRAM_FORMATS}
    for op, name, memory, direction in ((28, "dld.v", "VEC_SRAM", "load"), (29, "dst.v", "VEC_SRAM", "store"),
                                        (30, "dld.m", "MAT_SRAM", "load"), (31, "dld.f", "FP_SRAM", "load"),
                                        (32, "dst.f", "FP_SRAM", "store"), (33, "dld.i", "INT_SRAM", "load"),
                                        (34, "dst.i", "INT_SRAM", "store")):
        if direction == "load":
            sem = (f"{memory}[sram + i*sstride + j] <- decode_fmt(DRAM[dram + i*dstride bytes])[j] "
                   f"for i < rows, j < cols")
        else:
            sem = (f"DRAM[dram + i*dstride bytes] <- encode_fmt({memory}[sram + i*sstride + 0..cols]) "
                   f"for i < rows")
        t.add(name, op, dma_operands, D, sem, "dma", choices=fmt)
    kv_operands = "dram:a sram:r rows:r cols:r dstride:r scale:r fmt:e"
    t.add("dldkv.v", 35, kv_operands, D,
          "VEC_SRAM[sram + i*cols + j] <- decode_fmt(DRAM row i)[j] * VEC_SRAM[scale + j] (dequantise + unsmooth)",
          "dma", dllm=True, choices=fmt)
    t.add("dldkv.m", 36, kv_operands, D,
          "MAT_SRAM[sram + i*cols + j] <- decode_fmt(DRAM row i)[j] * VEC_SRAM[scale + j] (dequantise + unsmooth)",
          "dma", dllm=True, choices=fmt)
    t.add("dstkv.v", 37, kv_operands, D,
          "DRAM row i <- encode_fmt(VEC_SRAM[sram + i*cols + j] * hw_recip(VEC_SRAM[scale + j])) (smooth + quantise)",
          "dma", dllm=True, choices=fmt)
    for op, name, memory in ((54, "dstnc.v", "VEC_SRAM"), (55, "dstnc.f", "FP_SRAM")):
        t.add(name, op, dma_operands, D,
              f"as dst.{name[-1]}, but MX blocks take the no-clip scale rule (the block maximum never clips)",
              "dma", choices=fmt)
    t.add("dstkvnc.v", 56, kv_operands, D,
          "as dstkv.v, but MX blocks take the no-clip scale rule (the block maximum never clips)",
          "dma", dllm=True, choices=fmt)

    t.group = "Matrix unit"
    for funct, (name, sem) in enumerate((
            ("mm", "ACC <- A @ W"), ("mma", "ACC <- ACC + A @ W"),
            ("mmt", "ACC <- A @ W^T"), ("mmta", "ACC <- ACC + A @ W^T"))):
        t.add(name, 38, "act:r stride:r w:r acc:u", M,
              f"{sem}; ACC = accumulator `acc` (< NPUConfig.accumulators), A = BLEN rows of MLEN at "
              f"VEC_SRAM[act + i*stride], W = MLENxMLEN tile at MAT_SRAM[w] (fp32 acc)",
              "matrix", funct=funct, widths={"acc": ACC_INDEX_BITS})
    t.add("mwb", 39, "dst:r stride:r acc:u", M,
          "VEC_SRAM[dst + i*stride + j] <- round_vector(ACC[acc][i][j]) for i < BLEN, j < MLEN", "matrix_wb",
          widths={"acc": ACC_INDEX_BITS})

    t.group = "Vector unit: element-wise"
    rows_note = "(one row of VLEN lanes; vector SRAM addresses in elements, VLEN-aligned)"
    for funct, (name, sem, dllm) in enumerate((
            ("vadd", "vd <- vs1 + vs2", False), ("vsub", "vd <- vs1 - vs2", False),
            ("vmul", "vd <- vs1 * vs2", False), ("vmax", "vd <- max(vs1, vs2)", False),
            ("vmin", "vd <- min(vs1, vs2)", False), ("vgt", "vd <- 1.0 if vs1 > vs2 else 0.0", False),
            ("vge", "vd <- 1.0 if vs1 >= vs2 else 0.0", False), ("veq", "vd <- 1.0 if vs1 == vs2 else 0.0", False),
            ("vamax", "vd <- max(vs1, |vs2|) (per-channel KV statistics)", True))):
        t.add(name, 40, "vd:r vs1:r vs2:r", V, f"{sem} {rows_note}", "vector_elementwise", funct=funct, dllm=dllm)
    for funct, (name, sem, latency) in enumerate((
            ("vmov", "vd <- vs", "vector_elementwise"), ("vneg", "vd <- -vs", "vector_elementwise"),
            ("vabs", "vd <- |vs|", "vector_elementwise"), ("vexp", "vd <- hw_exp(vs)", "vector_special"),
            ("vrecip", "vd <- hw_recip(vs)", "vector_special"), ("vrsqrt", "vd <- hw_rsqrt(vs)", "vector_special"),
            ("vsilu", "vd <- hw_silu(vs)", "vector_special"))):
        t.add(name, 41, "vd:r vs:r", V, f"{sem} {rows_note}", latency, funct=funct)
    for funct, (name, sem) in enumerate((
            ("vadds", "vd <- vs + fs"), ("vsubs", "vd <- vs - fs"), ("vmuls", "vd <- vs * fs"),
            ("vmaxs", "vd <- max(vs, fs)"), ("vmins", "vd <- min(vs, fs)"),
            ("vges", "vd <- 1.0 if vs >= fs else 0.0"), ("vgts", "vd <- 1.0 if vs > fs else 0.0"))):
        t.add(name, 42, "vd:r vs:r fs:f", V, f"{sem} {rows_note}", "vector_elementwise", funct=funct)
    t.add("vbcast", 43, "vd:r fs:f", V, f"vd <- fs in every lane {rows_note}", "vector_elementwise")
    t.add("vrothalf", 44, "vd:r vs:r glog2:u", V,
          "in each group of G = 2^glog2 lanes: vd <- concat(-vs[G/2:G], vs[0:G/2]) (RoPE rotate-half)",
          "vector_elementwise", widths={"glog2": 4})

    t.group = "Vector unit: reductions and transfers"
    t.add("vsum", 45, "fd:f vs:r", V, "fd <- fd + tree_sum(vs) (chains in the vector unit)", "vector_reduce", funct=0,
          accumulates=("fd",))
    t.add("vmaxr", 45, "fd:f vs:r", V, "fd <- max(fd, max(vs)) (chains in the vector unit)", "vector_reduce", funct=1,
          accumulates=("fd",))
    t.add("vldf", 46, "vd:r fsrc:r", V, "vd <- FP_SRAM[fsrc + 0..VLEN] (rounded to the vector format)",
          "vector_transfer", funct=0)
    t.add("vstf", 46, "fdst:r vs:r", V, "FP_SRAM[fdst + 0..VLEN] <- vs", "vector_transfer", funct=1)
    t.add("vldi", 46, "vd:r isrc:r", V, "vd <- float(INT_SRAM[isrc + 0..VLEN])", "vector_transfer", funct=2)
    t.add("vsti", 46, "idst:r vs:r", V, "INT_SRAM[idst + 0..VLEN] <- int(vs) (round to nearest even, saturating)",
          "vector_transfer", funct=3)
    t.add("vieq", 46, "vd:r isrc:r rs:r", V, "vd <- 1.0 if INT_SRAM[isrc + lane] == rs else 0.0",
          "vector_transfer", funct=4)

    t.group = "Vector unit: dLLM sampling and KV smoothing"
    t.add("vargmax", 47, "fmax:f ridx:r vs:r base:r", V,
          "m, i <- max(vs), lowest lane holding m; if m > fmax: fmax <- m, ridx <- base + i "
          "(running argmax over chunks; start fmax at -inf)", "vector_reduce", dllm=True,
          accumulates=("fmax", "ridx"))
    t.add("vrank", 48, "vd:r vcand:r vother:r", V,
          "vd[i] <- vd[i] + #{j: vother[j] > vcand[i], or equal with VEC_SRAM address of j < that of i}",
          "vector_dllm", dllm=True)
    t.add("vtopk", 49, "vd:r vrank:r velig:r k:r", V,
          "vd <- 1.0 if velig != 0 and vrank < k else 0.0 (top-k mask from ranks)", "vector_dllm", dllm=True)
    t.add("vthresh", 50, "vd:r vconf:r velig:r tau:f", V,
          "vd <- 1.0 if velig != 0 and vconf >= tau else 0.0 (threshold select)", "vector_dllm", dllm=True)
    t.add("vsel", 51, "vd:r vs1:r vs2:r vmask:r", V, "vd <- vs1 if vmask != 0 else vs2 (masked select)",
          "vector_dllm", dllm=True)
    t.add("vseli", 52, "idst:r isrc1:r isrc2:r vmask:r", V,
          "INT_SRAM[idst + l] <- INT_SRAM[isrc1 + l] if vmask[l] != 0 else INT_SRAM[isrc2 + l] (commit token ids)",
          "vector_dllm", dllm=True)
    t.add("vsmscale", 53, "vd:r vs:r mode:e", V,
          "vd <- smoothing factor from max|x| stats vs: p2aNN = 2^floor(NN/100 * floor(log2 vs)), "
          "sqrt = vs * hw_rsqrt(vs), ident = vs; 1.0 where vs == 0", "vector_dllm", dllm=True,
          choices={"mode": SMOOTH_MODES})
    return tuple(t.instructions)


INSTRUCTIONS: tuple[InstructionSpec, ...] = _build()
BY_MNEMONIC: dict[str, InstructionSpec] = {spec.mnemonic: spec for spec in INSTRUCTIONS}


def _check_table() -> None:
    """The table is self-consistent: unique mnemonics, opcodes and function codes, fields fit."""
    if len(BY_MNEMONIC) != len(INSTRUCTIONS):
        raise ValueError("duplicate mnemonic in the ISA table")
    seen: dict[tuple[int, int | None], str] = {}
    grouped: dict[int, bool] = {}
    for spec in INSTRUCTIONS:
        if not 0 <= spec.opcode < (1 << OPCODE_WIDTH):
            raise ValueError(f"{spec.mnemonic}: opcode out of range")
        if grouped.setdefault(spec.opcode, spec.funct is not None) != (spec.funct is not None):
            raise ValueError(f"{spec.mnemonic}: opcode {spec.opcode} mixes grouped and plain encodings")
        key = (spec.opcode, spec.funct)
        if key in seen:
            raise ValueError(f"{spec.mnemonic} and {seen[key]} share opcode/funct {key}")
        seen[key] = spec.mnemonic
        if not set(spec.accumulates) <= set(spec.writes):
            raise ValueError(f"{spec.mnemonic}: accumulates {spec.accumulates} names no register operand")


_check_table()


def opcode_constants() -> dict[str, int]:
    """Constants for generated decoders (RTL): OP_<MNEMONIC>, FUNCT_<MNEMONIC>, field positions."""
    constants: dict[str, int] = {"OPCODE_LSB": OPCODE_LSB, "OPCODE_WIDTH": OPCODE_WIDTH,
                                 "FUNCT_LSB": FUNCT_LSB, "FUNCT_WIDTH": FUNCT_WIDTH,
                                 "MAX_LOOP_DEPTH": MAX_LOOP_DEPTH}
    for spec in INSTRUCTIONS:
        key = spec.mnemonic.upper().replace(".", "_")
        constants[f"OP_{key}"] = spec.opcode
        if spec.funct is not None:
            constants[f"FUNCT_{key}"] = spec.funct
        for operand in spec.fields:
            constants[f"{key}_{operand.name.upper()}_LSB"] = operand.lsb
            constants[f"{key}_{operand.name.upper()}_WIDTH"] = operand.width
    for index, name in enumerate(DRAM_FORMATS):
        constants[f"FMT_{name.upper()}"] = index
    for index, name in enumerate(SYNC_UNITS):
        constants[f"UNIT_{name.upper()}"] = 1 << index
    for index, name in enumerate(SMOOTH_MODES):
        constants[f"SMOOTH_{name.upper()}"] = index
    return constants
