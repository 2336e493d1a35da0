"""The design-space sweep (issue 18, item 3; docs/dse.md).

- `npu.dse.grid`: the design points of the config's `dse:` grid, each a validated NPU preset
  derived from a named base preset, with a short stable id;
- `npu.dse.area`: area (and leakage) of a design point from the synthesized per-unit tables,
  scaled by the point's unit counts;
- `npu.dse.point`: one design point's generations on the analytical model (the same entry the
  pipeline's simulate_analytical stage uses) and, on sampled points, the cycle simulator's check;
- `npu.dse.pareto`: the Pareto fronts, the best point per area budget, where the presets sit.
"""
