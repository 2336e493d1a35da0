"""The RTL's generated constants are current, and they are the ones the Python sources define."""

from __future__ import annotations

import re

import numpy as np

from npu.hw import numerics
from npu.isa import table
from npu.rtl import GENERATED_DIR, RTL_DIR
from npu.rtl import generate


def test_checked_in_generated_files_match_a_fresh_generation():
    stale = generate.stale_files()
    assert not stale, f"stale: {stale}; run `python -m npu.rtl.generate` and commit npu/rtl/generated/"


def test_generated_files_carry_the_do_not_edit_banner():
    for path in GENERATED_DIR.iterdir():
        assert "DO NOT EDIT" in path.read_text().splitlines()[0], path.name


def test_isa_header_defines_every_opcode_constant():
    header = generate.isa_header()
    for name, value in table.opcode_constants().items():
        assert f"`define DNPU_{name} {value}\n" in header


def test_seed_roms_hold_the_numerics_tables():
    for name, values in (("recip_seed_rom", numerics.RECIP_TABLE), ("rsqrt_seed_rom", numerics.RSQRT_TABLE)):
        text = (GENERATED_DIR / f"{name}.v").read_text()
        entries = [int(h, 16) for h in re.findall(r": data = 32'h([0-9A-F]{8});", text)]
        assert entries == values.view(np.uint32).tolist()


def test_hand_written_rtl_types_no_table_constant():
    """Opcodes and numerics constants reach the units only through the generated files."""
    constants = {int(numerics.EXP_LOG2E.view(np.uint32)), int(numerics.EXP_LN2_HI.view(np.uint32)),
                 int(numerics.EXP_LN2_LO.view(np.uint32))}
    constants |= {int(c.view(np.uint32)) for c in numerics.EXP_COEFFS[2:]}  # 1.0 is too common to police
    constants |= set(numerics.RECIP_TABLE.view(np.uint32).tolist()) | set(numerics.RSQRT_TABLE.view(np.uint32).tolist())
    for path in RTL_DIR.glob("*.v"):
        text = path.read_text().upper()
        for value in constants:
            assert f"{value:08X}" not in text, f"{path.name} types the constant {value:08X}"


def test_check_option_reports_a_stale_copy(tmp_path, capsys):
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "dnpu_isa.vh").write_text("`define DNPU_OP_HALT 1\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert "stale" in capsys.readouterr().out
