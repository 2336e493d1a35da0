"""What the RTL control core (npu/rtl/npu_core.v) is built from, defined once in Python.

* The decoder's *operand slots*: every instruction's register and immediate fields, wherever the
  ISA table packs them, leave the generated `instruction_decoder` in fixed slots: up to five INT
  registers read at issue, one INT register written, two FP registers read, one written, one
  address register read, one written, and two immediates (sign- or zero-extended to 32 bits as
  the field's kind says). `decoder_slots` says which field goes to which slot; the generator
  writes the Verilog from it and the tests compute the expected slot values from it and the
  Python decoder (npu.isa.encoding.decode).
* The core's *fault codes*: the sticky `error_code` output names the class of the fault the
  functional simulator (npu/sim/functional) raises for the same program.
* The Verilog parameters a preset gives the core (`core_parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass

from npu.hw.config import NPUConfig
from npu.isa.table import INSTRUCTIONS, InstructionSpec, Kind, Unit

# Slot counts of the decoder (the maxima over the ISA table; `decoder_slots` checks them).
INT_READ_SLOTS = 5    # DMA: sram, rows, cols, dstride, sstride/scale
FP_READ_SLOTS = 2
IMMEDIATE_SLOTS = 2   # loopi: count, end
MNEMONIC_BITS = max(1, (len(INSTRUCTIONS) - 1).bit_length())

# Execution unit codes of the decoder's `unit` output, in npu.isa.table.Unit order.
UNIT_CODES: dict[Unit, int] = {unit: code for code, unit in enumerate(Unit)}

# Sticky error codes of the core, one per class of fault the functional simulator raises for a
# scalar / control instruction (code 0: no fault). The core stops at the faulting instruction
# without changing any state, as the functional simulator does.
CORE_FAULTS: tuple[tuple[str, str], ...] = (
    ("none", "no fault"),
    ("illegal_instruction", "the word does not decode (unknown opcode or function code, bits set outside its fields, an enum code without a name)"),
    ("dllm_instruction", "a dLLM instruction on a machine without dLLM instructions"),
    ("pc_overrun", "ran past the end of the program without `halt`"),
    ("branch_target", "a taken branch / jump outside the program or out of the innermost loop body"),
    ("loop_count", "`loop` with a negative count register"),
    ("loop_body", "a loop body that is empty, runs past the program end or is not nested in its enclosing loop"),
    ("loop_depth", "hardware loops nested deeper than MAX_LOOP_DEPTH"),
    ("int_sram_range", "lw / sw address outside the INT SRAM"),
    ("fp_sram_range", "flw / fsw address outside the FP SRAM"),
    ("fcvt_nan", "fcvt.i.f of a NaN"),
    # raised by the queued units of npu_top (dma_engine, vector_sequencer, matrix_sequencer)
    ("dma_format", "a DMA with int32 to a floating-point SRAM, or another format to the INT SRAM"),
    ("dma_shape", "a DMA with negative rows / cols, or an MX row that is not whole blocks"),
    ("dma_alignment", "a DMA's DRAM address or stride not aligned to its format's element"),
    ("dram_range", "a DMA's DRAM bytes outside the DRAM"),
    ("dma_sram_range", "a DMA's SRAM elements (or its kv scale row) outside the SRAM"),
    ("vector_range", "a vector instruction's row outside its SRAM"),
    ("vector_alignment", "a vector instruction's vector SRAM row not aligned to VLEN"),
    ("vector_fault", "vsti of a NaN, vrothalf group outside [2, VLEN], vsmscale mode, or a bad vector word"),
    ("matrix_range", "a matrix instruction's activation rows or weight tile outside its SRAM"),
    ("matrix_alignment", "a weight tile address not aligned to a matrix SRAM row of MLEN"),
    ("accumulator", "a matrix instruction names an accumulator the machine lacks"),
)
FAULT_CODES: dict[str, int] = {name: code for code, (name, _) in enumerate(CORE_FAULTS)}
FAULT_BITS = max(1, (len(CORE_FAULTS) - 1).bit_length())


@dataclass(frozen=True)
class DecoderSlots:
    """Which operand field of one instruction goes to which decoder slot (field names; None: unused)."""

    int_reads: tuple[str, ...]
    int_write: str | None
    fp_reads: tuple[str, ...]
    fp_write: str | None
    addr_read: str | None
    addr_write: str | None
    immediates: tuple[str, ...]


def decoder_slots(spec: InstructionSpec) -> DecoderSlots:
    """The slot assignment of `spec`: registers by kind and role (ISA table `reads` / `writes`),
    in field order; every other field is an immediate."""
    def named(kind: Kind, role: tuple[str, ...]) -> list[str]:
        return [f.name for f in spec.fields if f.kind is kind and f.name in role]

    int_writes, fp_writes = named(Kind.INT_REG, spec.writes), named(Kind.FP_REG, spec.writes)
    addr_reads, addr_writes = named(Kind.ADDR_REG, spec.reads), named(Kind.ADDR_REG, spec.writes)
    registers = (Kind.INT_REG, Kind.FP_REG, Kind.ADDR_REG)
    slots = DecoderSlots(
        tuple(named(Kind.INT_REG, spec.reads)), (int_writes or [None])[0],
        tuple(named(Kind.FP_REG, spec.reads)), (fp_writes or [None])[0],
        (addr_reads or [None])[0], (addr_writes or [None])[0],
        tuple(f.name for f in spec.fields if f.kind not in registers))
    if (len(slots.int_reads) > INT_READ_SLOTS or len(slots.fp_reads) > FP_READ_SLOTS
            or len(slots.immediates) > IMMEDIATE_SLOTS or len(int_writes) > 1 or len(fp_writes) > 1
            or len(addr_reads) > 1 or len(addr_writes) > 1):
        raise ValueError(f"{spec.mnemonic}: its operands do not fit the decoder's slots ({slots})")
    return slots


def immediate_is_signed(kind: Kind) -> bool:
    """Signed immediates and branch offsets are sign-extended to 32 bits; the rest zero-extended."""
    return kind in (Kind.IMM_S, Kind.BRANCH)


def slot_values(spec: InstructionSpec, operands: dict[str, int]) -> dict[str, int]:
    """The decoder's outputs for one decoded instruction: slot name -> value (immediates as
    32-bit two's complement, unused slots 0). Output names are those of instruction_decoder."""
    slots = decoder_slots(spec)
    values = {f"int_read{i}": 0 for i in range(INT_READ_SLOTS)}
    values.update({f"fp_read{i}": 0 for i in range(FP_READ_SLOTS)})
    values.update({f"imm{i}": 0 for i in range(IMMEDIATE_SLOTS)})
    for i, name in enumerate(slots.int_reads):
        values[f"int_read{i}"] = operands[name]
    for i, name in enumerate(slots.fp_reads):
        values[f"fp_read{i}"] = operands[name]
    for i, name in enumerate(slots.immediates):
        values[f"imm{i}"] = operands[name] & 0xFFFFFFFF
    for slot, name in (("int_write", slots.int_write), ("fp_write", slots.fp_write),
                       ("addr_read", slots.addr_read), ("addr_write", slots.addr_write)):
        values[slot] = operands[name] if name else 0
        values[f"{slot}_valid"] = int(name is not None)
    return values


def core_parameters(config: NPUConfig, program_words: int = 1024) -> dict[str, int]:
    """Verilog parameters of npu_core for a preset: scalar SRAM depths in 32-bit words."""
    return {"PROGRAM_WORDS": program_words,
            "INT_SRAM_WORDS": config.int_sram.size_bytes // 4,
            "FP_SRAM_WORDS": config.fp_sram.size_bytes // 4,
            "DLLM_INSTRUCTIONS": int(config.dllm_instructions)}
