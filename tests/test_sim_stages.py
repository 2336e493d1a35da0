"""The simulate_cycle / crossvalidate stage helpers: per-token figures from step cycles, tables."""

import pytest

from npu.hw.config import load_npu_config
from npu.io import write_tsv
from npu.sim.cycle.compiled import generation_rows, read_compiled_programs

CLOUD = load_npu_config("dnpu-cloud")


def _step(step: str, cycles: int, energy_uj: float = 1.0, dram: int = 100) -> dict:
    return {"model": "m", "step": step, "status": "ok", "cycles": cycles, "energy_uj": energy_uj,
            "dram_read_bytes": dram, "dram_write_bytes": 0}


def test_generation_counts_one_refresh_per_block_and_in_block_steps_for_the_rest():
    steps = [_step("refresh", 1000), _step("dual_inblock", 100), _step("prefix_inblock", 300)]
    rows = {r["cache"]: r for r in generation_rows(CLOUD, steps, {"gen_length": 12, "block_length": 4, "steps": 12})}
    # none: 12 full passes; dual: 3 refreshes + 9 in-block steps; prefix likewise with its own step
    assert rows["none"]["latency_per_token_us"] == pytest.approx(12 * 1000 / 1e3 / 12)
    assert rows["dual"]["latency_per_token_us"] == pytest.approx((3 * 1000 + 9 * 100) / 1e3 / 12)
    assert rows["prefix"]["latency_per_token_us"] == pytest.approx((3 * 1000 + 9 * 300) / 1e3 / 12)
    assert rows["dual"]["tokens_per_s"] == pytest.approx(12 / ((3 * 1000 + 9 * 100) / CLOUD.clock_hz))
    assert rows["dual"]["energy_per_token_uj"] == pytest.approx(12 / 12)
    assert rows["dual"]["dram_bytes_per_token"] == pytest.approx(12 * 100 / 12)


def test_generation_names_the_step_that_was_not_simulated():
    steps = [_step("refresh", 1000), {"model": "m", "step": "dual_inblock", "status": "skipped: too long"}]
    rows = {r["cache"]: r for r in generation_rows(CLOUD, steps, {"gen_length": 8, "block_length": 4, "steps": 8})}
    assert rows["none"]["status"] == "ok"
    assert rows["dual"]["status"] == "missing simulated step(s): dual_inblock"
    assert rows["prefix"]["status"] == "missing simulated step(s): prefix_inblock"


def test_reading_programs_without_a_compile_table_says_which_stage_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="compile.tsv.*run the compile stage"):
        read_compiled_programs(tmp_path)


def test_a_compiled_row_whose_listing_is_missing_is_named(tmp_path):
    (tmp_path / "compile.tsv").write_text("npu\tmodel\tstep\tquery_length\tstatus\texecuted_instructions\n"
                                          "dnpu-cloud\tm\trefresh\t8\tok\t10\n")
    with pytest.raises(FileNotFoundError, match="refresh.s"):
        read_compiled_programs(tmp_path)


def test_tables_with_ragged_rows_need_an_explicit_filler(tmp_path):
    rows = [{"a": 1, "b": 2}, {"a": 3, "status": "skipped"}]
    with pytest.raises(ValueError, match="columns"):
        write_tsv(tmp_path / "t.tsv", rows)
    write_tsv(tmp_path / "t.tsv", rows, missing="")
    assert (tmp_path / "t.tsv").read_text() == "a\tb\tstatus\n1\t2\t\n3\t\tskipped\n"
