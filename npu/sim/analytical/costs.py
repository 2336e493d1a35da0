"""What every analytical machine model reports: the cost of each operator and of a whole step.

Both the dnpu model (npu.sim.analytical.npu_ops, on compiled programs) and the roofline device models of GPUs and
CPUs (npu.sim.analytical.devices) return these, so the generation model and the reports treat
all machines alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from npu.sim.analytical.operators import StepShape

# Limiting resources and whether they make an operator compute- or memory-bound.
_MEMORY_BOUNDS = ("dram", "dma_port", "weight_load", "memory")
_COMPUTE_BOUNDS = ("matrix", "vector", "frontend", "compute", "launch")


def roofline_bound(resource: str) -> str:
    """'memory' for DRAM and on-chip bandwidth limits, 'compute' for datapath and issue limits."""
    if resource in _MEMORY_BOUNDS:
        return "memory"
    if resource in _COMPUTE_BOUNDS:
        return "compute"
    raise ValueError(f"unknown limiting resource {resource!r}")


@dataclass(frozen=True)
class OperatorCost:
    """One operator on one machine."""

    name: str
    kind: str
    seconds: float
    flops: float            # matrix-unit / tensor-core work: 2 x MACs
    dram_bytes: float
    bound: str              # the limiting resource (see roofline_bound)
    roofline: str           # "compute" or "memory"
    phase: str = "transformer"   # or "sampling": argmax, softmax confidence, commit
    energy_j: float | None = None

    def renamed(self, name: str) -> "OperatorCost":
        """The same cost under another operator's name (layers of identical shape)."""
        return OperatorCost(name, self.kind, self.seconds, self.flops, self.dram_bytes, self.bound, self.roofline,
                            self.phase, self.energy_j)

    @property
    def arithmetic_intensity(self) -> float:
        """FLOP per DRAM byte."""
        return self.flops / self.dram_bytes if self.dram_bytes else float("inf")

    @property
    def attained_flops(self) -> float:
        return self.flops / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class StepCost:
    """All operators of one denoising step on one machine."""

    machine: str
    shape: StepShape
    operators: tuple[OperatorCost, ...]
    peak_flops: float
    peak_bandwidth: float   # bytes / s

    @property
    def seconds(self) -> float:
        return sum(op.seconds for op in self.operators)

    @property
    def sampling_seconds(self) -> float:
        return sum(op.seconds for op in self.operators if op.phase == "sampling")

    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.operators)

    @property
    def dram_bytes(self) -> float:
        return sum(op.dram_bytes for op in self.operators)

    @property
    def energy_j(self) -> float | None:
        energies = [op.energy_j for op in self.operators]
        return None if any(e is None for e in energies) else sum(energies)

    @property
    def roofline_seconds(self) -> float:
        """The step at the machine's roofline: max(matrix work at peak, DRAM traffic at peak)."""
        return max(self.flops / self.peak_flops, self.dram_bytes / self.peak_bandwidth)

    @property
    def utilisation(self) -> float:
        """Attained / peak matrix FLOP/s over the whole step."""
        return self.flops / (self.seconds * self.peak_flops) if self.seconds else 0.0

    def roofline_rows(self) -> list[dict]:
        """Per operator: time, intensity, attained vs peak FLOP/s, what bounds it."""
        ridge = self.peak_flops / self.peak_bandwidth
        rows = []
        for op in self.operators:
            rows.append({
                "operator": op.name, "kind": op.kind, "phase": op.phase, "seconds": op.seconds,
                "flops": op.flops, "dram_bytes": op.dram_bytes,
                "intensity_flop_per_byte": op.arithmetic_intensity, "ridge_flop_per_byte": ridge,
                "attained_flops": op.attained_flops, "fraction_of_peak": op.attained_flops / self.peak_flops,
                "bound": op.bound, "roofline": op.roofline,
            })
        return rows
