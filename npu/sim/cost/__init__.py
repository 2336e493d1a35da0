"""The cost model both timing models share: what each instruction costs in cycles and energy.

- `latency.instruction_timing`: the timing of every instruction (a pure function of the ISA
  table entry, its operands, the machine and the technology's `LatencyParameters`).
- `energy.energy_report`: action counts x the technology's `EnergyTable`.
- `dram`: the DRAM backends behind the DMA engine (the JEDEC model in the loop, or a bandwidth
  pipe), and the JEDEC preset a machine's DRAM maps to.

The cycle simulator (npu.sim.cycle) schedules these costs event by event; the analytical model
(npu.sim.analytical) sums them in closed form. Neither imports the other for them.
"""
