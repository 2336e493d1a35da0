"""The static walk (loops costed from a few iterations) against the dynamic trace, on compiled steps.

`estimate_static` runs a hardware loop only until its iterations repeat and extrapolates the
rest; `estimate_program` traces every dynamic instruction. On the compiled steps of the tiny
presets the two must give the same figures - every cache mode and commit rule, on machines with
(dnpu-cloud, dnpu-edge) and without (ar-npu) the dLLM sampling instructions.

Measured: identical (to 1e-15) everywhere except tiny-sort on dnpu-edge, where the static walk
is 0.17 cycles of 100-190 k slower (<= 1.7e-6 of the step, 2.3e-5 of one region: the last
layer's gate and up projections). There the weight tiles' DRAM addresses fall at other offsets
within a 2 KiB DRAM request in the extrapolated iterations than in the ones walked, so their
DMAs split into requests slightly differently (npu.sim.analytical.segments.dma_request_sizes);
on edge's LPDDR5 (47.5 B/cycle) that is a fraction of a cycle. Hence the tolerances below.
"""

import pytest

from npu.hw.config import load_npu_config
from npu.models.presets import load_model_spec
from npu.runtime.lowering import step_program
from npu.sim.analytical.operators import StepShape
from npu.sim.analytical.program import estimate_program
from npu.sim.analytical.static import estimate_static

SHAPES = {
    "none": StepShape("none", 18, 18, 6, "topk"),
    "prefix": StepShape("prefix", 12, 18, 6, "threshold"),
    "dual": StepShape("dual", 6, 18, 6, "topk"),
    "dual-threshold": StepShape("dual", 6, 18, 6, "threshold"),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # timing mode: FP registers hold no data
@pytest.mark.parametrize("npu", ["dnpu-cloud", "dnpu-edge", "ar-npu"])
@pytest.mark.parametrize("model", ["tiny-sort", "tiny-add"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_static_walk_equals_the_dynamic_trace_on_compiled_steps(npu, model, shape):
    config = load_npu_config(npu)
    program = step_program(config, load_model_spec(model).architecture, shape)
    static, dynamic = estimate_static(program, config), estimate_program(program, config)
    assert static.instructions == dynamic.instructions
    assert static.cycles == pytest.approx(dynamic.cycles, rel=1e-5)
    assert static.by_region.keys() == dynamic.by_region.keys()
    for region, cycles in dynamic.by_region.items():
        assert static.by_region[region] == pytest.approx(cycles, rel=1e-4, abs=1e-6), region
    for unit, busy in dynamic.unit_busy.items():
        assert static.unit_busy[unit] == pytest.approx(busy, rel=1e-5, abs=1e-6), unit
    for action, amount in dynamic.energy.actions.items():
        assert static.energy.actions.get(action, 0) == pytest.approx(amount, rel=1e-9), action
