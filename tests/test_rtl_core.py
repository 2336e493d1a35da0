"""The RTL control core (npu/rtl/npu_core.v) and its generated decoder against the Python
definitions: the decoder against npu.isa.encoding.decode on random words of every mnemonic; the
core against the functional simulator (npu/sim/functional) on hand-written and random programs,
bit for bit (registers, INT / FP SRAM, the instructions issued to the queued units, the fault
class); lint and Yosys; cycles against the cycle simulator.

Simulator: Verilator by default, DNPU_RTL_SIM=icarus for Icarus Verilog.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import numpy as np
import pytest

from npu.hw.config import NPUConfig, load_npu_config
from npu.isa import table
from npu.isa.assembler import assemble, disassemble
from npu.isa.encoding import EncodingError, decode, encode_spec
from npu.rtl import core, core_sim
from npu.rtl import sim as rtl_sim
from npu.rtl.core_sim import CoreRun
from npu.sim.functional.handlers import HALT, InstructionFault
from npu.sim.functional.simulator import FunctionalSimulator

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


# ------------------------------------------------------------------------------------------------
# Reference: the functional simulator, the testbench standing in for the queued units
# ------------------------------------------------------------------------------------------------

QUEUED_UNITS = (table.Unit.DMA, table.Unit.MATRIX, table.Unit.VECTOR)
SCALAR_SRAM_BYTES = 1024  # 256 words each: the tests' reduced dnpu-edge (the preset keeps 64 KiB)


def reduced_config(preset: str = "dnpu-edge") -> NPUConfig:
    """`preset` with small INT / FP SRAMs, so that the testbench reads them whole after each program."""
    config = load_npu_config(preset)
    return dataclasses.replace(
        config, int_sram=dataclasses.replace(config.int_sram, size_bytes=SCALAR_SRAM_BYTES),
        fp_sram=dataclasses.replace(config.fp_sram, size_bytes=SCALAR_SRAM_BYTES))


# Fault classes of the functional simulator's messages (npu/sim/functional/control.py, scalar.py,
# simulator.py): the RTL's error codes name the same classes (npu.rtl.core.CORE_FAULTS).
FAULT_MESSAGES = (
    ("illegal instruction", "illegal_instruction"), ("is a dLLM instruction", "dllm_instruction"),
    ("ran past the end of the program", "pc_overrun"), ("branch target", "branch_target"),
    ("leaves the hardware loop body", "branch_target"), ("is negative", "loop_count"),
    ("loop body", "loop_body"), ("nested deeper than", "loop_depth"), ("INT SRAM word", "int_sram_range"),
    ("FP SRAM word", "fp_sram_range"), ("fcvt.i.f of NaN", "fcvt_nan"),
)


def fault_class(message: str) -> str:
    for fragment, name in FAULT_MESSAGES:
        if fragment in message:
            return name
    raise AssertionError(f"functional-simulator fault with no RTL class: {message}")


@dataclass
class ReferenceRun:
    fault: str
    executed: int
    int_regs: list[int]
    fp_regs: list[int]
    addr_regs: list[int]
    int_sram: np.ndarray
    fp_sram: np.ndarray
    issued: list[dict[str, int]]


def _fp_bits(value) -> int:
    return int(np.array([value], dtype=np.float32).view(np.uint32)[0])


def reference_run(fsim: FunctionalSimulator, words: np.ndarray, limit: int = 1_000_000) -> ReferenceRun:
    """Run `words` on `fsim` through its stepping interface (handler(pc), advance_loops): scalar
    and control instructions execute exactly as in run(); a queued instruction is recorded with
    its register operands' values at issue and not executed, as the RTL testbench does."""
    fsim.load(np.asarray(words, dtype=np.uint32))
    decoded, config = fsim.decoded_instructions, fsim.config
    pc, executed, fault, issued = 0, 0, "none", []
    try:
        while True:
            instruction = decoded[pc] if pc < len(decoded) else None
            if (instruction is not None and instruction.spec.unit in QUEUED_UNITS
                    and not (instruction.spec.dllm and not config.dllm_instructions)):
                issued.append(_issue_record(fsim, pc, int(words[pc]), instruction))
                next_pc = pc + 1
            else:
                next_pc = fsim.handler(pc)()
            executed += 1
            if next_pc == HALT:
                break
            pc = fsim.advance_loops(next_pc)
            if executed >= limit:
                raise AssertionError(f"reference run did not halt in {limit} instructions")
    except InstructionFault as err:
        fault = fault_class(str(err))
    return ReferenceRun(fault, executed, [r & 0xFFFFFFFF for r in fsim.int_regs[:16]],
                        [_fp_bits(f) for f in fsim.fp_regs], list(fsim.addr_regs),
                        fsim.int_sram.data.view(np.uint32).copy(), fsim.fp_sram.data.view(np.uint32).copy(), issued)


