"""Many generations decoded together: their step programs run in lock step on one
npu.sim.functional.lockstep.LockstepSimulator, one memory image (lane) per generation.

`generate_lockstep(stepper, prompts, plans, mask_id)` returns exactly what `generate(
SimulatorStepper(...), prompt, plan, mask_id)` returns for each prompt (tokens, every step's
window, commits and confidence bits, instruction counts), because both drive the same decoding
loop (npu.runtime.generate.decode_steps) and the lock-step simulator computes each lane as the
one-image simulator does. Each round runs every unfinished generation's next step: generations
that need the same step program (query and sample length, greedy or sampled) share one run;
with the threshold rule generations finish blocks after different numbers of steps, so a round
may run several programs, each on its own lanes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from npu.compiler.context import StepSpec
from npu.compiler.reference import ReferenceState, StepOutput, reference_steps
from npu.compiler.sampling import check_sampling, noise_image
from npu.hw.config import NPUConfig
from npu.models.decoding import DecodeConfig
from npu.models.transformer import ModelConfig
from npu.runtime.generate import (
    STEP_LIMIT_MARGIN,
    STEP_LIMIT_SLACK,
    Generation,
    GumbelNoise,
    ReferenceStepper,
    SimulatorStepper,
    StepRequest,
    _plan_noise,
    decode_steps,
    initial_tokens,
    step_instruction_limit,
)
from npu.sim.functional import SimulationError
from npu.sim.functional.lockstep import LockstepSimulator

__all__ = ["BatchedReferenceStepper", "LockstepStepper", "generate_lockstep"]


class LockstepStepper:
    """SimulatorStepper's DRAM image and step programs, one lane per generation."""

    def __init__(self, model: ModelConfig, weights: dict[str, np.ndarray], npu: NPUConfig, seq_len: int,
                 sampling: str, lanes: int, kv_quant=None):
        self.image = SimulatorStepper(model, weights, npu, seq_len, sampling, kv_quant)  # weights, RoPE, programs
        self.shapes, self.dram = self.image.shapes, self.image.dram
        self.sim = LockstepSimulator(npu, lanes, dram_size=self.dram.size)
        self.sim.dram.data[:] = self.image.sim.dram.data[None]
        self.loaded: tuple[int, int, bool] | None = None

    @property
    def lanes(self) -> int:
        return self.sim.lanes

    def start(self, lane: int, tokens: np.ndarray) -> None:
        """SimulatorStepper.start for one lane: K/V regions zeroed, the tokens written."""
        data = self.sim.dram.data
        for region in self.dram.regions.values():
            if region.name.startswith(("cache_", "kvq_")):
                data[lane, region.address:region.address + region.nbytes] = 0
        self.sim.dram.write(self.dram["tokens"].address, np.asarray(tokens, np.int32), "int32", lanes=lane)

    def step(self, lanes: Sequence[int], requests: Sequence[StepRequest]) -> list[tuple[StepOutput, int]]:
        """SimulatorStepper.step for every lane of `lanes` (one program: the requests share query
        length, sample length and temperature > 0), in one lock-step run."""
        first = requests[0]
        key = (first.query_length, first.sample_length, first.temperature > 0)
        if any((r.query_length, r.sample_length, r.temperature > 0) != key for r in requests):
            raise ValueError("LockstepStepper.step: the requests need different step programs; group them by program")
        compiled = self.image.program(*key)
        dram = self.sim.dram
        dram.write(self.dram["constants"].address, np.frombuffer(compiled.constants, np.uint8), lanes=list(lanes))
        for lane, request in zip(lanes, requests):
            noise = check_sampling(compiled.spec, request.temperature, request.noise)
            if noise is not None:
                dram.write(self.dram["noise"].address, noise_image(noise, self.shapes.vocab_pad), "fp32", lanes=lane)
            params = np.zeros(16, np.int32)
            params[:3] = (request.q0, request.s0, request.k)
            dram.write(self.dram["params"].address, params, "int32", lanes=lane)
            fparams = np.zeros(16, np.float32)
            fparams[:2] = (request.tau, request.temperature)
            dram.write(self.dram["fparams"].address, fparams, "fp32", lanes=lane)
        if self.loaded != key:
            self.sim.load(compiled.program)
            self.loaded = key
        limit = step_instruction_limit(compiled)
        try:
            stats = self.sim.run(lanes, max_instructions=limit)
        except SimulationError as err:
            what = (f"step program (query_length {key[0]}, sample_length {key[1]}"
                    f"{', temperature' if key[2] else ''}), {err.source}")
            message = err.message
            if message.startswith("instruction limit"):
                message = (f"no `halt` within {limit} instructions ({STEP_LIMIT_MARGIN}x the "
                           f"{compiled.stats.get('executed_total')} the compiler expects, plus {STEP_LIMIT_SLACK})")
            raise SimulationError(message, err.pc, err.instruction, err.source_line, source=what) from None
        n = key[1]
        outputs = []
        for lane, request, executed in zip(lanes, requests, stats.instructions):
            start = request.q0 + request.s0
            out = StepOutput(
                x0=dram.read(lane, self.dram["out.x0"].address, n, "int32"),
                confidence=dram.read(lane, self.dram["out.confidence"].address, n, "fp32"),
                committed=dram.read(lane, self.dram["out.committed"].address, n, "int32").astype(bool),
                tokens=dram.read(lane, self.dram["tokens"].address + 4 * start, n, "int32"),
            )
            outputs.append((out, int(executed)))
        return outputs


