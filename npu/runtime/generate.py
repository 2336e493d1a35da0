"""The generation driver and its two steppers (simulator and reference); see npu.runtime."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from npu.compiler.context import StepSpec
from npu.compiler.layout import Shapes, pack_weights, plan_dram, reference_weights, rope_tables
from npu.compiler.lower import CompiledStep, compile_spec
from npu.compiler.reference import ReferenceState, StepOutput, reference_step
from npu.compiler.sampling import add_noise_region, check_sampling, noise_image
from npu.hw.config import NPUConfig
from npu.models.decoding import DecodeConfig, StepRecord, gumbel_noise, query_range, transfer_schedule
from npu.models.transformer import ModelConfig
from npu.sim.functional import FunctionalSimulator, SimulationError


@dataclass
class Generation:
    tokens: np.ndarray
    records: list[StepRecord] = field(default_factory=list)


def generation_difference(got: Generation, want: Generation) -> str | None:
    """The first way two generations differ - step windows, commits, confidence bits, final
    tokens - or None when they are the same bit for bit (the compiler's correctness criterion)."""
    if len(got.records) != len(want.records):
        return f"{len(got.records)} steps against {len(want.records)}"
    for i, (a, b) in enumerate(zip(got.records, want.records)):
        if (a.query_positions, a.k) != (b.query_positions, b.k):
            return f"step {i}: window/k {(a.query_positions, a.k)} against {(b.query_positions, b.k)}"
        if not np.array_equal(a.committed, b.committed):
            return f"step {i}: committed {a.committed.astype(int).tolist()} against {b.committed.astype(int).tolist()}"
        if not np.array_equal(np.asarray(a.confidence, np.float32).view(np.uint32),
                              np.asarray(b.confidence, np.float32).view(np.uint32)):
            return f"step {i}: confidence {a.confidence.tolist()} against {b.confidence.tolist()}"
    if not np.array_equal(got.tokens, want.tokens):
        return f"tokens {got.tokens.tolist()} against {want.tokens.tolist()}"
    return None


class GumbelNoise:
    """Seeded Gumbel values g = -log(-log u) for the sampled rows of each step.

    Each draw is the torch.rand call that npu.models.decoding.add_gumbel_noise makes on one
    block's (1, block_length, vocab) logits with the same generator, so a generation sees the
    random stream of the PyTorch decoding with DecodeConfig.seed (same seed, same tokens).
    """

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, rows: int, vocab: int) -> np.ndarray:
        return gumbel_noise((1, rows, vocab), self.generator)[0]


@dataclass(frozen=True)
class StepRequest:
    """One denoising step a generation asks its stepper for (the arguments of `stepper.step`)."""

    query_length: int
    sample_length: int
    q0: int
    s0: int
    k: int
    tau: float
    temperature: float
    noise: np.ndarray | None


def _plan_noise(stepper, plan: DecodeConfig, noise: GumbelNoise | None) -> GumbelNoise | None:
    """Check `plan` against `stepper`; the noise source of a sampled plan (None when greedy)."""
    if plan.remasking != "low_confidence":
        raise ValueError(f"generate: the NPU commits by confidence; remasking={plan.remasking!r} is not lowered")
    if plan.temperature == 0 and noise is not None:
        raise ValueError("generate: noise given for a greedy plan (temperature 0)")
    if plan.temperature > 0 and noise is None:
        noise = GumbelNoise(plan.seed)
    if getattr(stepper, "shapes", None) is not None and stepper.shapes.kv_quant is not None and plan.cache != "dual":
        raise ValueError(f"generate: KV quantization {stepper.shapes.kv_quant.name} runs with the dual cache, "
                         f"not cache={plan.cache!r}")
    return noise


def initial_tokens(prompt: list[int] | np.ndarray, plan: DecodeConfig, mask_id: int) -> np.ndarray:
    """The prompt followed by plan.gen_length [MASK] tokens."""
    return np.array([int(t) for t in prompt] + [mask_id] * plan.gen_length, np.int32)


