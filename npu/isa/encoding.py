"""Encode instruction records to 32-bit words and decode words back, driven by `table.py`.

Operand values are plain integers: register numbers, enum indices, immediates (signed where
the field is signed), bf16 bit patterns, wait unit masks.
"""

from __future__ import annotations

from dataclasses import dataclass

from npu.errors import UserError
from npu.isa.table import (
    BY_MNEMONIC,
    FUNCT_LSB,
    FUNCT_WIDTH,
    INSTRUCTIONS,
    OPCODE_LSB,
    OPCODE_WIDTH,
    InstructionSpec,
    Kind,
)


class EncodingError(UserError, ValueError):
    """An operand value does not fit its field, or a word is not a legal instruction."""


@dataclass(frozen=True)
class Instruction:
    """One decoded instruction: its table record and operand values by field name."""

    spec: InstructionSpec
    operands: dict[str, int]

    @property
    def mnemonic(self) -> str:
        return self.spec.mnemonic


def _build_decode_index() -> dict[int, dict[int | None, InstructionSpec]]:
    index: dict[int, dict[int | None, InstructionSpec]] = {}
    for spec in INSTRUCTIONS:
        index.setdefault(spec.opcode, {})[spec.funct] = spec
    return index


_DECODE_INDEX = _build_decode_index()


def encode(mnemonic: str, **operands: int) -> int:
    """Build the 32-bit word for `mnemonic` with the given operand values."""
    spec = BY_MNEMONIC.get(mnemonic)
    if spec is None:
        raise EncodingError(f"unknown mnemonic {mnemonic!r}")
    return encode_spec(spec, operands)


def encode_spec(spec: InstructionSpec, operands: dict[str, int]) -> int:
    names = [operand.name for operand in spec.fields]
    if sorted(operands) != sorted(names):
        raise EncodingError(f"{spec.mnemonic} takes operands {names}, got {sorted(operands)}")
    word = spec.fixed_bits
    for operand in spec.fields:
        value = operands[operand.name]
        low, high = operand.value_range()
        if not isinstance(value, int) or not low <= value <= high:
            raise EncodingError(
                f"{spec.mnemonic}: operand {operand.name}={value!r} outside {low}..{high}")
        word |= (value & ((1 << operand.width) - 1)) << operand.lsb
    return word


def decode(word: int) -> Instruction:
    """Split a word into its table record and operand values; illegal words raise."""
    word = int(word)
    if not 0 <= word < (1 << 32):
        raise EncodingError(f"instruction word {word:#x} is not 32 bits")
    opcode = (word >> OPCODE_LSB) & ((1 << OPCODE_WIDTH) - 1)
    candidates = _DECODE_INDEX.get(opcode)
    if candidates is None:
        raise EncodingError(f"illegal opcode {opcode} in word {word:#010x}")
    if None in candidates:
        spec = candidates[None]
    else:
        funct = (word >> FUNCT_LSB) & ((1 << FUNCT_WIDTH) - 1)
        spec = candidates.get(funct)
        if spec is None:
            raise EncodingError(f"illegal function code {funct} for opcode {opcode} in word {word:#010x}")
    if word & ~spec.used_mask:
        raise EncodingError(f"word {word:#010x} ({spec.mnemonic}) has bits set outside its fields")
    operands: dict[str, int] = {}
    for operand in spec.fields:
        raw = (word >> operand.lsb) & ((1 << operand.width) - 1)
        if operand.kind in (Kind.IMM_S, Kind.BRANCH) and raw >> (operand.width - 1):
            raw -= 1 << operand.width
        low, high = operand.value_range()
        if not low <= raw <= high:
            raise EncodingError(
                f"word {word:#010x} ({spec.mnemonic}): {operand.name}={raw} is not a legal value")
        operands[operand.name] = raw
    return Instruction(spec, operands)