class BatchedReferenceStepper:
    """ReferenceStepper for many generations: the steps of a round that share a step spec are
    computed together by npu.compiler.reference.reference_steps (bit for bit each generation's
    reference_step), so generate_lockstep drives the NPU-arithmetic reference as it drives the
    lock-step simulator."""

    def __init__(self, model: ModelConfig, weights: dict[str, np.ndarray], npu: NPUConfig, seq_len: int,
                 sampling: str, lanes: int, kv_quant=None):
        self.image = ReferenceStepper(model, weights, npu, seq_len, sampling, kv_quant)  # shapes, weights
        self.shapes, self.lanes = self.image.shapes, lanes
        self.states: list[ReferenceState | None] = [None] * lanes

    def start(self, lane: int, tokens: np.ndarray) -> None:
        self.states[lane] = ReferenceState.start(self.shapes, tokens)

    def step(self, lanes: Sequence[int], requests: Sequence[StepRequest]) -> list[tuple[StepOutput, int]]:
        """ReferenceStepper.step for every lane of `lanes` (their requests share the step spec)."""
        first = requests[0]
        key = (first.query_length, first.sample_length, first.temperature > 0)
        if any((r.query_length, r.sample_length, r.temperature > 0) != key for r in requests):
            raise ValueError("BatchedReferenceStepper.step: the requests need different step specs; group them")
        spec = StepSpec(self.shapes, key[0], key[1], self.image.sampling, temperature=key[2])
        outputs = reference_steps(spec, self.image.weights, [self.states[lane] for lane in lanes],
                                  [r.q0 for r in requests], [r.s0 for r in requests], [r.k for r in requests],
                                  [r.tau for r in requests], [r.temperature for r in requests],
                                  [r.noise for r in requests])
        return [(out, 0) for out in outputs]


def generate_lockstep(stepper: LockstepStepper | BatchedReferenceStepper, prompts: Sequence[np.ndarray], plans: Sequence[DecodeConfig],
                      mask_id: int, tau_default: float = 0.9,
                      noises: Sequence[GumbelNoise | None] | None = None,
                      on_finished: Callable[[int], None] | None = None) -> list[Generation]:
    """`generate(SimulatorStepper, prompt, plan, mask_id)` for every (prompt, plan), lane i
    decoding prompt i; at most stepper.lanes prompts. A record's `seconds` is its shared run's
    wall time divided among the lanes of the run; `on_finished(i)` when generation i is done
    (a progress bar)."""
    if len(prompts) != len(plans):
        raise ValueError(f"generate_lockstep: {len(prompts)} prompts but {len(plans)} plans")
    if len(prompts) > stepper.lanes:
        raise ValueError(f"generate_lockstep: {len(prompts)} prompts for a stepper of {stepper.lanes} lanes")
    noises = [None] * len(prompts) if noises is None else list(noises)
    vocab = stepper.shapes.model.vocab_size
    results: list[Generation | None] = [None] * len(prompts)
    running: dict[int, tuple] = {}  # lane -> (decode_steps generator, its pending request)
    for lane, (prompt, plan, noise) in enumerate(zip(prompts, plans, noises)):
        noise = _plan_noise(stepper.image, plan, noise)
        tokens = initial_tokens(prompt, plan, mask_id)
        stepper.start(lane, tokens)
        steps = decode_steps(tokens, len(prompt), plan, mask_id, tau_default, noise, vocab)
        try:
            running[lane] = (steps, next(steps))
        except StopIteration as stop:
            results[lane] = stop.value
            if on_finished is not None:
                on_finished(lane)
    while running:
        by_program: dict[tuple, list[int]] = {}
        for lane, (_, request) in running.items():
            key = (request.query_length, request.sample_length, request.temperature > 0)
            by_program.setdefault(key, []).append(lane)
        for lanes in by_program.values():
            requests = [running[lane][1] for lane in lanes]
            began = time.perf_counter()
            try:
                outputs = stepper.step(lanes, requests)
            except SimulationError as err:
                running[lanes[0]][0].throw(err)
                raise  # decode_steps re-raises with the generation's block and step; not reached
            seconds = (time.perf_counter() - began) / len(lanes)
            for lane, (out, executed) in zip(lanes, outputs):
                steps = running[lane][0]
                try:
                    running[lane] = (steps, steps.send((out, executed, seconds)))
                except StopIteration as stop:
                    results[lane] = stop.value
                    del running[lane]
                    if on_finished is not None:
                        on_finished(lane)
    return results