def decode_steps(tokens: np.ndarray, prompt_length: int, plan: DecodeConfig, mask_id: int, tau_default: float,
                 noise: GumbelNoise | None, vocab_size: int):
    """The block schedule of one generation as a Python generator: yields a StepRequest, is sent
    (StepOutput, instructions executed, seconds) for it, and returns the Generation.

    One copy of the decoding loop for both drivers: `generate` (one stepper call per step) and
    `generate_lockstep` (npu.runtime.lockstep: the steps of many generations in one simulator run).
    A SimulationError thrown in at the yield is re-raised naming the block and step.
    """
    seq_len = len(tokens)
    result = Generation(tokens)
    tau = tau_default if plan.threshold is None else plan.threshold
    for block in range(plan.num_blocks):
        start = prompt_length + block * plan.block_length
        end = start + plan.block_length
        masks = int((tokens[start:end] == mask_id).sum())
        schedule = transfer_schedule(torch.tensor([masks]), plan.steps_per_block)[0].tolist()
        step = 0
        while (tokens[start:end] == mask_id).any():
            if step >= plan.block_length:
                raise RuntimeError(f"block {block} still has masks after {step} steps (a step committed nothing)")
            query = query_range(plan.cache, step, start, end, seq_len)
            q0, length = query[0], query[1] - query[0]
            k = schedule[step] if plan.threshold is None else 0
            g = None if noise is None else noise.draw(plan.block_length, vocab_size)
            try:
                out, executed, seconds = yield StepRequest(length, plan.block_length, q0, start - q0, k, tau,
                                                           plan.temperature, g)
            except SimulationError as err:  # say where in the generation, before the pc
                where = f"generation block {block}, step {step}" + (f": {err.source}" if err.source else "")
                raise SimulationError(err.message, err.pc, err.instruction, err.source_line, source=where) from None
            tokens[start:end] = out.tokens
            result.records.append(StepRecord(block, step, query, committed=out.committed.copy(),
                                             confidence=out.confidence.copy(), k=k,
                                             seconds=seconds, instructions=executed))
            step += 1
    return result


def generate(stepper, prompt: list[int] | np.ndarray, plan: DecodeConfig, mask_id: int,
             tau_default: float = 0.9, noise: GumbelNoise | None = None) -> Generation:
    """Decode plan.gen_length tokens after `prompt` with `stepper` (see module docstring): the
    query windows (`query_range`) and fixed-k counts (`transfer_schedule`) of npu.models.decoding.

    With plan.temperature > 0 every step draws its block's noise from `noise` (default: a fresh
    GumbelNoise(plan.seed), so the generation is deterministic).
    """
    noise = _plan_noise(stepper, plan, noise)
    tokens = initial_tokens(prompt, plan, mask_id)
    stepper.start(tokens)
    vocab = stepper.shapes.model.vocab_size if noise is not None else 0
    steps = decode_steps(tokens, len(prompt), plan, mask_id, tau_default, noise, vocab)
    try:
        request = next(steps)
    except StopIteration as stop:  # nothing to decode
        return stop.value
    while True:
        began = time.perf_counter()
        try:
            out, executed = stepper.step(request.query_length, request.sample_length, request.q0, request.s0,
                                         request.k, request.tau, temperature=request.temperature,
                                         noise=request.noise)
        except SimulationError as err:
            steps.throw(err)
            raise  # decode_steps re-raises; not reached
        try:
            request = steps.send((out, executed, time.perf_counter() - began))
        except StopIteration as stop:
            return stop.value


class ReferenceStepper:
    """Steps computed by npu.compiler.reference (numpy, NPU arithmetic)."""

    def __init__(self, model: ModelConfig, weights: dict[str, np.ndarray], npu: NPUConfig, seq_len: int,
                 sampling: str, kv_quant=None):
        self.shapes = Shapes(model, npu, seq_len, kv_quant)  # kv_quant: npu.compiler.kv_quant.KVQuant
        self.shapes.check()  # CompileError for a model this machine cannot tile, as the compiler raises
        self.weights = reference_weights(pack_weights(weights, self.shapes), npu)
        self.sampling = sampling
        self.state: ReferenceState | None = None

    def start(self, tokens: np.ndarray) -> None:
        self.state = ReferenceState.start(self.shapes, tokens)

    def step(self, query_length: int, sample_length: int, q0: int, s0: int, k: int, tau: float,
             temperature: float = 0.0, noise: np.ndarray | None = None):
        spec = StepSpec(self.shapes, query_length, sample_length, self.sampling, temperature=temperature > 0)
        return reference_step(spec, self.weights, self.state, q0, s0, k, tau, temperature, noise), 0


# A compiled step may run at most this multiple of the executed-instruction count the compiler
# reports (its loops with run-time trip counts are counted at an expected value), plus a slack.
STEP_LIMIT_MARGIN = 4
STEP_LIMIT_SLACK = 100_000


