"""Functional simulator of the dnpu: runs machine code on numpy memory images."""

from npu.sim.functional.memory import Dram, MemoryAccessError, Sram
from npu.sim.functional.simulator import FunctionalSimulator, SimStats, SimulationError

__all__ = ["Dram", "FunctionalSimulator", "MemoryAccessError", "SimStats", "SimulationError", "Sram"]
