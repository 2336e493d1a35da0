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
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from npu.hw.config import NPUConfig, load_npu_config
from npu.isa import table
from npu.isa.assembler import Program, assemble, disassemble, disassemble_word
from npu.isa.encoding import EncodingError, decode, encode_spec
from npu.rtl import GENERATED_DIR, RTL_DIR, core, core_sim
from npu.rtl import sim as rtl_sim
from npu.rtl.core_microbenchmarks import MICROBENCHMARKS
from npu.rtl.core_sim import CoreRun
from npu.sim.cycle.simulator import CycleSimulator
from npu.sim.functional.handlers import HALT, InstructionFault
from npu.sim.functional.simulator import FunctionalSimulator
from rtl_helpers import ELABORATE, SYNTHESIZE, verilator_lint, yosys, yosys_binaries  # one recipe for all RTL

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
PROGRAM_WORDS = 4096      # program memory of the tests' core


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
    with np.errstate(all="ignore"):  # inf - inf and the like are data here, not errors
        return _reference_run(fsim, words, limit)


def _reference_run(fsim: FunctionalSimulator, words: np.ndarray, limit: int) -> ReferenceRun:
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
        if a != b:
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
    # each unit takes its instructions in program order; units interleave in time
    def unit_of(record: dict[str, int]) -> table.Unit:
        return decode(record["word"]).spec.unit
    for got, want in ((g, w) for unit in QUEUED_UNITS
                      for g, w in zip([r for r in rtl.issued if unit_of(r) is unit],
                                      [r for r in ref.issued if unit_of(r) is unit])):
        mismatch = {k: (got.get(k), v) for k, v in want.items()
                    if got.get(k) != v and not (k.startswith("fp") and _same_fp(got.get(k, 0), v))}
        if mismatch:
            out.append(f"issue record of pc {want['pc']}: (RTL, reference) {mismatch}")
            break
    return out


def compare_programs(programs: list[np.ndarray], config: NPUConfig, simulator: str = SIMULATOR,
                     **run_options) -> tuple[list[CoreRun], list[ReferenceRun]]:
    """Run every program on the RTL and the reference (memories carried over in both); fail with
    the first differing programs' disassembly."""
    rtl_runs = core_sim.run_programs(config, programs, simulator, program_words=PROGRAM_WORDS, **run_options)
    fsim = FunctionalSimulator(config, dram_size=64)
    ref_runs = [reference_run(fsim, program) for program in programs]
    failures = []
    for i, (rtl, ref) in enumerate(zip(rtl_runs, ref_runs)):
        diff = differences(rtl, ref)
        if diff:
            failures.append(f"program {i}: {diff[:6]}\n{disassemble(programs[i])}")
    assert not failures, f"{len(failures)} of {len(programs)} programs differ; first:\n" + "\n".join(failures[:2])
    return rtl_runs, ref_runs


# ------------------------------------------------------------------------------------------------
# Hand-written programs: every scalar and control instruction
# ------------------------------------------------------------------------------------------------

INT_EDGES = (0, 1, -1, 2, 7, 31, 32, 33, -32, 0x7FFFFFFF, -0x80000000, 0x12345678, -0x1234567, 65535, 65536)
FP32_EDGES = (0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x3FC00000, 0x7F800000, 0xFF800000, 0x7FC00000,
              0xFFC00001, 0x7F800001, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x4B000001,
              0x3F000000, 0x3EFFFFFF, 0xCF000000, 0x4F000000, 0xC2F6E979, 0x42B17218, 0x40490FDB, 0x33D6BF95)


def set_int(register: str, value: int) -> str:
    """Assembly putting the 32-bit `value` into `register` (lui + ori)."""
    value &= 0xFFFFFFFF
    return f"lui {register}, {value >> 16}\nori {register}, {register}, {value & 0xFFFF}\n"


def set_fp(register: str, bits: int, scratch: str = "r15") -> str:
    return set_int(scratch, bits) + f"fmv.f.i {register}, {scratch}\n"


