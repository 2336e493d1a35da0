"""The ISA table is consistent, and every instruction encodes and decodes losslessly."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu.isa import docs
from npu.isa.encoding import EncodingError, decode, encode, encode_spec
from npu.isa.table import BY_MNEMONIC, INSTRUCTIONS, OPCODE_LSB, opcode_constants, register_number
from npu.isa.table import NO_CLIP_STORE, STORE_SCALE_RULES, Kind, Unit


@st.composite
def instructions(draw):
    spec = draw(st.sampled_from(INSTRUCTIONS))
    operands = {}
    for operand in spec.fields:
        low, high = operand.value_range()
        operands[operand.name] = draw(st.integers(low, high))
    return spec, operands


@settings(max_examples=400, deadline=None, derandomize=True)
@given(instructions())
def test_every_instruction_round_trips_through_encode_and_decode(case):
    spec, operands = case
    word = encode_spec(spec, operands)
    assert 0 <= word < 1 << 32
    decoded = decode(word)
    assert decoded.spec is spec
    assert decoded.operands == operands


def test_opcodes_fit_six_bits_and_the_table_has_no_collisions():
    keys = {(spec.opcode, spec.funct) for spec in INSTRUCTIONS}
    assert len(keys) == len(INSTRUCTIONS)
    assert max(spec.opcode for spec in INSTRUCTIONS) < 64
    for spec in INSTRUCTIONS:
        for operand in spec.fields:
            assert operand.lsb + operand.width <= OPCODE_LSB, spec.mnemonic
        masks = [operand.mask for operand in spec.fields]
        combined = 0
        for mask in masks:
            assert combined & mask == 0, f"{spec.mnemonic}: overlapping fields"
            combined |= mask


def test_coverage_the_compiler_needs_is_present():
    required = {"dld.v", "dst.v", "dld.m", "dld.f", "dst.f", "dld.i", "dst.i", "mm", "mma", "mmt", "mwb",
                "vadd", "vsub", "vmul", "vmax", "vexp", "vrecip", "vrsqrt", "vsilu", "vbcast", "vadds", "vsum",
                "vmaxr", "vargmax", "vrank", "vtopk", "vthresh", "vsel", "vseli", "vrothalf", "vldi", "vsti",
                "vamax", "vsmscale", "dstkv.v", "dldkv.v", "loop", "loopi", "wait", "halt", "lui", "fcvt.f.i"}
    assert required <= set(BY_MNEMONIC)


def test_dllm_flag_marks_exactly_the_sampling_and_smoothing_instructions():
    dllm = {spec.mnemonic for spec in INSTRUCTIONS if spec.dllm}
    assert dllm == {"vargmax", "vrank", "vtopk", "vthresh", "vsel", "vseli", "vsmscale", "vamax",
                    "dldkv.v", "dldkv.m", "dstkv.v", "dstkvnc.v"}


def test_every_store_that_can_write_mx_has_an_ocp_and_a_no_clip_opcode():
    """The MX scale rule is chosen by the store's opcode (the 3-bit fmt field is full); the
    no-clip twin has the same operands and differs from its OCP store only in the rule."""
    mx_stores = {spec.mnemonic for spec in INSTRUCTIONS if spec.unit is Unit.DMA
                 and spec.mnemonic.startswith("dst") and not spec.mnemonic.endswith(".i")}
    assert set(STORE_SCALE_RULES) == mx_stores
    for ocp, twin in NO_CLIP_STORE.items():
        assert (STORE_SCALE_RULES[ocp], STORE_SCALE_RULES[twin]) == ("ocp", "no_clip")
        assert [f.name for f in BY_MNEMONIC[ocp].fields] == [f.name for f in BY_MNEMONIC[twin].fields]
        assert BY_MNEMONIC[ocp].dllm == BY_MNEMONIC[twin].dllm


def test_opcode_constants_expose_opcodes_functs_and_field_positions():
    constants = opcode_constants()
    assert constants["OP_ADD"] == BY_MNEMONIC["add"].opcode
    assert constants["FUNCT_VSUB"] == BY_MNEMONIC["vsub"].funct
    assert constants["OP_DLD_V"] == BY_MNEMONIC["dld.v"].opcode
    assert constants["ADDI_IMM_WIDTH"] == 18
    assert constants["FMT_MXINT4"] == 4


REGISTER_ROLES = [
    # mnemonic, registers read at issue, registers written, of those accumulated by the unit
    ("add", ("rs1", "rs2"), ("rd",), ()),
    ("sw", ("rs", "base"), (), ()),
    ("flw", ("base",), ("fd",), ()),
    ("fcvt.i.f", ("fs",), ("rd",), ()),
    ("amac", ("as", "rs1", "rs2"), ("ad",), ()),
    ("beq", ("rs1", "rs2"), (), ()),
    ("dld.v", ("dram", "sram", "rows", "cols", "dstride", "sstride"), (), ()),
    ("mm", ("act", "stride", "w"), (), ()),
    ("vadd", ("vd", "vs1", "vs2"), (), ()),       # vd holds an address: read, the row is written
    ("vsum", ("vs",), ("fd",), ("fd",)),           # fd <- fd + sum(vs), chained in the vector unit
    ("vargmax", ("vs", "base"), ("fmax", "ridx"), ("fmax", "ridx")),
]


@pytest.mark.parametrize("mnemonic, reads, writes, accumulates", REGISTER_ROLES, ids=[r[0] for r in REGISTER_ROLES])
def test_register_read_and_write_sets(mnemonic, reads, writes, accumulates):
    spec = BY_MNEMONIC[mnemonic]
    assert (spec.reads, spec.writes, spec.accumulates) == (reads, writes, accumulates)


def test_register_numbers_skip_r0_and_number_the_three_files_apart():
    spec = BY_MNEMONIC["vargmax"]
    operands = {"fmax": 3, "ridx": 0, "vs": 5, "base": 7}
    assert spec.registers_read(operands) == (5, 7)
    assert spec.registers_written(operands) == (register_number(Kind.FP_REG, 3),) == (19,)
    assert register_number(Kind.ADDR_REG, 7) == 31


def test_decoder_rejects_unknown_opcode_stray_bits_and_bad_function_codes():
    unused_opcode = next(op for op in range(64) if op not in {s.opcode for s in INSTRUCTIONS})
    with pytest.raises(EncodingError, match="illegal opcode"):
        decode(unused_opcode << 26)
    with pytest.raises(EncodingError, match="outside its fields"):
        decode(encode("halt") | 1)
    with pytest.raises(EncodingError, match="function code"):
        decode((BY_MNEMONIC["add"].opcode << 26) | 0xF)
    smooth = BY_MNEMONIC["vsmscale"]
    mode = smooth.field("mode")
    with pytest.raises(EncodingError, match="not a legal value"):
        decode(smooth.fixed_bits | (7 << mode.lsb))


def test_encoder_rejects_out_of_range_and_missing_operands():
    with pytest.raises(EncodingError, match="outside"):
        encode("addi", rd=1, rs1=2, imm=1 << 17)
    with pytest.raises(EncodingError, match="takes operands"):
        encode("add", rd=1, rs1=2)
    with pytest.raises(EncodingError, match="unknown mnemonic"):
        encode("fma", rd=1)


def test_generated_isa_document_is_up_to_date():
    assert docs.main(["--check"]) == 0
    text = docs.render()
    for spec in INSTRUCTIONS:
        assert f"`{spec.mnemonic}" in text
