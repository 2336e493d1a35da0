"""Configuration files are validated against their schema and bad ones are named precisely."""

from pathlib import Path

import pytest
import yaml

from npu.config import DEFAULT_CONFIG_DIR, ConfigError, load_validated_yaml, validate_mapping
from npu.models.presets import load_model_spec


def write_preset(tmp_path: Path, name: str, data: dict) -> Path:
    folder = tmp_path / "models"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def llada_architecture() -> dict:
    return yaml.safe_load((DEFAULT_CONFIG_DIR / "models" / "llada-8b.yaml").read_text())["architecture"]


def test_default_pipeline_config_is_valid_and_gets_defaults():
    config = load_validated_yaml(DEFAULT_CONFIG_DIR / "config.yaml", "config")
    assert config["models"]["trained"]
    assert config["evaluate"]["cache_modes"] == ["none", "prefix", "dual"]


def test_every_model_preset_loads():
    for path in sorted((DEFAULT_CONFIG_DIR / "models").glob("*.yaml")):
        spec = load_model_spec(path)
        assert spec.name == path.stem


def test_public_presets_have_the_published_kv_footprint():
    assert load_model_spec("llada-8b").architecture.kv_bytes_per_token_bf16 == 512 * 1024
    assert load_model_spec("dream-7b").architecture.kv_bytes_per_token_bf16 == 56 * 1024


def test_wrong_type_names_file_and_key(tmp_path):
    arch = llada_architecture() | {"d_model": "wide"}
    path = write_preset(tmp_path, "bad", {"name": "bad", "architecture": arch})
    with pytest.raises(ConfigError) as err:
        load_model_spec(path)
    assert str(path) in str(err.value) and "architecture.d_model" in str(err.value)


def test_unknown_key_is_rejected(tmp_path):
    path = write_preset(tmp_path, "typo", {"name": "typo", "architecture": llada_architecture(), "trainig": {}})
    with pytest.raises(ConfigError, match="trainig"):
        load_model_spec(path)


def test_inconsistent_heads_are_rejected_with_the_file(tmp_path):
    arch = llada_architecture() | {"n_kv_heads": 5}
    path = write_preset(tmp_path, "heads", {"name": "heads", "architecture": arch})
    with pytest.raises(ConfigError, match=r"heads\.yaml.*n_kv_heads"):
        load_model_spec(path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  trained: [a, b\nnpus: []\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+"):
        load_validated_yaml(path, "config")


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="llada-8b"):
        load_model_spec("no-such-model")


def test_pipeline_config_rejects_unknown_cache_mode():
    with pytest.raises(ConfigError, match=r"evaluate\.cache_modes\.0"):
        validate_mapping({"models": {}, "npus": [], "evaluate": {"cache_modes": ["triple"]}}, "config", "cfg.yaml")


def _package(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / "npu" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "npu" / "cli.py").write_text("")
    return root / "npu"


def test_stage_closure_follows_imports_inside_the_stage_function_and_its_helpers(tmp_path):
    from npu.provenance import import_closure

    root = _package(tmp_path, {
        "__init__.py": "", "a.py": "import npu.b\n", "b.py": "", "c.py": "", "d.py": "",
        "stages.py": "from npu import a\n\ndef one():\n    helper()\n\ndef helper():\n    from npu.c import x\n\n"
                     "def two():\n    import npu.d\n",
    })
    assert import_closure("npu.stages", "one", root) == {"npu", "npu.stages", "npu.a", "npu.b", "npu.c"}
    assert import_closure("npu.stages", "two", root) == {"npu", "npu.stages", "npu.a", "npu.b", "npu.d"}


def test_stage_fingerprint_changes_with_an_indirect_import_only(tmp_path):
    from npu.provenance import stage_fingerprint

    root = _package(tmp_path, {"__init__.py": "", "a.py": "from npu.b import f\n", "b.py": "f = 1\n", "c.py": "",
                               "stages.py": "def run():\n    import npu.a\n"})
    before = stage_fingerprint("npu.stages", "run", root)
    (root / "c.py").write_text("changed = True\n")  # not imported: same fingerprint
    assert stage_fingerprint.__wrapped__("npu.stages", "run", root) == before
    (root / "b.py").write_text("f = 2\n")
    assert stage_fingerprint.__wrapped__("npu.stages", "run", root) != before


def test_every_rule_stage_has_a_fingerprint():
    from npu.provenance import stage_fingerprint

    assert len(stage_fingerprint("npu.stages.train", "train_stage")) == 16
    with pytest.raises(ValueError, match="no function 'nope'"):
        stage_fingerprint("npu.stages.train", "nope")