def int_alu_program() -> str:
    """Every INT register-register and immediate instruction on edge values, results to INT SRAM."""
    text, slot = "", 0
    names = ("add", "sub", "mul", "and", "or", "xor", "sll", "srl", "sra", "slt", "sltu", "min", "max")
    pairs = [(a, b) for a in INT_EDGES[::2] for b in INT_EDGES[1::2]]
    for name in names:
        for a, b in pairs[:18]:
            text += set_int("r1", a) + set_int("r2", b) + f"{name} r3, r1, r2\nsw r3, {slot}(r0)\n"
            slot = (slot + 1) % 256
    for a in INT_EDGES:
        text += set_int("r1", a)
        for ins in ("addi r3, r1, -5", "addi r3, r1, 131071", "addi r3, r1, -131072", "andi r3, r1, 262143",
                    "andi r3, r1, 0x5555", "ori r3, r1, 0x2AAAA", "slti r3, r1, -1", "slti r3, r1, 3",
                    "slli r3, r1, 0", "slli r3, r1, 31", "srli r3, r1, 7", "srai r3, r1, 31", "srai r3, r1, 4",
                    "lui r3, 65535"):
            text += f"{ins}\nsw r3, {slot}(r0)\n"
            slot = (slot + 1) % 256
    # writes to r0 are dropped; r0 reads 0 everywhere
    text += "addi r0, r0, 5\nlui r0, 7\nadd r4, r0, r0\nlw r0, 1(r0)\nfcvt.i.f r0, f1\nsw r0, 255(r0)\nhalt\n"
    return text


def fp_binary_program(name: str) -> str:
    """`name` (fadd ... fmin, flt, fle, feq) on pairs of fp32 edge values; results to the FP or INT SRAM."""
    compare = name in ("flt", "fle", "feq")
    text, slot = "", 0
    values = FP32_EDGES[:16]
    for a in values:
        text += set_fp("f1", a)
        for b in values:
            text += set_fp("f2", b)
            text += f"{name} r3, f1, f2\nsw r3, {slot}(r0)\n" if compare else f"{name} f3, f1, f2\nfsw f3, {slot}(r0)\n"
            slot += 1
    return text + "halt\n"


def fp_unary_program() -> str:
    text, slot = "", 0
    for bits in FP32_EDGES:
        text += set_fp("f1", bits)
        for name in ("fmov", "fneg", "fabs", "fexp", "frecip", "frsqrt"):
            text += f"{name} f2, f1\nfsw f2, {slot}(r0)\n"
            slot += 1
        if not ((bits & 0x7F800000) == 0x7F800000 and bits & 0x7FFFFF):  # fcvt.i.f of NaN faults
            text += f"fcvt.i.f r2, f1\nsw r2, {slot}(r0)\n"
        text += f"fmv.i.f r3, f1\nsw r3, {slot + 1}(r0)\n"
    for value in INT_EDGES + (16777217, -16777219, 0x7FFFFFC0, 33554435):
        text += set_int("r1", value) + f"fcvt.f.i f3, r1\nfsw f3, {slot}(r0)\n"
        slot += 1
    for constant in ("1.0", "-inf", "inf", "0x7fc1", "-0.0", "0x0001", "0x8080", "3.140625", "0x7f7f"):
        text += f"flui f4, {constant}\nfsw f4, {slot}(r0)\n"
        slot += 1
    # fcvt.i.f rounding: halves to even, saturation
    for value in (0x3F000000, 0x3FC00000, 0x40200000, 0xBFC00000, 0x4EFFFFFF, 0x4F000000, 0xCF000001, 0x7F800000,
                  0xFF800000, 0x3F7FFFFF, 0x00000001, 0xBF000001):
        text += set_fp("f5", value) + f"fcvt.i.f r5, f5\nsw r5, {slot}(r0)\n"
        slot += 1
    return text + "halt\n"


