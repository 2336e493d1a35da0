"""npu_top (the RTL) against the functional simulator bit for bit, and against the cycle simulator
in cycles: programs, and the compiled step programs of a whole generation.

The RTL runs in one free-running simulation per batch (npu.rtl.top_sim.run_programs); the
functional simulator runs the same programs on the same DRAM images with its memories carried
over from program to program as the RTL's SRAMs are. `differences` names every register, SRAM
element and DRAM byte that differs (fp32 NaNs compared as a class: the RTL's arithmetic units
return the canonical NaN, numpy the host CPU's payload; docs/rtl.md).

Compiled steps (`record_generation`): a generation decoded by the runtime's SimulatorStepper on
the functional simulator, with each step's program and DRAM image captured just before it runs
and the whole machine state just after; the RTL then runs the captured steps in order, so each
step starts from the DRAM image the runtime handed on from the step before (the functional
simulator's, which the RTL's final DRAM of the previous step must equal byte for byte - checked).

The machine: a preset shrunk for simulation (`rtl_machine`, npu.rtl.top.reduced_config) - the
same RTL with fewer lanes and smaller SRAMs - with SRAMs large enough for a tiny model's steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npu.hw.config import NPUConfig
from npu.isa.assembler import Program
from npu.rtl.top import reduced_config
from npu.rtl.top_sim import DramTiming, TopRun, run_programs
from npu.sim.cost.dram import make_dram
from npu.sim.cycle import CycleSimulator
from npu.sim.functional.simulator import FunctionalSimulator, SimulationError

# Fault classes of the functional simulator's messages (npu/sim/functional/*.py) -> the RTL's
# error codes (npu.rtl.core.CORE_FAULTS).
FAULT_MESSAGES = (
    ("int32 is for INT SRAM only", "dma_format"), ("INT SRAM transfers use the int32", "dma_format"),
    ("negative shape", "dma_shape"), ("must hold a multiple of mx_block", "dma_shape"),
    ("DRAM address", "dma_alignment"), ("DRAM bytes [", "dram_range"), ("scale row vector SRAM", "dma_sram_range"),
    ("is not aligned to a row of VLEN", "vector_alignment"), ("vsti: NaN", "vector_fault"),
    ("vrothalf group", "vector_fault"), ("does not exist", "accumulator"),
    ("weight tile address", "matrix_alignment"), ("weight tile matrix SRAM", "matrix_range"),
    ("illegal instruction", "illegal_instruction"), ("is a dLLM instruction", "dllm_instruction"),
    ("ran past the end of the program", "pc_overrun"), ("branch target", "branch_target"),
    ("leaves the hardware loop body", "branch_target"), ("is negative", "loop_count"),
    ("loop body", "loop_body"), ("nested deeper than", "loop_depth"), ("INT SRAM word", "int_sram_range"),
    ("FP SRAM word", "fp_sram_range"), ("fcvt.i.f of NaN", "fcvt_nan"),
)


def fault_class(error: SimulationError) -> str:
    """The RTL fault class of a functional-simulator error (SRAM range messages by the unit)."""
    message = error.message
    for fragment, name in FAULT_MESSAGES:
        if fragment in message:
            return name
    if "outside [0," in message:
        mnemonic = error.instruction.split()[0]
        if mnemonic.startswith("d"):
            return "dma_sram_range"
        if mnemonic.startswith("m"):
            return "matrix_range"
        return "vector_range"
    raise ValueError(f"functional-simulator fault with no RTL class: {error}")


def dram_timing(config: NPUConfig) -> DramTiming:
    """The cycle simulator's bandwidth DRAM backend for this preset (what the RTL's DRAM model copies)."""
    dram = make_dram("bandwidth", config)
    return DramTiming(dram.bytes_per_cycle, dram.read_latency, dram.write_latency)


@dataclass
class Reference:
    """The functional simulator's final state, as bit patterns laid out as npu_top's dump."""

    fault: str
    int_regs: list[int]
    fp_regs: list[int]
    addr_regs: list[int]
    int_sram: np.ndarray
    fp_sram: np.ndarray
    vector_sram: np.ndarray
    matrix_sram: np.ndarray
    dram: np.ndarray


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def reference_state(fsim: FunctionalSimulator, fault: str = "none") -> Reference:
    """Snapshot of a functional simulator (copies: the simulator may run on)."""
    vector = _bits(fsim.vector_sram.data)
    vector_bf16 = fsim.config.formats.vector == "bf16"
    return Reference(
        fault, [v & 0xFFFFFFFF for v in fsim.int_regs[:16]], [int(_bits(f)) for f in fsim.fp_regs],
        list(fsim.addr_regs), fsim.int_sram.data.astype(np.int64).astype(np.uint32), _bits(fsim.fp_sram.data).copy(),
        (vector >> 16) if vector_bf16 else vector.copy(), (_bits(fsim.matrix_sram.data) >> 16).astype(np.uint16),
        fsim.dram.data.copy())


def reference_runs(config: NPUConfig, programs: list[np.ndarray], images: list[np.ndarray],
                   max_instructions: int = 200_000) -> list[Reference]:
    """The functional simulator on the same programs, memories carried over as in the RTL run."""
    fsim = FunctionalSimulator(config, dram_size=len(images[0]))
    runs = []
    for words, image in zip(programs, images):
        fsim.dram.data[:] = image
        fsim.load(np.asarray(words, dtype=np.uint32))
        fault = "none"
        try:
            fsim.run(max_instructions=max_instructions)
        except SimulationError as error:
            fault = fault_class(error)
        runs.append(reference_state(fsim, fault))
    return runs


def _is_nan32(bits: np.ndarray) -> np.ndarray:
    bits = np.asarray(bits, dtype=np.uint32)
    return ((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x007FFFFF) != 0)


def fp_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fp32 patterns that differ, NaNs as a class (the RTL's canonical NaN vs numpy's payloads)."""
    a, b = np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)
    return (a != b) & ~(_is_nan32(a) & _is_nan32(b))


