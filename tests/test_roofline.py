"""The roofline check (npu.check.roofline) and its stage on tiny-sort compiled for dnpu-cloud, and
the single-GEMM program the GEMM microbenchmark times (npu.compiler.linear.compile_gemm).

Bounds are recomputed here from the preset's YAML (mlen, clock, DRAM bandwidth), the model
preset's shapes and the compiler's DRAM map, not from the package's derived figures.
"""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
import yaml

from npu.check.roofline import operator_group, roofline
from npu.compiler.asm import CompileError
from npu.compiler.linear import compile_gemm
from npu.config import DEFAULT_CONFIG_DIR
from npu.hw.config import load_npu_config
from npu.sim.cycle import CycleSimulator
from npu.sim.cycle.compiled import read_compiled_programs
from npu.stages.compile import compile_stage
from npu.stages.export import export_stage
from npu.stages.simulate import roofline_stage

NPU = "dnpu-cloud"
QUERY, KV = 8, 24


def _yaml(kind: str, name: str) -> dict:
    return yaml.safe_load((DEFAULT_CONFIG_DIR / kind / f"{name}.yaml").read_text())


def _roundup(value: int, step: int) -> int:
    return -(-value // step) * step


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """tiny-sort's refresh, prefix and dual in-block steps compiled for dnpu-cloud."""
    root = tmp_path_factory.mktemp("roofline")
    export_stage("tiny-sort", root / "ir", query_length=QUERY, kv_length=KV)
    compile_stage(NPU, root / "ir", root / "compiled")
    return root / "compiled"


@pytest.fixture(scope="module")
def table(compiled):
    """roofline.tsv of the compiled steps (attained from the cycle simulator), read back."""
    out = compiled / "roofline.tsv"
    roofline_stage(NPU, compiled, out, compiled / "roofline.png", attained="cycle")
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _rows(table, kind: str, step: str | None = None) -> list[dict]:
    return [r for r in table if r["kind"] == kind and (step is None or r["step"] == step)]


def test_every_step_program_gets_operator_group_and_total_rows_and_a_figure(table, compiled):
    assert {r["step"] for r in table} == {"refresh", "prefix_inblock", "dual_inblock"}
    assert all(r["status"] == "ok" and r["attained"] == "cycle" for r in table)
    for step in ("refresh", "prefix_inblock", "dual_inblock"):
        assert len(_rows(table, "step", step)) == 1
        names = {r["operator"] for r in _rows(table, "operator", step)}
        assert {"blocks.0.attn.q_proj", "blocks.3.mlp.down_proj", "lm_head", "committed"} <= names
    assert (compiled / "roofline.png").stat().st_size > 0


def test_bounds_are_macs_over_the_array_peak_and_bytes_over_the_dram_bandwidth(table):
    machine = _yaml("npu", NPU)
    macs_per_cycle = machine["mlen"] ** 2
    bytes_per_cycle = machine["dram"]["bandwidth_gbps"] / machine["clock_ghz"]
    for row in table:
        assert float(row["compute_bound_cycles"]) == pytest.approx(float(row["macs"]) / macs_per_cycle, rel=1e-9)
        assert float(row["dram_bound_cycles"]) == pytest.approx(float(row["dram_bytes"]) / bytes_per_cycle, rel=1e-9)


def test_a_projection_counts_its_padded_macs_and_reads_its_weights_once(table, compiled):
    """q_proj of the dual step: query rows padded to BLEN x d_model x heads of MLEN-padded slots;
    its DRAM bytes are its weight region in the compiler's DRAM map."""
    machine, model = _yaml("npu", NPU), _yaml("models", "tiny-sort")["architecture"]
    rows = _roundup(QUERY, machine["blen"])
    width = model["n_heads"] * _roundup(model["head_dim"], machine["mlen"])
    dram_map = json.loads((compiled / "dual_inblock.dram_map.json").read_text())
    q_proj = next(r for r in _rows(table, "operator", "dual_inblock") if r["operator"] == "blocks.1.attn.q_proj")
    assert float(q_proj["macs"]) == rows * model["d_model"] * width
    assert float(q_proj["dram_bytes"]) == dram_map["blocks.1.attn.q_proj.weight"]["bytes"]


def test_step_totals_are_the_compilers_counts_and_the_simulators_cycles(table, compiled):
    config = load_npu_config(NPU)
    programs = {p.step: p for p in read_compiled_programs(compiled)}
    for total in _rows(table, "step"):
        stats_row = programs[total["step"]].row
        assert float(total["macs"]) == float(stats_row["macs"])
        assert float(total["dram_bytes"]) == float(stats_row["dram_read_bytes"]) + float(stats_row["dram_write_bytes"])
        simulator = CycleSimulator(config, dram="bandwidth")
        simulator.load(programs[total["step"]].program)
        with np.errstate(all="ignore"):
            assert float(total["attained_cycles"]) == simulator.run().cycles


def test_no_operator_beats_its_bound_and_binds_names_the_larger_one(table):
    for row in table:
        compute, dram = float(row["compute_bound_cycles"]), float(row["dram_bound_cycles"])
        assert float(row["bound_cycles"]) == max(compute, dram)
        assert float(row["attained_cycles"]) >= float(row["bound_cycles"]), row
        expected = "none" if max(compute, dram) == 0 else ("compute" if compute >= dram else "dram")
        assert row["binds"] == expected
        if expected != "none":
            assert float(row["roofline_fraction"]) == pytest.approx(1 / float(row["attained_over_bound"]))


def test_step_total_is_the_sum_of_its_operators_and_of_its_groups(table):
    """Cycles, MACs and bytes add up (every segment belongs to one operator); the step's bound is
    the larger of the summed bounds, at most the sum of the operators' bounds."""
    for total in _rows(table, "step"):
        step = total["step"]
        for rows in (_rows(table, "operator", step), _rows(table, "group", step)):
            for column in ("attained_cycles", "macs", "dram_bytes", "compute_bound_cycles", "dram_bound_cycles",
                           "matrix_cycles", "weight_load_cycles", "vector_cycles"):
                assert sum(float(r[column]) for r in rows) == pytest.approx(float(total[column]), rel=1e-9)
        operators = _rows(table, "operator", step)
        assert float(total["bound_cycles"]) <= sum(float(r["bound_cycles"]) for r in operators) * (1 + 1e-9)
        assert int(total["count"]) == len(operators)


def test_a_projection_is_limited_by_a_matrix_path_resource_and_a_norm_by_issue_or_vector(table):
    """The analytical model's resource demands name what keeps an operator from its bound."""
    for row in _rows(table, "operator", "dual_inblock"):
        if row["operator"].endswith("q_proj"):
            assert row["limiting_resource"] in ("matrix", "weight_load", "dma_port", "dram")
            assert float(row["matrix_cycles"]) >= float(row["compute_bound_cycles"])
        if row["operator"].endswith("attn_norm"):
            assert row["limiting_resource"] in ("frontend", "vector") and float(row["matrix_cycles"]) == 0


def test_groups_gather_one_operator_over_all_layers(table):
    layers = _yaml("models", "tiny-sort")["architecture"]["n_layers"]
    groups = {r["operator"]: r for r in _rows(table, "group", "dual_inblock")}
    assert int(groups["attn.q_proj"]["count"]) == layers and int(groups["lm_head"]["count"]) == 1
    assert operator_group("blocks.12.mlp.up_proj") == "mlp.up_proj" and operator_group("lm_head") == "lm_head"


def test_the_analytical_walk_agrees_with_the_cycle_simulator_per_step(compiled):
    config = load_npu_config(NPU)
    for program in read_compiled_programs(compiled):
        cycle = roofline(program.program, config, attained="cycle")
        analytical = roofline(program.program, config, attained="analytical")
        assert analytical.total.macs == cycle.total.macs and analytical.total.dram_bytes == cycle.total.dram_bytes
        assert analytical.total.attained_cycles == pytest.approx(cycle.total.attained_cycles, rel=0.02)


def test_programs_too_long_or_not_compiled_get_a_status_row(compiled, tmp_path):
    copy = tmp_path / "compiled"
    shutil.copytree(compiled, copy)
    table_path = copy / "compile.tsv"
    with table_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        if row["step"] == "refresh":
            row["status"] = "does-not-fit: vector_sram.size_bytes"
    with table_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    limit = min(int(r["executed_instructions"]) for r in rows if r["step"] != "refresh") - 1
    out = roofline_stage(NPU, copy, copy / "roofline.tsv", copy / "roofline.png", max_instructions=limit)
    status = {r["step"]: r["status"] for r in out}
    assert status["refresh"].startswith("not compiled: does-not-fit")
    assert status["dual_inblock"].startswith("skipped:") and status["prefix_inblock"].startswith("skipped:")
    assert len(out) == 3 and (copy / "roofline.png").stat().st_size > 0


def test_an_unknown_attained_source_is_named():
    with pytest.raises(ValueError, match="attained: 'rtl'"):
        roofline(compile_gemm(load_npu_config(NPU), 16, 128, 128).program, load_npu_config(NPU), attained="rtl")


@pytest.mark.parametrize("preset", ["dnpu-cloud", "dnpu-edge"])
def test_a_compiled_gemm_does_its_macs_reads_its_weights_once_and_stays_above_both_bounds(preset):
    config = load_npu_config(preset)
    machine = _yaml("npu", preset)
    rows, k, n = 2 * machine["blen"], 2 * machine["mlen"], 3 * machine["mlen"]
    kernel = compile_gemm(config, rows, k, n)
    assert kernel.macs == rows * k * n
    assert kernel.dram_read_bytes == kernel.weight_bytes
    bits = {"mxfp8_e4m3": 8, "mxint4": 4, "mxint8": 8}[machine["formats"]["weights"]]
    assert kernel.weight_bytes == n * k * bits // 8 + n * k // machine["mx_block"]  # one 8-bit scale per block
    result = roofline(kernel.program, config, attained="cycle")
    assert result.total.macs == kernel.macs and result.total.dram_bytes == kernel.weight_bytes
    assert result.total.attained_cycles >= max(rows * k * n / machine["mlen"] ** 2,
                                               kernel.weight_bytes * machine["clock_ghz"] / machine["dram"]["bandwidth_gbps"])
    assert math.isfinite(result.total.attained_over_bound)


def test_a_gemm_not_tiled_by_the_array_is_rejected_naming_mlen():
    with pytest.raises(CompileError, match="mlen=128"):
        compile_gemm(load_npu_config(NPU), 16, 96, 128)
