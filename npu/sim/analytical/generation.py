"""A whole dLLM generation on one machine: the steps of a DecodeConfig, summed in closed form.

The answer is `gen_length` tokens after `prompt_length` prompt tokens, decoded in blocks of
`block_length` (npu.models.decoding). Per block, with L = prompt + gen and the block at
[start, start + block):
- cache "none": every step is a full pass (query = kv = L);
- "prefix" / "dual": the block's first step is a full pass that refreshes the whole cache, the
  others query the block and suffix (prefix: L - start positions) or the block alone (dual),
  attending over all L slots.
Steps per block: `steps / blocks` for the fixed top-k schedule; under the threshold rule the
count depends on the model's confidences, so it is an input (`threshold_steps_per_block`,
an average, fractional allowed). Every step samples the block's `block_length` positions.

Any machine model with `step(model, StepShape) -> StepCost`, `name` and `peak_flops` works:
npu.sim.analytical.npu_ops.NpuStepModel, npu.sim.analytical.devices.DeviceModel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from npu.models.decoding import DecodeConfig, steps_by_query_length
from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import StepCost
from npu.sim.analytical.operators import StepShape


class StepModel(Protocol):
    name: str

    @property
    def peak_flops(self) -> float: ...

    def step(self, model: ModelConfig, shape: StepShape) -> StepCost: ...


@dataclass(frozen=True)
class GenerationSetup:
    """What is generated: prompt length, decoding recipe, and the threshold rule's step count."""

    prompt_length: int
    decode: DecodeConfig
    threshold_steps_per_block: float | None = None

    def __post_init__(self) -> None:
        if self.prompt_length < 0:
            raise ValueError(f"prompt_length={self.prompt_length} must be >= 0")
        if self.decode.threshold is not None:
            steps = self.threshold_steps_per_block
            if steps is None or not 1 <= steps <= self.decode.block_length:
                raise ValueError("the threshold rule needs threshold_steps_per_block in [1, block_length], "
                                 f"got {steps!r}")

    @property
    def steps_per_block(self) -> float:
        if self.decode.threshold is None:
            return float(self.decode.steps_per_block)
        return float(self.threshold_steps_per_block)

    @property
    def sequence_length(self) -> int:
        return self.prompt_length + self.decode.gen_length


def step_schedule(setup: GenerationSetup) -> list[tuple[StepShape, float]]:
    """(shape, how many steps of it) for the whole generation, refresh steps first per block
    (the query windows of npu.models.decoding.steps_by_query_length)."""
    decode = setup.decode
    return [(StepShape(decode.cache, query, setup.sequence_length, decode.block_length, decode.sampling), count)
            for query, count in steps_by_query_length(decode, setup.prompt_length, setup.steps_per_block)]


@dataclass(frozen=True)
class GenerationReport:
    """Latency, throughput, utilisation, energy and traffic of one generation on one machine."""

    machine: str
    model: str
    cache: str
    rule: str
    prompt_length: int
    gen_length: int
    block_length: int
    steps: float
    refresh_steps: float
    seconds: float
    sampling_seconds: float
    flops: float
    dram_bytes: float
    energy_j: float | None
    peak_flops: float
    roofline_seconds: float    # the same steps at the machine's roofline (see StepCost)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / self.steps

    @property
    def seconds_per_token(self) -> float:
        return self.seconds / self.gen_length

    @property
    def tokens_per_s(self) -> float:
        return self.gen_length / self.seconds

    @property
    def utilisation(self) -> float:
        return self.flops / (self.seconds * self.peak_flops)

    @property
    def sampling_share(self) -> float:
        return self.sampling_seconds / self.seconds

    @property
    def energy_per_token_j(self) -> float | None:
        return None if self.energy_j is None else self.energy_j / self.gen_length

    @property
    def dram_bytes_per_token(self) -> float:
        return self.dram_bytes / self.gen_length

    def row(self) -> dict:
        """One TSV row (npu.io.write_tsv)."""
        return {
            "machine": self.machine, "model": self.model, "cache": self.cache, "rule": self.rule,
            "prompt_length": self.prompt_length, "gen_length": self.gen_length, "block_length": self.block_length,
            "steps": self.steps, "refresh_steps": self.refresh_steps,
            "latency_per_step_ms": 1e3 * self.seconds_per_step, "latency_per_token_ms": 1e3 * self.seconds_per_token,
            "tokens_per_s": self.tokens_per_s, "utilisation": self.utilisation,
            "energy_per_token_mj": float("nan") if self.energy_j is None else 1e3 * self.energy_per_token_j,
            "dram_mb_per_token": self.dram_bytes_per_token / 1e6, "sampling_share": self.sampling_share,
            "total_s": self.seconds, "roofline_tokens_per_s": self.gen_length / self.roofline_seconds,
        }


def generation_report(machine: StepModel, model: ModelConfig, setup: GenerationSetup,
                      cache: dict | None = None) -> GenerationReport:
    """Sum the step costs of a generation. `cache` (shape -> StepCost) may be shared between calls."""
    steps = step_schedule(setup)
    known = {} if cache is None else cache
    seconds = sampling = flops = dram = roofline = 0.0
    energy: float | None = 0.0
    total_steps = refresh = 0.0
    for shape, count in steps:
        key = (machine.name, model.name, shape)
        if key not in known:
            known[key] = machine.step(model, shape)
        cost: StepCost = known[key]
        seconds += count * cost.seconds
        sampling += count * cost.sampling_seconds
        flops += count * cost.flops
        dram += count * cost.dram_bytes
        roofline += count * cost.roofline_seconds
        step_energy = cost.energy_j
        energy = None if energy is None or step_energy is None else energy + count * step_energy
        total_steps += count
        if shape.query_length == shape.kv_length and setup.decode.cache != "none":
            refresh += count
    decode = setup.decode
    return GenerationReport(
        machine=machine.name, model=model.name, cache=decode.cache, rule=rule_name(decode),
        prompt_length=setup.prompt_length, gen_length=decode.gen_length, block_length=decode.block_length,
        steps=total_steps, refresh_steps=refresh, seconds=seconds, sampling_seconds=sampling, flops=flops,
        dram_bytes=dram, energy_j=energy, peak_flops=machine.peak_flops, roofline_seconds=roofline)


def rule_name(decode: DecodeConfig) -> str:
    """The commit rule as the tables name it: "topk" or "threshold<tau>"."""
    return "topk" if decode.threshold is None else f"threshold{decode.threshold:g}"


def unavailable_report(machine: StepModel, model: ModelConfig, setup: GenerationSetup) -> GenerationReport:
    """A generation the machine cannot run (a step does not compile for it): NaN figures."""
    nan, decode = float("nan"), setup.decode
    return GenerationReport(
        machine=machine.name, model=model.name, cache=decode.cache, rule=rule_name(decode),
        prompt_length=setup.prompt_length, gen_length=decode.gen_length, block_length=decode.block_length,
        steps=nan, refresh_steps=nan, seconds=nan, sampling_seconds=nan, flops=nan, dram_bytes=nan, energy_j=nan,
        peak_flops=machine.peak_flops, roofline_seconds=nan)
