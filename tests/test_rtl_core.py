"""The RTL control core (npu/rtl/npu_core.v) and its generated decoder against the Python
definitions: the decoder against npu.isa.encoding.decode on random words of every mnemonic; the
core against the functional simulator (npu/sim/functional) on hand-written and random programs,
bit for bit (registers, INT / FP SRAM, the instructions issued to the queued units, the fault
class); lint and Yosys; cycles against the cycle simulator.

Simulator: Verilator by default, DNPU_RTL_SIM=icarus for Icarus Verilog.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from npu.isa import table
from npu.isa.encoding import EncodingError, decode, encode_spec
from npu.rtl import core, core_sim
from npu.rtl import sim as rtl_sim

SIMULATOR = rtl_sim.default_simulator()


def _require_simulator(simulator: str = SIMULATOR) -> None:
    reason = rtl_sim.missing_tool(simulator)
    if reason:
        pytest.skip(reason)


# ------------------------------------------------------------------------------------------------
# Decoder
# ------------------------------------------------------------------------------------------------


def random_operands(spec: table.InstructionSpec, rng: random.Random) -> dict[str, int]:
    """Legal random values for every operand field of `spec` (edges of each range included)."""
    values = {}
    for operand in spec.fields:
        low, high = operand.value_range()
        values[operand.name] = rng.choice((low, high, rng.randint(low, high), rng.randint(low, high)))
    return values


def decoder_words(per_mnemonic: int, illegal: int, seed: int = 16) -> np.ndarray:
    """`per_mnemonic` random legal words of every instruction, then `illegal` random words."""
    rng = random.Random(seed)
    words = [encode_spec(spec, random_operands(spec, rng)) for spec in table.INSTRUCTIONS
             for _ in range(per_mnemonic)]
    words += [rng.getrandbits(32) for _ in range(illegal)]
    return np.array(words, dtype=np.uint64)


def expected_decode(word: int) -> dict[str, int]:
    """What instruction_decoder must output for `word`, from the Python decoder."""
    try:
        instruction = decode(word)
    except EncodingError:
        return {"legal": 0}
    spec = instruction.spec
    return {"legal": 1, "mnemonic": table.INSTRUCTIONS.index(spec), "unit": core.UNIT_CODES[spec.unit],
            "dllm": int(spec.dllm), **core.slot_values(spec, instruction.operands)}


def test_decoder_matches_the_python_decoder_on_every_mnemonic():
    _require_simulator()
    words = decoder_words(per_mnemonic=24, illegal=2000)
    outputs = core_sim.decode_words(words, SIMULATOR)
    mismatches, legal_seen = [], set()
    for i, word in enumerate(words.tolist()):
        expected = expected_decode(word)
        got = {name: int(outputs[name][i]) for name in expected}
        if got != expected:
            mismatches.append((hex(word), expected, got))
        if expected["legal"]:
            legal_seen.add(expected["mnemonic"])
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
    assert legal_seen == set(range(len(table.INSTRUCTIONS)))  # every mnemonic was decoded
    illegal = sum(1 for w in words[-2000:].tolist() if not expected_decode(w)["legal"])
    assert illegal > 1000  # the random words exercise the illegal paths
