"""Assembly text <-> machine words: round trips, syntax conveniences, and located errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu.isa.assembler import AssemblyError, assemble, disassemble, format_instruction
from npu.isa.encoding import decode, encode, encode_spec
from npu.isa.table import INSTRUCTIONS


@st.composite
def words(draw):
    spec = draw(st.sampled_from(INSTRUCTIONS))
    operands = {f.name: draw(st.integers(*f.value_range())) for f in spec.fields}
    return encode_spec(spec, operands)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(words())
def test_disassembled_instruction_assembles_to_the_same_word(word):
    text = format_instruction(decode(word))
    assert int(assemble(text).words[0]) == word


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(words(), min_size=1, max_size=30))
def test_disassembled_program_with_generated_labels_reassembles_exactly(program):
    listing = disassemble(program)
    assert [int(w) for w in assemble(listing).words] == program


def test_labels_constants_comments_and_number_bases():
    program = assemble("""
        .const ROWS 0x10       # hex constant
        .const NEG -3
    top:  addi r1, r0, ROWS    ; semicolon comment
          addi r2, r0, NEG
          addi r3, r0, 0b101
          flui f1, -inf
          flui f2, 0x3f80
          lw   r4, -2(r5)
          wait dma|vector
          loop r1, done
          addi r2, r2, 1
    done: bne r1, r0, top
          halt
    """)
    expected = [
        encode("addi", rd=1, rs1=0, imm=16), encode("addi", rd=2, rs1=0, imm=-3),
        encode("addi", rd=3, rs1=0, imm=5), encode("flui", fd=1, value=0xFF80),
        encode("flui", fd=2, value=0x3F80), encode("lw", rd=4, base=5, offset=-2),
        encode("wait", units=0b101), encode("loop", count=1, end=1),
        encode("addi", rd=2, rs1=2, imm=1), encode("bne", rs1=1, rs2=0, target=-9), encode("halt"),
    ]
    assert [int(w) for w in program.words] == expected
    assert program.labels == {"top": 0, "done": 9}
    assert program.source_lines[0] == 4


def test_flui_accepts_bf16_decimal_values():
    assert int(assemble("flui f0, 1.0").words[0]) == encode("flui", fd=0, value=0x3F80)
    assert int(assemble("flui f0, 2").words[0]) == encode("flui", fd=0, value=0x4000)


@pytest.mark.parametrize("source, message, line, column", [
    ("nop\n  frob r1, r2", "unknown mnemonic 'frob'", 2, 3),
    ("add r1, r2", "expected 3 operand(s), got 2", 1, 5),
    ("add r1, r2, r3, r4", "expected 3 operand(s), got 4", 1, 5),
    ("add r1, f2, r3", "rs1 must be an int register", 1, 9),
    ("vadds r1, r2, r3", "fs must be an fp register", 1, 15),
    ("addi r1, r0, 131072", "out of range -131072..131071", 1, 14),
    ("lui r1, -1", "out of range 0..65535", 1, 9),
    ("j nowhere", "undefined label 'nowhere'", 1, 3),
    ("a:\nnop\na: halt", "duplicate label 'a' (first defined on line 1)", 3, 1),
    ("x: loop r1, x", "must come after at least one body instruction", 1, 13),
    ("dld.v a0, r1, r2, r3, r4, r5, fp64", "fmt must be one of", 1, 31),
    ("wait dram", "wait takes units", 1, 6),
    ("flui f0, 0.1", "not exactly a bf16 number", 1, 10),
    (".const 5 5", ".const takes a name", 1, 8),
    (".bogus 1", "unknown directive", 1, 1),
    ("addi r1, r0, UNDEFINED", "expected a number or constant", 1, 14),
    ("r3: nop", "register name", 1, 1),
])
def test_malformed_assembly_is_rejected_with_line_and_column(source, message, line, column):
    with pytest.raises(AssemblyError) as caught:
        assemble(source, source="kernel.s")
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (line, column)
    assert error.source_line == source.splitlines()[line - 1]
    assert str(error).startswith(f"kernel.s:{line}:{column}: ")