def _issue_record(fsim: FunctionalSimulator, pc: int, word: int, instruction) -> dict[str, int]:
    """What the core must put on the issue port: operand values of the slots the instruction uses."""
    slots = core.decoder_slots(instruction.spec)
    ops = instruction.operands
    record = {"pc": pc, "word": word}
    for i, name in enumerate(slots.int_reads):
        record[f"int{i}"] = fsim.int_regs[ops[name]] & 0xFFFFFFFF
    for i, name in enumerate(slots.fp_reads):
        record[f"fp{i}"] = _fp_bits(fsim.fp_regs[ops[name]])
    if slots.addr_read:
        record["addr"] = fsim.addr_regs[ops[slots.addr_read]]
    return record


def _is_nan(bits: int) -> bool:
    return (bits & 0x7F800000) == 0x7F800000 and (bits & 0x007FFFFF) != 0


def _same_fp(a: int, b: int) -> bool:
    """fp32 bit patterns equal, NaNs as a class (numpy's NaN payloads are the host CPU's choice,
    the RTL units return the canonical NaN: tests/test_rtl_numerics.py compares them the same way)."""
    return a == b or (_is_nan(a) and _is_nan(b))


def differences(rtl: CoreRun, ref: ReferenceRun) -> list[str]:
    """Every way the RTL's final state differs from the reference (empty: bit-exact)."""
    out = []
    if rtl.timed_out:
        out.append("the RTL did not stop")
    if rtl.fault != ref.fault:
        out.append(f"fault: RTL {rtl.fault}, reference {ref.fault}")
    if ref.fault == "none" and not rtl.halted:
        out.append("the RTL did not halt")
    if rtl.retired != ref.executed:  # completed instructions; a faulting one is not counted
        out.append(f"instructions executed: RTL {rtl.retired}, reference {ref.executed}")
    for i, (a, b) in enumerate(zip(rtl.int_regs, ref.int_regs)):
        # a NaN moved to an INT register by fmv.i.f keeps its payload: compared as a class too
        if a != b and not (_is_nan(a) and _is_nan(b)):
            out.append(f"r{i}: RTL {a:#010x}, reference {b:#010x}")
    for i, (a, b) in enumerate(zip(rtl.fp_regs, ref.fp_regs)):
        if not _same_fp(a, b):
            out.append(f"f{i}: RTL {a:#010x}, reference {b:#010x}")
    for i, (a, b) in enumerate(zip(rtl.addr_regs, ref.addr_regs)):
        if a != b:
            out.append(f"a{i}: RTL {a:#x}, reference {b:#x}")
    bad = np.flatnonzero(rtl.int_sram != ref.int_sram)
    if len(bad):
        out.append(f"INT SRAM differs at words {bad[:8].tolist()}")
    bad = [i for i, (a, b) in enumerate(zip(rtl.fp_sram.tolist(), ref.fp_sram.tolist())) if not _same_fp(a, b)]
    if bad:
        out.append(f"FP SRAM differs at words {bad[:8]}")
    if len(rtl.issued) != len(ref.issued):
        out.append(f"issued {len(rtl.issued)} queued instructions, reference {len(ref.issued)}")
    for got, want in zip(rtl.issued, ref.issued):
        mismatch = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        if mismatch:
            out.append(f"issue record of pc {want['pc']}: (RTL, reference) {mismatch}")
            break
    return out


def compare_programs(programs: list[np.ndarray], config: NPUConfig, simulator: str = SIMULATOR,
                     **run_options) -> tuple[list[CoreRun], list[ReferenceRun]]:
    """Run every program on the RTL and the reference (memories carried over in both); fail with
    the first differing programs' disassembly."""
    rtl_runs = core_sim.run_programs(config, programs, simulator, **run_options)
    fsim = FunctionalSimulator(config, dram_size=64)
    ref_runs = [reference_run(fsim, program) for program in programs]
    failures = []
    for i, (rtl, ref) in enumerate(zip(rtl_runs, ref_runs)):
        diff = differences(rtl, ref)
        if diff:
            failures.append(f"program {i}: {diff[:6]}\n{disassemble(programs[i])}")
    assert not failures, f"{len(failures)} of {len(programs)} programs differ; first:\n" + "\n".join(failures[:2])
    return rtl_runs, ref_runs