def memory_and_address_program() -> str:
    return (set_int("r1", 250) + set_int("r2", -0x12345678) + set_int("r3", 0x7FFFFFFF) + """
        sw r2, 5(r1)          # word 255, the last
        lw r4, 5(r1)
        sw r3, -250(r1)       # word 0
        lw r5, 0(r0)
        flui f1, -2.5
        fsw f1, 255(r0)
        flw f2, 5(r1)
        fsw f2, 100(r0)
        flw f3, 100(r0)
        amov a1, r2           # zero-extended
        aadd a2, a1, r2       # + sign-extended
        amac a3, a2, r2, r3   # + signed product
        amac a4, a4, r2, r2
        aset a5, r2, r3
        aaddi a6, a5, -131072
        aaddi a7, a7, -1      # wraps to 2^64 - 1
        aadd a0, a7, r3
        halt
    """)


def control_program() -> str:
    """Branches taken and not taken in both directions, j, nested loops 4 deep (loop and loopi),
    a loop of count 0, loops sharing an end, a branch to a loop's end, wait, nop."""
    return """
        addi r1, r0, 3
        addi r2, r0, -2
        beq r1, r2, bad        # not taken
        bne r1, r1, bad        # not taken
        blt r1, r2, bad        # not taken (signed)
        bge r2, r1, bad        # not taken
        blt r2, r1, fwd1       # taken
        j bad
    fwd1:
        bge r1, r1, fwd2       # taken (equal)
        j bad
    fwd2:
        beq r0, r0, fwd3
        j bad
    fwd3:
        bne r1, r2, fwd4
    bad:
        addi r15, r0, 99
    fwd4:
        addi r5, r0, 3          # countdown loop with a backward branch
    back:
        addi r6, r6, 1
        addi r5, r5, -1
        bne r5, r0, back
        addi r7, r0, 2
        loop r7, L1end          # 4 deep: 2 x 3 x 2 x 2
        addi r8, r8, 1
        loopi 3, L2end
        addi r9, r9, 1
        loop r1, L3end
        nop
        loopi 2, L4end
        addi r10, r10, 1
        beq r0, r0, L4end       # a taken branch to the innermost loop's end
        addi r15, r0, 77        # skipped
    L4end:
        addi r11, r11, 1
        loopi 2, L3end          # shares its end with the enclosing loop
        addi r12, r12, 1
    L3end:
        nop
    L2end:
        addi r13, r13, 1
    L1end:
        loopi 0, skip           # count 0 skips the body
        addi r15, r0, 55
    skip:
        loop r0, skip2          # register count 0
        addi r15, r0, 56
    skip2:
        wait dma|matrix|vector
        wait vector
        j end
        addi r15, r0, 57
    end:
        halt
    """


def queue_program() -> str:
    """Queued instructions of every unit with register operands, and waits between them."""
    return set_int("r1", 64) + set_int("r2", 128) + set_int("r3", -1) + set_fp("f2", 0x3F800000) + """
        aset a3, r2, r1
        dld.v a3, r1, r2, r3, r1, r2, bf16
        vadd r1, r2, r3
        mm r1, r2, r3, 5
        wait dma
        vadds r1, r2, f2
        vargmax f2, r4, r1, r2
        dldkv.m a3, r1, r2, r3, r1, r2, mxint4
        mwb r2, r1, 1
        wait matrix|vector
        vmax r3, r2, r1
        vthresh r1, r2, r3, f2
        wait dma|matrix|vector
        halt
    """


HAND_WRITTEN = {
    "int_alu": int_alu_program,
    "fp_unary": fp_unary_program,
    **{f"fp_{name}": (lambda name=name: fp_binary_program(name))
       for name in ("fadd", "fsub", "fmul", "fmax", "fmin", "flt", "fle", "feq")},
    "memory_and_address": memory_and_address_program,
    "control": control_program,
    "queues": queue_program,
}


def test_hand_written_programs_match_the_functional_simulator():
    _require_simulator()
    config = reduced_config()
    programs = [assemble(make(), source=name).words for name, make in HAND_WRITTEN.items()]
    programs.append(programs[-1])  # the queue program again, with busy units and backpressure
    latencies = [0] * (len(programs) - 1) + [4]
    seeds = [0] * (len(programs) - 1) + [0xACE1]
    rtl, ref = compare_programs(programs, config, unit_latency=latencies, backpressure_seed=seeds)
    assert all(run.halted and run.fault == "none" for run in rtl)
    control = rtl[list(HAND_WRITTEN).index("control")]
    assert control.int_regs[15] == 0  # no skipped path ran
    assert control.int_regs[10] == 2 * 3 * 3 * 2 and control.int_regs[11] == 2 * 3 * 3 and control.int_regs[12] == 36
    assert len(rtl[-1].issued) == 9 and rtl[-1].cycles > rtl[-2].cycles  # waits stalled on busy units