def step_instruction_limit(compiled: CompiledStep) -> int:
    """The instruction budget of one run of a compiled step program (see STEP_LIMIT_MARGIN)."""
    expected = compiled.stats.get("executed_total")
    if not expected:
        return 1 << 31
    return int(STEP_LIMIT_MARGIN * expected) + STEP_LIMIT_SLACK


class SimulatorStepper:
    """Steps run as compiled programs on the functional simulator over one DRAM image."""

    def __init__(self, model: ModelConfig, weights: dict[str, np.ndarray], npu: NPUConfig, seq_len: int,
                 sampling: str, kv_quant=None):
        self.shapes = Shapes(model, npu, seq_len, kv_quant)  # kv_quant: npu.compiler.kv_quant.KVQuant
        self.shapes.check()
        self.sampling = sampling
        packed = pack_weights(weights, self.shapes)
        self.dram = plan_dram(self.shapes, {name: w.shape for name, w in packed.items()})
        add_noise_region(self.dram, self.shapes)  # last: greedy programs address nothing there
        self.sim = FunctionalSimulator(npu, dram_size=self.dram.size)
        for name, w in packed.items():
            region = self.dram[name]
            self.sim.dram.write(region.address, np.atleast_2d(w), region.fmt)
        cos, sin = rope_tables(self.shapes)
        self.sim.dram.write(self.dram["rope.cos"].address, cos, "bf16")
        self.sim.dram.write(self.dram["rope.sin"].address, sin, "bf16")
        self.programs: dict[tuple[int, int, bool], CompiledStep] = {}
        self.loaded: tuple[int, int, bool] | None = None

    def program(self, query_length: int, sample_length: int, temperature: bool = False) -> CompiledStep:
        key = (query_length, sample_length, temperature)
        if key not in self.programs:
            self.programs[key] = compile_spec(StepSpec(self.shapes, query_length, sample_length, self.sampling,
                                                       temperature=temperature))
        return self.programs[key]

    def start(self, tokens: np.ndarray) -> None:
        dram = self.sim.dram
        for region in self.dram.regions.values():
            if region.name.startswith(("cache_", "kvq_")):  # K/V caches (and BAOS's regions)
                dram.data[region.address:region.address + region.nbytes] = 0
        dram.write(self.dram["tokens"].address, np.asarray(tokens, np.int32), "int32")

    def tokens(self) -> np.ndarray:
        return self.sim.dram.read(self.dram["tokens"].address, self.shapes.seq_len, "int32")

    def step(self, query_length: int, sample_length: int, q0: int, s0: int, k: int, tau: float,
             temperature: float = 0.0, noise: np.ndarray | None = None):
        key = (query_length, sample_length, temperature > 0)
        compiled = self.program(*key)
        noise = check_sampling(compiled.spec, temperature, noise)
        dram = self.sim.dram
        if noise is not None:
            dram.write(self.dram["noise"].address, noise_image(noise, self.shapes.vocab_pad), "fp32")
        dram.write(self.dram["constants"].address, np.frombuffer(compiled.constants, np.uint8))
        params = np.zeros(16, np.int32)
        params[:3] = (q0, s0, k)
        dram.write(self.dram["params"].address, params, "int32")
        fparams = np.zeros(16, np.float32)
        fparams[:2] = (tau, temperature)
        dram.write(self.dram["fparams"].address, fparams, "fp32")
        if self.loaded != key:
            self.sim.load(compiled.program)
            self.loaded = key
        else:
            self.sim.reset()
        limit = step_instruction_limit(compiled)
        try:
            stats = self.sim.run(max_instructions=limit)
        except SimulationError as err:
            what = (f"step program (query_length {query_length}, sample_length {sample_length}"
                    f"{', temperature' if key[2] else ''}) at q0={q0}, s0={s0}, k={k}")
            message = err.message
            if message.startswith("instruction limit"):
                message = (f"no `halt` within {limit} instructions ({STEP_LIMIT_MARGIN}x the "
                           f"{compiled.stats.get('executed_total')} the compiler expects, plus {STEP_LIMIT_SLACK})")
            raise SimulationError(message, err.pc, err.instruction, err.source_line, source=what) from None
        n = sample_length
        start = q0 + s0
        out = StepOutput(
            x0=dram.read(self.dram["out.x0"].address, n, "int32"),
            confidence=dram.read(self.dram["out.confidence"].address, n, "fp32"),
            committed=dram.read(self.dram["out.committed"].address, n, "int32").astype(bool),
            tokens=dram.read(self.dram["tokens"].address + 4 * start, n, "int32"),
        )
        self.last_stats = stats
        return out, stats.instructions
