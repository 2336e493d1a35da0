"""Which SRAM rows and registers each vector instruction reads and writes, by the ISA table's
operand names: the operand plan that npu/rtl/generate.py turns into the generated
`vector_operand_plan` module, which the vector sequencer of npu_top (vector_sequencer.v) follows to
feed vector_unit (its operand table is in docs/rtl.md, "The vector unit").

Roles: three vector-SRAM rows (row_a, row_b, row_c), two FP / INT SRAM word rows (words_a,
words_b), the FP scalar (an FP register read at issue, or the register the unit accumulates into,
read when it executes: ISA rule 3), the INT scalar, and one destination (a vector row, an FP / INT
word row, or registers). The semantics are npu/sim/functional/vector.py's handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

from npu.isa import table
from npu.rtl.core import decoder_slots

ROW_A = ("vs1", "vs", "vcand", "vconf")
ROW_B = ("vs2", "vother")
ROW_C = ("vmask",)
WORDS_A = {"fsrc": "fp", "isrc": "int", "isrc1": "int", "vrank": "int"}
WORDS_B = {"isrc2": "int"}
SCALAR_I = ("rs", "base", "k")
DEST_WORDS = {"fdst": "fp", "idst": "int"}


@dataclass(frozen=True)
class VectorPlan:
    """Operand routing of one vector instruction (slot = position among its INT read slots)."""

    row_a: int | None
    row_b: int | None
    row_c: int | None
    words_a: tuple[int, str] | None     # (slot, "fp" | "int")
    words_b: tuple[int, str] | None
    scalar_f: str | None                # "slot" (fp read slot 0) or the accumulated field's name
    scalar_i: int | None
    dest_row: int | None                # the vector row written
    dest_words: tuple[int, str] | None  # the word row written
    fp_register: str | None             # field of the FP register written back (fd, fmax)
    int_register: str | None            # field of the INT register written back (ridx)


def plan(spec: table.InstructionSpec) -> VectorPlan:
    slots = decoder_slots(spec)
    reads = slots.int_reads
    where = {name: i for i, name in enumerate(reads)}

    def first(names) -> int | None:
        return next((where[name] for name in names if name in where), None)

    row_a, row_b = first(ROW_A), first(ROW_B)
    if "velig" in where:  # vtopk: the only row; vthresh: beside vconf
        if row_a is None:
            row_a = where["velig"]
        else:
            row_b = where["velig"]
    words_a = next(((where[n], kind) for n, kind in WORDS_A.items() if n in where), None)
    words_b = next(((where[n], kind) for n, kind in WORDS_B.items() if n in where), None)
    dest_words = next(((where[n], kind) for n, kind in DEST_WORDS.items() if n in where), None)
    dest_row = where.get("vd")
    if spec.mnemonic == "vrank":  # vd is the INT SRAM row of ranks, read and written
        words_a, dest_words, dest_row = (where["vd"], "int"), (where["vd"], "int"), None
    if dest_words is not None:
        dest_row = None
    accumulated = [name for name in spec.accumulates]
    fp_register = next((n for n in accumulated if n in ("fd", "fmax")), None)
    int_register = next((n for n in accumulated if n == "ridx"), None)
    scalar_f = fp_register if fp_register else ("slot" if slots.fp_reads else None)
    return VectorPlan(row_a, row_b, first(ROW_C), words_a, words_b, scalar_f, first(SCALAR_I), dest_row,
                      dest_words, fp_register, int_register)


def vector_plans() -> dict[str, VectorPlan]:
    return {spec.mnemonic: plan(spec) for spec in table.INSTRUCTIONS if spec.unit is table.Unit.VECTOR}