def dram_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DRAM bytes that differ, except inside an aligned 4-byte word that is an fp32 NaN on both
    sides: an fp32 store of a kv-scaled value (x * hw_recip(s)) holds the host's NaN payload in
    the functional simulator and fp32_mul's canonical NaN in the RTL (as in tests/test_rtl_dma.py)."""
    differ = a != b
    words = np.flatnonzero(differ) // 4
    if len(words):
        wa = a[: len(a) // 4 * 4].view("<u4")[words]
        wb = b[: len(b) // 4 * 4].view("<u4")[words]
        both_nan = _is_nan32(wa) & _is_nan32(wb)
        for word in words[both_nan]:
            differ[4 * word:4 * word + 4] = False
    return differ


def differences(rtl: TopRun, ref: Reference, config: NPUConfig) -> list[str]:
    """What differs between the RTL's final state and the functional simulator's (empty: bit-exact).
    A faulting program is compared by fault class only: the RTL's units run behind the core, so
    instructions after the faulting one may have executed."""
    if rtl.timed_out:
        return [f"timed out after {rtl.cycles} cycles"]
    if rtl.fault != ref.fault:
        return [f"fault: RTL {rtl.fault}, functional simulator {ref.fault}"]
    if ref.fault != "none":
        return []
    found = []
    for name in ("int_regs", "addr_regs"):
        if getattr(rtl, name) != getattr(ref, name):
            found.append(f"{name}: RTL {getattr(rtl, name)} != {getattr(ref, name)}")
    if fp_differ(rtl.fp_regs, ref.fp_regs).any():
        found.append(f"fp_regs: RTL {[hex(x) for x in rtl.fp_regs]} != {[hex(x) for x in ref.fp_regs]}")
    memories = [("int_sram", rtl.int_sram != ref.int_sram), ("fp_sram", fp_differ(rtl.fp_sram, ref.fp_sram)),
                ("matrix_sram", rtl.matrix_sram != ref.matrix_sram), ("dram", dram_differ(rtl.dram, ref.dram))]
    if config.formats.vector == "bf16":
        memories.append(("vector_sram", rtl.vector_sram != ref.vector_sram))
    else:
        memories.append(("vector_sram", fp_differ(rtl.vector_sram, ref.vector_sram)))
    for name, differ in memories:
        where = np.flatnonzero(differ)
        if len(where):
            rtl_values, ref_values = getattr(rtl, name)[where[:4]], getattr(ref, name)[where[:4]]
            found.append(f"{name}: {len(where)} elements differ, first at {where[:4].tolist()}: "
                         f"RTL {[hex(int(v)) for v in rtl_values]} vs {[hex(int(v)) for v in ref_values]}")
    return found


# ---- compiled steps ---------------------------------------------------------------------------
# The program memory of the compiled-step runs (a step of one tiny-sort layer is about 2,000 words,
# of the trained four-layer tiny-sort 6,481): one size for every run of a stage, so that they share
# one build (as they share one DRAM size).
STEP_PROGRAM_WORDS = 8192
# ... and one DRAM size: every image is padded to it (a tiny model's DRAM map is under 1 MiB;
# the RTL's DMA checks addresses against it, and a compiled step never leaves its map).
STEP_DRAM_BYTES = 1 << 21


def rtl_machine(preset: str | NPUConfig) -> NPUConfig:
    """The machine compiled steps run on in the RTL: `preset` reduced to VLEN = MLEN = mx_block = 8,
    BLEN 2 (npu.rtl.top.reduced_config) with a 64 KiB vector SRAM, a 16 KiB matrix SRAM and 4 KiB
    INT / FP SRAMs - enough for the steps of a tiny model of d_model 128, d_ff 512 (two 512 x 8 bf16
    weight panels of down_proj fill the matrix SRAM) - and the preset's formats, DRAM and ISA."""
    return reduced_config(preset, vector_bytes=1 << 16, matrix_bytes=1 << 14, scalar_bytes=1 << 12)


@dataclass
class StepCase:
    """One step of a generation: what ran (program, DRAM before) and what it left (functional)."""

    name: str                 # e.g. "dual 3 (query 4, sample 4)"
    program: np.ndarray       # uint32 words
    image: np.ndarray         # DRAM before the step (uint8)
    reference: Reference      # the functional simulator's state after it
    instructions: int


class _Enough(Exception):
    """Raised inside the stepper once the steps asked for are captured: the rest is not decoded."""


def record_generation(model, weights: dict[str, np.ndarray], npu: NPUConfig, prompt, plan, label: str = "",
                      max_steps: int | None = None) -> tuple[list[StepCase], np.ndarray | None]:
    """Decode one generation with the runtime (compiled step programs on the functional simulator)
    and capture every step - or only the first `max_steps`; returns the steps and the generated
    tokens (None when the generation was cut short)."""
    from npu.runtime.generate import SimulatorStepper, generate

    seq_len = len(prompt) + plan.gen_length
    stepper = SimulatorStepper(model, weights, npu, seq_len, plan.sampling)
    fsim, cases = stepper.sim, []
    run = fsim.run

    def recording_run(max_instructions: int = 10_000_000):
        if max_steps is not None and len(cases) == max_steps:
            raise _Enough
        image, words = fsim.dram.data.copy(), fsim.program.words.copy()
        stats = run(max_instructions=max_instructions)
        spec = next(c.spec for c in stepper.programs.values() if np.array_equal(c.program, words))
        name = f"{label or plan.cache} {len(cases)} (query {spec.query_length}, sample {spec.sample_length})"
        cases.append(StepCase(name, words, image, reference_state(fsim), stats.instructions))
        return stats

    fsim.run = recording_run   # the stepper calls sim.run once per step
    try:
        generation = generate(stepper, prompt, plan, model.mask_token_id)
    except _Enough:
        return cases, None
    return cases, generation.tokens


def cycle_sim_cycles(config: NPUConfig, cases: list[StepCase]) -> list[int]:
    """The cycle simulator (bandwidth DRAM backend, data executed so that the step's branches go
    as on the RTL) on each step from its DRAM image, a fresh simulator per step (each step's count
    stands alone; a reused instance gave the same counts on the 16 microbenchmarks)."""
    cycles = []
    for case in cases:
        sim = CycleSimulator(config, dram="bandwidth", execute_data=True, dram_size=len(case.image))
        sim.load(Program(case.program))
        sim.functional.dram.data[:] = case.image
        cycles.append(sim.run(max_instructions=10 * case.instructions + 1000).cycles)
    return cycles


@dataclass
class StepResult:
    name: str
    bit_exact: bool
    differences: list[str]
    rtl_cycles: int
    cycle_sim_cycles: int
    instructions: int

    @property
    def error_pct(self) -> float:
        """(RTL - cycle simulator) / cycle simulator, in %."""
        return 100.0 * (self.rtl_cycles - self.cycle_sim_cycles) / self.cycle_sim_cycles

    def row(self) -> dict:
        return {"program": self.name, "bit_exact": self.bit_exact, "rtl_cycles": self.rtl_cycles,
                "cycle_sim_cycles": self.cycle_sim_cycles, "error_pct": round(self.error_pct, 2),
                "instructions": self.instructions, "first_difference": self.differences[0] if self.differences else ""}


def run_steps_on_rtl(config: NPUConfig, cases: list[StepCase], simulator: str | None = None, *,
                     program_words: int = 1024, dram_bytes: int | None = None, cycle_budget: int = 50_000_000,
                     progress: Callable[[str], None] | None = None) -> list[StepResult]:
    """The captured steps in order on npu_top (one simulation), each compared with the functional
    simulator's state after it; cycles beside the cycle simulator's. With `dram_bytes` the images are
    zero-padded to that size (so that runs of different models share a build): the RTL's DRAM must
    then equal the functional simulator's over the image and keep the padding untouched."""
    dram_bytes = dram_bytes or max(len(c.image) for c in cases)
    if any(len(c.image) > dram_bytes for c in cases):
        raise ValueError(f"a DRAM image of {max(len(c.image) for c in cases)} bytes does not fit dram_bytes = {dram_bytes}")
    images = [np.concatenate([c.image, np.zeros(dram_bytes - len(c.image), np.uint8)]) for c in cases]
    runs = run_programs(config, [c.program for c in cases], images, dram_timing(config),
                        simulator, program_words=program_words, max_cycles=cycle_budget, progress=progress)
    expected = cycle_sim_cycles(config, cases)
    results = []
    for case, rtl, cycles in zip(cases, runs, expected):
        size = len(case.image)
        found = differences(dataclasses.replace(rtl, dram=rtl.dram[:size]), case.reference, config)
        if rtl.dram[size:].any():
            found.append(f"dram: {int(np.count_nonzero(rtl.dram[size:]))} bytes written beyond the {size}-byte image")
        results.append(StepResult(case.name, not found, found, rtl.cycles, cycles, case.instructions))
    return results


def microbenchmark_cases(config: NPUConfig, dram_bytes: int = 1 << 14, seed: int = 3) -> list[StepCase]:
    """The microbenchmarks of npu/rtl/top_microbenchmarks.py (DMA shapes, vector and matrix classes,
    queue overlap; written for the reduced machine) over a random DRAM image of `dram_bytes`, with
    the functional simulator's final states (memories carried over from one to the next, as on the RTL)."""
    from npu.isa.assembler import assemble
    from npu.rtl.top_microbenchmarks import MICROBENCHMARKS

    image = np.random.default_rng(seed).integers(0, 256, dram_bytes, dtype=np.uint8)
    programs = [assemble(text).words for text in MICROBENCHMARKS.values()]
    references = reference_runs(config, programs, [image] * len(programs))
    fsim_counts = [_instructions(config, words, image) for words in programs]
    return [StepCase(name, words, image, reference, count)
            for name, words, reference, count in zip(MICROBENCHMARKS, programs, references, fsim_counts)]


def _instructions(config: NPUConfig, words: np.ndarray, image: np.ndarray) -> int:
    fsim = FunctionalSimulator(config, dram_size=len(image))
    fsim.dram.data[:] = image
    fsim.load(words)
    return fsim.run().instructions


def tiny_random_model(name: str = "tiny-sort", layers: int = 1, d_model: int | None = None,
                      d_ff: int | None = None, seed: int = 0):
    """Model preset `name`'s architecture with `layers` layers (and optionally narrower widths; the
    heads keep their head_dim) and random weights: the model config and its weights."""
    from npu.ir import random_weights
    from npu.models.presets import load_model_spec

    arch = load_model_spec(name).architecture
    d_model = d_model or arch.d_model
    heads = max(1, arch.n_heads * d_model // arch.d_model)
    config = dataclasses.replace(arch, name=f"{name}-{layers}l-{d_model}", n_layers=layers, d_model=d_model,
                                 d_ff=d_ff or arch.d_ff, n_heads=heads, n_kv_heads=heads)
    return config, random_weights(config, seed)


