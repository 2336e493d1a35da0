"""Per-operator and per-step cost of denoising steps on a dnpu machine, from the compiled program.

The compiler's emitters are the one description of how a step becomes instructions. This model
does not describe the lowering again: it is handed a `lower(config, model, shape) -> Program`
callable (npu.runtime.lowering.step_program compiles the step with npu.compiler; the simulators
never import the compiler, so the lowering comes in from a layer above both), and costs the
program with the static walk (npu.sim.analytical.static): the functional simulator executes the
scalar and control code, the data instructions go to the closed-form segment timing, and hardware
loops run only until their iterations repeat. That is the dynamic trace's figures (tests check
them against `estimate_program`) at a cost of seconds for an LLaDA-8B step instead of a trace of
13 M instructions.

Operators are the program's `op_<name>` regions (npu.isa.regions): cycles, DRAM bytes, energy
actions and the limiting resource are summed per region (a segment belongs to the region of the
`wait` that closes it). The region names are the step operators' names
(npu.sim.analytical.operators.step_operators), which give each its kind. The compiler fuses some
operators into one region: K and V cache writes are one loop (`attn.kv_cache_write`), SiLU and
the gating multiply one pass (`mlp.silu`), the preamble loading the RoPE rows stands for the
RoPE table (`rope_cos_sin`), and the sampling pass (`x0`) runs as the LM head's per-tile
epilogue. FLOPs are 2 x the MACs the matrix unit executes in the region (padding included, as the
machine runs it).
"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
from dataclasses import dataclass, field

from npu.hw.config import NPUConfig
from npu.hw.technology import EnergyTable, LatencyParameters
from npu.isa.assembler import Program
from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import OperatorCost, StepCost, roofline_bound
from npu.sim.analytical.operators import StepShape, step_operators
from npu.sim.analytical.program import DEFAULT_REGION, operator_regions
from npu.sim.analytical.segments import SegmentClock, SegmentTotals
from npu.sim.analytical.static import static_segments
from npu.sim.cost.energy import energy_report

# What the compiled step's program is: `lower(config, model, shape)`. It raises ValueError (the
# compiler's CompileError) for a step the machine cannot run, e.g. activations that do not fit.
Lowering = Callable[[NPUConfig, ModelConfig, StepShape], Program]

SAMPLING_REGIONS = ("x0", "committed")  # the sampling pass and the commit: the "sampling" phase
_FUSED_KINDS = {"rope_cos_sin": "preamble", "x0": "sampling"}  # regions whose kind differs from the IR op


@dataclass(frozen=True)
class NpuStepModel:
    """Per-operator and per-step costs of denoising steps on one dnpu machine (module docstring)."""

    config: NPUConfig
    lower: Lowering
    params: LatencyParameters | None = None  # None: the technology of `config`
    energy: EnergyTable | None = None
    # program digest -> its totals: shapes the compiler lowers to the same program (a cache
    # refresh step and a step without cache over the same sequence) are walked once
    _known: dict[str, SegmentTotals] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def peak_flops(self) -> float:
        return self.config.peak_flops_per_s

    @property
    def peak_bandwidth(self) -> float:
        return self.config.peak_dram_bytes_per_s

    def program_totals(self, program: Program) -> SegmentTotals:
        """The program's cycles, actions and resources, in total and per region label."""
        digest = hashlib.sha256(program.words.tobytes() + repr(sorted(program.labels.items())).encode()).hexdigest()
        if digest not in self._known:
            self._known[digest] = SegmentClock(self.config).run(static_segments(program, self.config,
                                                                                params=self.params))
        return self._known[digest]

    def operator_costs(self, model: ModelConfig, shape: StepShape) -> list[OperatorCost]:
        """The cost of every operator region of the compiled step, in program order."""
        program = self.lower(self.config, model, shape)
        totals = self.program_totals(program)
        kinds = {op.name: op.kind for op in step_operators(model, shape)}
        names = [DEFAULT_REGION] + [name for _, name in operator_regions(program)]
        return [self._region_cost(totals, name, _region_kind(name, kinds))
                for name in dict.fromkeys(names) if name in totals.by_label]

    def _region_cost(self, totals: SegmentTotals, name: str, kind: str) -> OperatorCost:
        cycles = totals.by_label[name]
        actions = {key: value for key, value in totals.by_label_actions[name].items() if value}
        report = energy_report(actions, self.config, round(cycles), self.energy)
        bound = _npu_bound(totals.by_label_resources[name])
        return OperatorCost(
            name=name, kind=kind, seconds=cycles / self.config.clock_hz, flops=2.0 * actions.get("mac", 0.0),
            dram_bytes=actions.get("dram_read_bytes", 0.0) + actions.get("dram_write_bytes", 0.0),
            bound=bound, roofline=roofline_bound(bound),
            phase="sampling" if name in SAMPLING_REGIONS else "transformer", energy_j=report.total_pj * 1e-12)

    def step(self, model: ModelConfig, shape: StepShape) -> StepCost:
        return StepCost(self.name, shape, tuple(self.operator_costs(model, shape)), self.peak_flops,
                        self.peak_bandwidth)


def _region_kind(name: str, kinds: dict[str, str]) -> str:
    """An operator region's kind: the step operator's of that name, or the fused region's."""
    if name in _FUSED_KINDS:
        return _FUSED_KINDS[name]
    if name.endswith("kv_cache_write"):
        return "kv_write"  # also in cache mode "none", whose IR graph has no cache
    return kinds.get(name, "program")


def _npu_bound(resources) -> str:
    """The resource with the most cycles: frontend, vector, matrix, weight_load, dma_port or dram."""
    candidates = {name: resources.get(name, 0.0) for name in ("frontend", "vector", "matrix", "weight_load",
                                                             "dma_port", "dram")}
    return max(candidates, key=candidates.get)