def test_the_stepping_reference_equals_functional_simulator_run():
    """The reference driver (handler / advance_loops) gives run()'s final state on programs
    without queued instructions."""
    config = reduced_config()
    for name in ("int_alu", "fp_fmax", "memory_and_address", "control"):
        words = assemble(HAND_WRITTEN[name]()).words
        stepped = reference_run(FunctionalSimulator(config, dram_size=64), words)
        fsim = FunctionalSimulator(config, dram_size=64)
        fsim.load(words)
        stats = fsim.run()
        assert stats.instructions == stepped.executed
        assert [r & 0xFFFFFFFF for r in fsim.int_regs[:16]] == stepped.int_regs
        assert fsim.addr_regs == stepped.addr_regs
        assert np.array_equal(fsim.int_sram.data.view(np.uint32), stepped.int_sram)


# ------------------------------------------------------------------------------------------------
# Random programs
# ------------------------------------------------------------------------------------------------

INT_REGISTER_OPS = ("add", "sub", "mul", "and", "or", "xor", "sll", "srl", "sra", "slt", "sltu", "min", "max")
FP_BINARY_OPS = ("fadd", "fsub", "fmul", "fmax", "fmin")
FP_UNARY_OPS = ("fmov", "fneg", "fabs", "fexp", "frecip", "frsqrt")
FP_CONSTANTS = ("0.0", "-0.0", "1.0", "-1.5", "inf", "-inf", "0x7fc0", "0x0001", "0x7f7f", "100.0", "-88.5", "0.5")
QUEUED_SPECS = tuple(spec for spec in table.INSTRUCTIONS if spec.unit in QUEUED_UNITS)
# r12: memory base, r13: loop counts, r14: countdown of backward-branch loops; never random destinations
FREE_REGISTERS = tuple(f"r{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15))
SRAM_WORDS = SCALAR_SRAM_BYTES // 4
MAX_OFFSET = 40


class ProgramGenerator:
    """Random scalar / control programs that terminate and keep the ISA's rules: structured
    hardware loops (counts 0-3, nested at most MAX_LOOP_DEPTH deep), forward branches and jumps
    within the enclosing loop body, backward branches only as bounded countdown loops, scalar
    memory accesses inside the SRAMs, queued instructions with random operands and waits.
    With `faulty`, one fault the functional simulator rejects is planted somewhere."""

    def __init__(self, rng: random.Random, size: int = 40):
        self.rng, self.size = rng, size
        self.lines: list[str] = []
        self.labels = 0

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def generate(self, faulty: bool = False) -> np.ndarray:
        rng = self.rng
        for register in FREE_REGISTERS:
            value = rng.choice((rng.getrandbits(32), rng.randint(-40, 40), rng.choice(INT_EDGES)))
            self.lines.append(set_int(register, value).strip())
        self.lines.append(f"addi r12, r0, {rng.randint(MAX_OFFSET, SRAM_WORDS - 1 - MAX_OFFSET)}")
        for f in range(8):
            if rng.random() < 0.5:
                self.lines.append(f"flui f{f}, {rng.choice(FP_CONSTANTS)}")
            else:
                self.lines.append(f"fmv.f.i f{f}, {rng.choice(FREE_REGISTERS)}")
        self.block(depth=0, budget=self.size, backward_allowed=True)
        fault = self.plant_fault() if faulty else None
        self.lines.append("halt")
        if fault == "pc_overrun":
            self.lines.append("PAST_END:")  # names len(program): the jump runs past the end
        return assemble("\n".join(self.lines)).words

    def block(self, depth: int, budget: int, backward_allowed: bool) -> None:
        rng = self.rng
        emitted = 0
        while emitted < budget:
            choice = rng.random()
            if choice < 0.08 and depth < table.MAX_LOOP_DEPTH and budget - emitted > 3:
                inner = rng.randint(1, max(1, (budget - emitted) // 2))
                end = self.label()
                if rng.random() < 0.5:
                    self.lines.append(f"loopi {rng.choice((0, 1, 2, 3))}, {end}")
                else:
                    self.lines.append(f"addi r13, r0, {rng.choice((0, 1, 2, 3))}")
                    self.lines.append(f"loop r13, {end}")
                self.block(depth + 1, inner, backward_allowed)
                self.lines.append(f"{end}:")
                emitted += inner + 1
            elif choice < 0.14 and budget - emitted > 2:
                target = self.label()
                a, b = rng.choice(FREE_REGISTERS + ("r0",)), rng.choice(FREE_REGISTERS + ("r0",))
                if rng.random() < 0.2:
                    self.lines.append(f"j {target}")
                else:
                    self.lines.append(f"{rng.choice(('beq', 'bne', 'blt', 'bge'))} {a}, {b}, {target}")
                skipped = rng.randint(1, 3)
                self.block(depth, skipped, backward_allowed)
                self.lines.append(f"{target}:")
                emitted += skipped + 1
            elif choice < 0.17 and backward_allowed and budget - emitted > 3:
                top = self.label()
                self.lines.append(f"addi r14, r0, {rng.randint(1, 3)}")
                self.lines.append(f"{top}:")
                inner = rng.randint(1, 4)
                self.block(depth, inner, backward_allowed=False)
                self.lines.append("addi r14, r14, -1")
                self.lines.append(f"bne r14, r0, {top}")
                emitted += inner + 3
            else:
                self.lines.append(self.instruction())
                emitted += 1

    def instruction(self) -> str:
        rng = self.rng
        d, a, b = rng.choice(FREE_REGISTERS + ("r0",)), rng.choice(FREE_REGISTERS + ("r0",)), rng.choice(FREE_REGISTERS)
        fd, fa, fb = (f"f{rng.randint(0, 7)}" for _ in range(3))
        ad, as_ = f"a{rng.randint(0, 7)}", f"a{rng.randint(0, 7)}"
        kind = rng.random()
        if kind < 0.30:
            return f"{rng.choice(INT_REGISTER_OPS)} {d}, {a}, {b}"
        if kind < 0.45:
            return rng.choice((f"addi {d}, {a}, {rng.randint(-131072, 131071)}", f"andi {d}, {a}, {rng.getrandbits(18)}",
                               f"ori {d}, {a}, {rng.getrandbits(18)}", f"slti {d}, {a}, {rng.randint(-50, 50)}",
                               f"slli {d}, {a}, {rng.randint(0, 31)}", f"srli {d}, {a}, {rng.randint(0, 31)}",
                               f"srai {d}, {a}, {rng.randint(0, 31)}", f"lui {d}, {rng.getrandbits(16)}"))
        if kind < 0.55:
            o = self.offset()
            return rng.choice((f"lw {d}, {o}(r12)", f"sw {a}, {o}(r12)", f"flw {fd}, {o}(r12)", f"fsw {fa}, {o}(r12)"))
        if kind < 0.70:
            return f"{rng.choice(FP_BINARY_OPS)} {fd}, {fa}, {fb}"
        if kind < 0.78:
            return f"{rng.choice(FP_UNARY_OPS)} {fd}, {fa}"
        if kind < 0.85:
            return rng.choice((f"fcvt.f.i {fd}, {a}", f"fmv.f.i {fd}, {a}", self.float_bits(d, fa),
                               f"{rng.choice(('flt', 'fle', 'feq'))} {d}, {fa}, {fb}",
                               f"flui {fd}, {rng.choice(FP_CONSTANTS)}",
                               f"fcvt.i.f {d}, {fa}" if rng.random() < 0.3 else f"fabs {fd}, {fa}"))
        if kind < 0.92:
            return rng.choice((f"amov {ad}, {a}", f"aadd {ad}, {as_}, {a}", f"amac {ad}, {as_}, {a}, {b}",
                               f"aset {ad}, {a}, {b}", f"aaddi {ad}, {as_}, {rng.randint(-131072, 131071)}"))
        if kind < 0.97:
            spec = rng.choice(QUEUED_SPECS)
            return disassemble_word(encode_spec(spec, random_operands(spec, rng)))
        return rng.choice(("nop", f"wait {rng.choice(('dma', 'matrix', 'vector', 'dma|vector', 'dma|matrix|vector'))}"))

    def float_bits(self, d: str, fs: str) -> str:
        """fmv.i.f, skipped when fs holds a NaN: a NaN computed by fadd / fmul / ... carries the
        host CPU's payload in the functional simulator and the canonical NaN in the RTL (fp state
        is compared with NaN as a class; INT state is compared exactly, so no NaN bits enter it)."""
        skip = self.label()
        return f"feq {d}, {fs}, {fs}\nbeq {d}, r0, {skip}\nfmv.i.f {d}, {fs}\n{skip}:"

    def offset(self) -> int:
        """An offset keeping r12 + offset inside the SRAM (r12 is never written after the prologue)."""
        return self.rng.randint(-MAX_OFFSET, MAX_OFFSET)

    def plant_fault(self) -> str:
        """Insert one instruction sequence the machine rejects, at a random point of the program."""
        rng = self.rng
        fault = rng.choice(("lw_range", "fsw_range", "deep_loops", "negative_count", "pc_overrun"))
        at = rng.randint(len(FREE_REGISTERS) + 9, len(self.lines))
        while at < len(self.lines) and self.lines[at - 1].endswith(":"):
            at -= 1
        if fault == "lw_range":
            snippet = [f"lw r1, {rng.choice((SRAM_WORDS, -1, 100000))}(r0)"]
        elif fault == "fsw_range":
            snippet = [set_int("r15", rng.choice((SRAM_WORDS, -5, 0x7FFFFFFF))).strip(), "fsw f1, 1(r15)"]
        elif fault == "deep_loops":
            ends = [self.label() for _ in range(5)]
            snippet = [f"loopi 1, {end}" for end in ends] + ["nop"] + [f"{end}:" for end in reversed(ends)] + ["nop"]
        elif fault == "negative_count":
            end = self.label()
            snippet = ["addi r13, r0, -2", f"loop r13, {end}", "nop", f"{end}:", "nop"]
        else:
            snippet = ["j PAST_END"]
        self.lines[at:at] = snippet
        return fault


def random_programs(count: int, seed: int, size: int = 40) -> tuple[list[np.ndarray], list[bool]]:
    """`count` random programs; about one in eight carries a planted fault."""
    rng = random.Random(seed)
    programs, faulty = [], []
    for _ in range(count):
        plant = rng.random() < 0.125
        programs.append(ProgramGenerator(rng, size=rng.randint(size // 4, size)).generate(faulty=plant))
        faulty.append(plant)
    return programs, faulty


def _random_settings(count: int, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    latencies = [rng.choice((0, 0, 1, 3, 7)) for _ in range(count)]
    seeds = [rng.choice((0, 0, rng.randint(1, 0xFFFF))) for _ in range(count)]
    return latencies, seeds


def check_random_programs(count: int, seed: int, simulator: str = SIMULATOR) -> None:
    programs, faulty = random_programs(count, seed)
    latencies, seeds = _random_settings(count, seed)
    rtl, ref = compare_programs(programs, reduced_config(), simulator, unit_latency=latencies,
                                backpressure_seed=seeds)
    halted = sum(run.halted for run in rtl)
    faults = {run.fault for run in ref}
    # The generator's programs mostly halt; most planted faults are reached (one inside a skipped
    # loop body or branch is not) and then rejected by both in the same way.
    assert halted >= count // 2, f"only {halted} of {count} programs halted"
    reached = sum(ref_run.fault != "none" for ref_run, plant in zip(ref, faulty) if plant)
    assert reached >= sum(faulty) // 2, f"{reached} of {sum(faulty)} planted faults reached"
    assert len(faults - {"none"}) >= 2 or count < 50, faults


def test_random_programs_match_the_functional_simulator():
    """200 random scalar / control programs (with queued instructions, waits, busy units and
    backpressure, and planted faults), 0 mismatches."""
    _require_simulator()
    check_random_programs(200, seed=2026)


@pytest.mark.slow
def test_10000_random_programs_match_the_functional_simulator():
    _require_simulator()
    for batch in range(20):
        check_random_programs(500, seed=10_000 + batch)


# ------------------------------------------------------------------------------------------------
# Illegal programs: both reject them with the same fault class
# ------------------------------------------------------------------------------------------------


def _with_word(text: str, word: int) -> np.ndarray:
    """Assemble `text` and replace its first `nop` by the raw `word`."""
    program = assemble(text)
    words = program.words.copy()
    words[list(words).index(table.BY_MNEMONIC["nop"].fixed_bits)] = word
    return words


ILLEGAL_PROGRAMS = {
    "illegal_instruction": [
        _with_word("addi r1, r0, 1\nnop\nhalt", 0xFC000000),                        # opcode 63
        _with_word("nop\nhalt", (10 << 26) | 13),                                   # funct 13 of the ALU group
        _with_word("nop\nhalt", table.BY_MNEMONIC["nop"].fixed_bits | 1),             # a bit outside the fields
        _with_word("nop\nhalt", encode_spec(table.BY_MNEMONIC["vsmscale"], {"vd": 1, "vs": 2, "mode": 0}) | (7 << 15)),
    ],
    "loop_depth": [assemble("""
        loopi 2, e1
        loopi 2, e2
        loopi 2, e3
        loopi 2, e4
        loopi 2, e5
        nop
    e5: nop
    e4: nop
    e3: nop
    e2: nop
    e1: halt""").words],
    "int_sram_range": [assemble(f"lw r1, {SRAM_WORDS}(r0)\nhalt").words,
                       assemble("addi r2, r0, 3\nlw r1, -4(r2)\nhalt").words,
                       assemble("lui r2, 32767\nsw r2, 5000(r2)\nhalt").words],
    "fp_sram_range": [assemble(f"flw f1, {SRAM_WORDS + 7}(r0)\nhalt").words,
                      assemble("addi r3, r0, -1\nfsw f1, 0(r3)\nhalt").words],
    "loop_count": [assemble("addi r1, r0, -1\nloop r1, e\nnop\ne: halt").words],
    "loop_body": [assemble("loopi 2, 5\nhalt").words,                                 # past the program end
                  assemble("loopi 2, e1\nloopi 2, e2\nnop\ne1: nop\ne2: halt").words],  # not nested
    "branch_target": [assemble("j 5\nhalt").words, assemble("addi r1, r0, 1\nbne r1, r0, -3\nhalt").words,
                      assemble("loopi 2, e\nj out\ne: nop\nout: halt").words],          # leaves the loop body
    "pc_overrun": [assemble("addi r1, r0, 1").words, assemble("j end\nhalt\nend:").words],
    "fcvt_nan": [assemble("flui f1, 0x7fc0\nfcvt.i.f r1, f1\nhalt").words],
}


def test_illegal_programs_are_rejected_by_both_with_the_same_fault():
    _require_simulator()
    programs = [words for words_list in ILLEGAL_PROGRAMS.values() for words in words_list]
    expected = [fault for fault, words_list in ILLEGAL_PROGRAMS.items() for _ in words_list]
    rtl, ref = compare_programs(programs, reduced_config())
    assert [run.fault for run in ref] == expected
    assert [run.fault for run in rtl] == expected
    assert all(not run.halted for run in rtl)


def test_dllm_instructions_fault_on_a_machine_without_them():
    _require_simulator()
    config = reduced_config("ar-npu")
    assert not config.dllm_instructions
    programs = [assemble("addi r1, r0, 1\nvtopk r1, r2, r3, r4\nhalt").words,
                assemble("vadd r1, r2, r3\nhalt").words]  # not a dLLM instruction: issues
    rtl, ref = compare_programs(programs, config)
    assert [run.fault for run in rtl] == ["dllm_instruction", "none"]


# ------------------------------------------------------------------------------------------------
# Cycles against the cycle simulator
# ------------------------------------------------------------------------------------------------


def cycle_comparison(simulator: str = SIMULATOR) -> list[dict[str, int | str]]:
    """Per microbenchmark: instructions, RTL cycles, cycle-simulator cycles and its front-end stalls."""
    config = reduced_config()
    programs = [assemble(text).words for text in MICROBENCHMARKS.values()]
    rtl = core_sim.run_programs(config, programs, simulator, program_words=PROGRAM_WORDS)
    rows = []
    for name, words, run in zip(MICROBENCHMARKS, programs, rtl):
        cycle_sim = CycleSimulator(config, dram="bandwidth", dram_size=64)
        cycle_sim.load(Program(words))
        stats = cycle_sim.run()
        stalls = stats.units["frontend"].stalls
        rows.append({"benchmark": name, "instructions": stats.instructions, "rtl_cycles": run.cycles,
                     "cycle_sim_cycles": stats.cycles, "dependency_stalls": stalls.get("dependency", 0),
                     "branch_stalls": stalls.get("branch", 0), "rtl_retired": run.retired})
    return rows


def test_cycles_against_the_cycle_simulator_differ_only_by_its_front_end_stalls():
    """The RTL issues one instruction per cycle (a loop's back edge is free, a taken branch costs
    no bubble, every scalar result is written in its issue cycle). The cycle simulator's front end
    dispatches one per cycle too, plus a taken-branch bubble and register-scoreboard stalls from the
    latency table (lw 2, fadd 2, compare 2, frecip 2, ...): the difference is exactly those."""
    _require_simulator()
    for row in cycle_comparison():
        assert row["rtl_retired"] == row["instructions"], row
        assert row["rtl_cycles"] == row["instructions"], row
        assert row["cycle_sim_cycles"] - row["rtl_cycles"] == row["dependency_stalls"] + row["branch_stalls"], row


# ------------------------------------------------------------------------------------------------
# Lint and synthesis
# ------------------------------------------------------------------------------------------------

SMALL_CORE = {"PROGRAM_WORDS": 64, "INT_SRAM_WORDS": 64, "FP_SRAM_WORDS": 64}


@pytest.mark.parametrize("top", ["npu_core", "npu_core_harness", "instruction_decoder", "issue_queue"])
def test_core_is_verilator_lint_clean(top):
    result = verilator_lint(top, core_sim.core_sources() + [RTL_DIR / "npu_core_harness.v"])
    assert result.returncode == 0, result.stdout + result.stderr


def _yosys_core(binary: str, script: str, top: str = "npu_core") -> subprocess.CompletedProcess:
    """`script` on `top` among the core's sources, npu_core with the small memories of SMALL_CORE."""
    return yosys(binary, top, core_sim.core_sources(), script, SMALL_CORE if top == "npu_core" else None)


@pytest.mark.parametrize("top", ["npu_core", "issue_queue"])
def test_core_elaborates_in_yosys_without_latches(top):
    for binary in yosys_binaries():
        result = _yosys_core(binary, ELABORATE, top)
        assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
def test_core_synthesizes_in_yosys_without_latches():
    binary = yosys_binaries()[0]
    result = _yosys_core(binary, SYNTHESIZE)
    assert result.returncode == 0, f"{binary}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("define", ["DNPU_MUTANT_LOOP_COUNT", "DNPU_MUTANT_FMAX_ZERO"])
def test_a_mutated_core_is_caught(define):
    """The comparison has teeth: a core that runs a loop one iteration short, or returns +0 for
    fmax(+0, -0), differs from the functional simulator on the default programs."""
    _require_simulator()
    config = reduced_config()
    programs = [assemble(HAND_WRITTEN[name]()).words for name in ("control", "fp_fmax")]
    programs += random_programs(100, seed=2026)[0]
    rtl = core_sim.run_programs(config, programs, SIMULATOR, program_words=PROGRAM_WORDS, defines={define: 1})
    fsim = FunctionalSimulator(config, dram_size=64)
    ref = [reference_run(fsim, words) for words in programs]
    assert any(differences(r, f) for r, f in zip(rtl, ref))
