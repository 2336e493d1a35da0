"""Synthesis jobs keyed by what a netlist depends on: the unit, its Verilog parameters, the clock
period and the library corner it is mapped to - not by the NPU preset.

Presets with equal parameters share one job (the arithmetic units have none, so dnpu-edge,
dnpu-cloud and ar-npu share one fp32_mul netlist): `results/synth/units/<job key>/`, and each
preset's table joins the jobs of its units. An edit of a preset that leaves a unit's parameters
and clock alone changes no key and reruns nothing; a new VLEN changes the vector unit's key only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from npu.synth.units import SynthUnit, get_unit


@dataclass(frozen=True)
class SynthJob:
    """One netlist to make: `unit` with `parameters` at `period_ps`, mapped to `map_corner`."""

    unit: str
    parameters: dict[str, int] = field(hash=False, compare=False)
    period_ps: float = 1000.0
    map_corner: str = "TT"

    def identity(self) -> str:
        return json.dumps({"unit": self.unit, "parameters": self.parameters, "period_ps": float(self.period_ps),
                           "map_corner": self.map_corner}, sort_keys=True)

    @property
    def key(self) -> str:
        """`<unit>-<8 hex digits of the parameters, period and corner>`, a folder name."""
        return f"{self.unit}-{hashlib.sha256(self.identity().encode()).hexdigest()[:8]}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SynthJob) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.identity())


def job_for(unit: SynthUnit | str, config: Any, clock_period_override_ps: float | None = None,
            map_corner: str = "TT") -> SynthJob:
    """The job of `unit` in NPU preset `config`: its parameters from the preset, the period from
    the unit's own target (the anchor's 200 ps), else the override, else the preset's clock."""
    from npu.synth.flow import clock_period_ps

    entry = get_unit(unit) if isinstance(unit, str) else unit
    if entry.period_ps is not None:
        period = float(entry.period_ps)
    else:
        period = clock_period_ps(config.clock_ghz, clock_period_override_ps)
    return SynthJob(entry.name, dict(entry.parameters(config)), period, entry.map_corner or map_corner)


def preset_jobs(config: Any, units: list[str], clock_period_override_ps: float | None = None,
                map_corner: str = "TT") -> dict[str, SynthJob]:
    """Unit name -> its job for one preset."""
    return {name: job_for(name, config, clock_period_override_ps, map_corner) for name in units}
