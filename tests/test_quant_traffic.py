"""KV DRAM traffic per generated token per method, from the analytical NPU model."""

import pytest

from npu.quant.storage import kv_element_bits
from npu.stages.quantize import kv_traffic_rows


@pytest.fixture(scope="module")
def rows():
    table = kv_traffic_rows("dnpu-cloud", ("tiny-sort",), ("bf16", "int", "kivi", "baos-mxint"), (16, 4, 2))
    return {(r["cache"], r["method"], r["bits"]): r for r in table}


def test_bf16_is_the_reference_and_other_methods_scale_by_their_stored_bits(rows):
    bf16 = rows[("dual", "bf16", 16)]
    assert bf16["kv_bytes_vs_bf16"] == 1.0 and 0 < bf16["kv_share_of_dram"] < 1
    int4 = rows[("dual", "int", 4)]
    assert int4["kv_bytes_per_token"] == pytest.approx(bf16["kv_bytes_per_token"] * kv_element_bits("int", 4, 32) / 16)
    saved = bf16["kv_bytes_per_token"] - int4["kv_bytes_per_token"]
    assert bf16["dram_bytes_per_token"] - int4["dram_bytes_per_token"] == pytest.approx(saved)


def test_kivi_pays_for_its_bf16_window_and_methods_without_a_format_are_absent(rows):
    assert rows[("dual", "kivi", 4)]["kv_bytes_per_token"] > rows[("dual", "int", 4)]["kv_bytes_per_token"]
    assert ("dual", "bf16", 4) not in rows and ("prefix", "int", 16) not in rows
    assert rows[("dual", "baos-mxint", 2)]["kv_bytes_per_token"] < rows[("dual", "baos-mxint", 4)]["kv_bytes_per_token"]


def test_the_table_refuses_a_preset_whose_kv_is_not_bf16(tmp_path):
    from pathlib import Path

    import yaml

    source = Path(__file__).resolve().parents[1] / "config" / "npu" / "dnpu-cloud.yaml"
    data = yaml.safe_load(source.read_text())
    data["formats"]["kv_cache"] = "mxint8"
    (tmp_path / "mx.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="kv_cache"):
        kv_traffic_rows(str(tmp_path / "mx.yaml"), ("tiny-sort",), ("int",), (4,))
