"""Specifications of the NPU configurations (npu/hw/config.py, config/npu/*.yaml)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from npu.config import DEFAULT_CONFIG_DIR
from npu.hw.config import CONFIG_DIR, NPUConfigError, list_presets, load_npu_config, npu_config_from_dict
from npu.hw.technology import DEFAULT_TECHNOLOGY, load_technology


def cloud_dict() -> dict:
    return yaml.safe_load((CONFIG_DIR / "dnpu-cloud.yaml").read_text())


def test_the_three_presets_load_and_validate() -> None:
    assert set(list_presets()) >= {"dnpu-cloud", "dnpu-edge", "ar-npu"}
    for name in ("dnpu-cloud", "dnpu-edge", "ar-npu"):
        config = load_npu_config(name)
        assert config.name == name and config.source == f"{name}.yaml"
        config.validate()


def test_cloud_derived_figures() -> None:
    cloud = load_npu_config("dnpu-cloud")
    assert cloud.peak_macs_per_s == 128 * 128 * 1e9
    assert cloud.peak_flops_per_s == 2 * cloud.peak_macs_per_s
    assert cloud.peak_dram_bytes_per_s == 819.2e9
    assert cloud.machine_balance_macs_per_byte == pytest.approx(20.0)
    assert cloud.weight_bits_per_element == 8 + 8 / 32
    assert cloud.weight_tile_bytes == 128 * 128 * 2
    assert cloud.vector_sram_rows == 32 * 2**20 // (128 * 2)
    assert cloud.dllm_instructions


def test_cloud_fits_llada_8b() -> None:
    """MXFP8 weights of LLaDA-8B plus a 4096-token bf16 KV cache fit in DRAM."""
    cloud = load_npu_config("dnpu-cloud")
    weights = 8.0e9 * cloud.weight_bits_per_element / 8
    kv_cache = 4096 * 512 * 2**10  # 512 KiB per token: 32 layers x (K, V) x 32 heads x 128 x bf16 (LLaDA-8B config)
    assert weights + kv_cache < cloud.dram.capacity_bytes


def test_ar_npu_has_the_cloud_budget_without_dllm_instructions() -> None:
    ar, cloud = load_npu_config("ar-npu").to_dict(), load_npu_config("dnpu-cloud").to_dict()
    assert ar.pop("dllm_instructions") is False
    for key in ("name", "description"):
        ar.pop(key), cloud.pop(key)
    cloud.pop("dllm_instructions")
    assert ar == cloud


def test_edge_is_smaller_than_cloud() -> None:
    edge, cloud = load_npu_config("dnpu-edge"), load_npu_config("dnpu-cloud")
    assert edge.dram.kind == "lpddr5" and edge.total_sram_bytes < cloud.total_sram_bytes
    assert edge.peak_dram_bytes_per_s < cloud.peak_dram_bytes_per_s


def test_load_by_path_and_dict_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text((CONFIG_DIR / "dnpu-edge.yaml").read_text())
    config = load_npu_config(path)
    assert config.source == "mine.yaml"
    assert npu_config_from_dict(config.to_dict()) == config


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(NPUConfigError, match="no NPU preset named 'dnpu-moon'.*dnpu-cloud"):
        load_npu_config("dnpu-moon")


def test_missing_file_and_bad_yaml_are_named(tmp_path: Path) -> None:
    with pytest.raises(NPUConfigError, match="no such NPU configuration file"):
        load_npu_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(NPUConfigError, match=r"bad.yaml: line 2, column 1: YAML syntax error"):
        load_npu_config(bad)


def test_errors_name_the_file(tmp_path: Path) -> None:
    d = cloud_dict()
    d["vlen"] = 96
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(NPUConfigError, match=r"^broken.yaml: vlen: 96 must be a power of two"):
        load_npu_config(path)


def _set(d: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        d = d[key]
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()

INVALID = [
    # (dotted key, bad value, the key the message must name, words it must contain)
    ("vlen", 96, "vlen", "power of two"),
    ("vlen", 256, "vlen", "must divide mlen=128"),
    ("mlen", 100, "mlen", "power of two"),
    ("blen", 256, "blen", "must not exceed mlen"),
    ("mx_block", 256, "mx_block", "must divide vlen=128"),
    ("mx_block", 0, "mx_block", "power of two"),
    ("clock_ghz", 0, "clock_ghz", "positive"),
    ("accumulators", 9, "accumulators", "must be 1..8"),
    ("accumulators", 0, "accumulators", "at least 1"),
    ("matrix_sram.size_bytes", 32768, "matrix_sram.size_bytes", "double-buffered"),
    ("vector_sram.size_bytes", 4096, "vector_sram.size_bytes", "double-buffered"),
    ("vector_sram.size_bytes", 3 * 2**20, "vector_sram.size_bytes", "power of two"),
    ("fp_sram.size_bytes", 1000, "fp_sram.size_bytes", "power of two"),
    ("vector_sram.width_bits", 512, "vector_sram.width_bits", "must be a multiple of vlen x element bits = 2048"),
    ("matrix_sram.width_bits", 1024, "matrix_sram.width_bits", "must be a multiple of mlen x 16 = 2048"),
    ("int_sram.width_bits", 16, "int_sram.width_bits", "multiple of 32"),
    ("int_sram.ports", 0, "int_sram.ports", "at least 1"),
    ("formats.weights", "fp9", "formats.weights", "unknown format 'fp9'"),
    ("formats.weights", "int4", "formats.weights", "not allowed here"),
    ("formats.vector", "mxfp4", "formats.vector", "not allowed here"),
    ("formats.accumulator", "bf16", "formats.accumulator", "not allowed here"),
    ("dram.kind", "gddr6", "dram.kind", "unknown DRAM kind 'gddr6'"),
    ("dram.channels", 0, "dram.channels", "at least 1"),
    ("dram.bandwidth_gbps", -1, "dram.bandwidth_gbps", "positive"),
    ("dram.capacity_gib", 0, "dram.capacity_gib", "positive"),
    ("mlen", "128", "mlen", "expected int"),
    ("mlen", 128.0, "mlen", "expected int"),
    ("blen", True, "blen", "expected int"),
    ("dllm_instructions", "yes", "dllm_instructions", "expected bool"),
    ("dram", "hbm3", "dram", "expected a mapping"),
    ("dram.speed", 1, "dram.speed", "unknown key"),
    ("turbo", 1, "turbo", "unknown key"),
    ("vlen", _DELETE, "vlen", "missing key"),
    ("formats.kv_cache", _DELETE, "formats.kv_cache", "missing key"),
]


@pytest.mark.parametrize("dotted, value, key, words", INVALID, ids=[f"{k}=<deleted>" if v is _DELETE else f"{k}={v!r}" for k, v, *_ in INVALID])
def test_invalid_configuration_is_rejected_naming_the_key(
    dotted: str, value: object, key: str, words: str
) -> None:
    d = copy.deepcopy(cloud_dict())
    _set(d, dotted, value)
    with pytest.raises(NPUConfigError) as err:
        npu_config_from_dict(d, source="test.yaml")
    message = str(err.value)
    assert message.startswith(f"test.yaml: {key}: "), message
    assert words in message, message


def test_ports_may_be_omitted() -> None:
    d = cloud_dict()
    del d["vector_sram"]["ports"]
    assert "ports" not in d["int_sram"]
    config = npu_config_from_dict(d)
    assert config.vector_sram.ports == 1 and config.int_sram.ports == 1


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(NPUConfigError, match="x.yaml: top level: expected a mapping"):
        npu_config_from_dict(["not", "a", "mapping"], source="x.yaml")  # type: ignore[arg-type]


def _write_preset(folder: Path, d: dict) -> Path:
    (folder / "npu").mkdir(parents=True, exist_ok=True)
    path = folder / "npu" / f"{d['name']}.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def test_a_misspelled_key_is_named_in_one_line(tmp_path: Path) -> None:
    d = cloud_dict()
    d["vector_sram"]["widht_bits"] = d["vector_sram"].pop("width_bits")
    with pytest.raises(NPUConfigError) as err:
        load_npu_config(_write_preset(tmp_path, d))
    assert str(err.value) == ("dnpu-cloud.yaml: vector_sram.widht_bits: unknown key (expected: size_bytes, "
                              "width_bits, ports)\ndnpu-cloud.yaml: vector_sram.width_bits: missing key")


def test_a_wrong_type_is_named_with_file_and_key(tmp_path: Path) -> None:
    d = cloud_dict()
    d["dram"]["bandwidth_gbps"] = "fast"
    with pytest.raises(NPUConfigError, match=r"^dnpu-cloud.yaml: dram.bandwidth_gbps: expected float, got 'fast'$"):
        load_npu_config(_write_preset(tmp_path, d))


def test_presets_use_the_7nm_technology_unless_they_name_another() -> None:
    cloud = load_npu_config("dnpu-cloud")
    assert "technology" not in cloud_dict() and DEFAULT_TECHNOLOGY == "asap7-7nm"
    assert cloud.technology == load_technology("asap7-7nm")
    assert cloud.technology.latency.vector_rank == 20  # PLENA: top-k 20
    assert cloud.technology.energy.mac == pytest.approx((1.1 + 0.9) * 0.2)  # Horowitz 45 nm x 0.2
    assert cloud.to_dict()["technology"] == "asap7-7nm"


def test_an_unknown_technology_file_is_named(tmp_path: Path) -> None:
    d = cloud_dict() | {"technology": "tsmc-1nm"}
    with pytest.raises(NPUConfigError, match=r"^test.yaml: technology: unknown tech preset 'tsmc-1nm'.*asap7-7nm"):
        npu_config_from_dict(d, source="test.yaml")


def test_a_preset_can_name_its_own_technology_file(tmp_path: Path) -> None:
    tech = yaml.safe_load((DEFAULT_CONFIG_DIR / "tech" / "asap7-7nm.yaml").read_text())
    tech["name"] = "slow-dma"
    tech["latency"]["dma_setup"] = 40
    (tmp_path / "tech").mkdir()
    (tmp_path / "tech" / "slow-dma.yaml").write_text(yaml.safe_dump(tech))
    _write_preset(tmp_path, cloud_dict() | {"technology": "slow-dma"})
    config = load_npu_config("dnpu-cloud", config_dir=tmp_path)
    assert config.technology.latency.dma_setup == 40
    assert config != load_npu_config("dnpu-cloud")
    tech["latency"]["dma_setup"] = -1
    (tmp_path / "tech" / "slow-dma.yaml").write_text(yaml.safe_dump(tech))
    with pytest.raises(NPUConfigError, match=r"technology: .*slow-dma.yaml: latency.dma_setup: -1 must be at least 0"):
        load_npu_config("dnpu-cloud", config_dir=tmp_path)
