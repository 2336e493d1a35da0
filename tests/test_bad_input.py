"""Bad input, everywhere (issue 12): a named error before any work starts, never a wrong number.

Each case feeds one mistake a user can make - garbage assembly, random binaries, programs that
fault or never halt, typos and bad numbers in every configuration file, unknown preset names,
truncated checkpoints, bad command-line arguments - and asserts the error: its type, that its
message is one line naming the culprit (file, key, line, instruction), and that nothing was
left half-written. CLI cases run `npu.cli.main([...])` in-process and assert exit status 2, one
line on stderr and no traceback; pipeline cases run `snakemake -n`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from npu.config import ConfigError, load_validated_yaml
from npu.errors import UserError, one_line

REPO = Path(__file__).resolve().parents[1]
MODEL_PRESET = REPO / "config" / "models" / "tiny-sort.yaml"
NPU_PRESET = REPO / "config" / "npu" / "dnpu-edge.yaml"
PIPELINE_CONFIG = REPO / "config" / "config.yaml"


def assert_names(error: BaseException, *names: str) -> str:
    """The error's one-line form names every one of `names` and carries no traceback text."""
    line = one_line(error)
    assert "\n" not in line and "Traceback" not in line
    for name in names:
        assert name in line, f"{name!r} not in {line!r}"
    return line


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# ---- assembly sources -------------------------------------------------------------------------

ASSEMBLY_CASES = {
    "unknown_mnemonic": ("nop\nfrob r1, r2\nhalt\n", ":2:1:", "unknown mnemonic 'frob'"),
    "too_few_operands": ("addi r1, r2\n", ":1:", "expected 3 operand"),
    "undefined_label": ("j nowhere\n", ":1:", "undefined label 'nowhere'"),
    "immediate_out_of_range": ("addi r1, r0, 99999999\n", ":1:14:", "out of range"),
    "duplicate_label": ("a: nop\na: halt\n", ":2:1:", "duplicate label 'a'"),
    "register_out_of_range": ("addi r99, r0, 1\n", ":1:6:", "r99"),
    "wrong_register_kind": ("lw r1, 4(f2)\n", ":1:", "'f2'"),
    "float_operand_not_a_number": ("flui f0, banana\n", ":1:10:", "banana"),
}


@pytest.mark.parametrize("case", list(ASSEMBLY_CASES))
def test_bad_assembly_names_file_line_and_column(tmp_path, case):
    from npu.isa.assembler import AssemblyError
    from npu.isa.files import assemble_file

    text, where, what = ASSEMBLY_CASES[case]
    source = write(tmp_path / f"{case}.s", text)
    with pytest.raises(AssemblyError) as info:
        assemble_file(source)
    assert_names(info.value, f"{source}{where}", what)


def test_binary_passed_as_assembly_source_is_named_as_not_text(tmp_path):
    from npu.isa.files import ProgramFileError, assemble_file

    source = write(tmp_path / "prog.s", b"\x00\xff\xfe\x80" * 4)
    with pytest.raises(ProgramFileError) as info:
        assemble_file(source)
    assert_names(info.value, str(source), "not UTF-8")


def test_missing_program_file_is_named(tmp_path):
    from npu.isa.files import ProgramFileError, load_program

    with pytest.raises(ProgramFileError) as info:
        load_program(tmp_path / "absent.s")
    assert_names(info.value, "absent.s", "no such file")


def test_program_file_of_unknown_kind_lists_the_known_suffixes(tmp_path):
    from npu.isa.files import ProgramFileError, load_program

    with pytest.raises(ProgramFileError) as info:
        load_program(write(tmp_path / "prog.txt", "halt\n"))
    assert_names(info.value, "prog.txt", "'.txt'", ".s", ".bin")


def test_assembling_a_bad_source_writes_no_binary(tmp_path):
    from npu.isa.assembler import AssemblyError
    from npu.isa.files import assemble_to_file

    out = tmp_path / "out" / "prog.bin"
    with pytest.raises(AssemblyError):
        assemble_to_file(write(tmp_path / "prog.s", "halt\nfrob\n"), out)
    assert not out.exists() and not list(tmp_path.glob("out/*"))


# ---- program binaries -------------------------------------------------------------------------

def test_empty_binary_is_refused(tmp_path):
    from npu.isa.files import ProgramFileError, read_binary

    with pytest.raises(ProgramFileError) as info:
        read_binary(write(tmp_path / "empty.bin", b""))
    assert_names(info.value, "empty.bin", "empty")


def test_truncated_binary_names_the_partial_word(tmp_path):
    from npu.isa.files import ProgramFileError, read_binary

    with pytest.raises(ProgramFileError) as info:
        read_binary(write(tmp_path / "cut.bin", b"\x00" * 9))
    assert_names(info.value, "cut.bin", "9 bytes", "1 of its 4 bytes")


def test_disassembling_random_bytes_names_file_and_word_index(tmp_path):
    from npu.isa.encoding import EncodingError
    from npu.isa.files import disassemble_file

    from npu.isa.assembler import assemble

    words = np.append(assemble("nop\nnop\nhalt").words, 0xFFFFFFFF).astype("<u4")  # then garbage
    with pytest.raises(EncodingError) as info:
        disassemble_file(write(tmp_path / "rand.bin", words.tobytes()))
    assert_names(info.value, "rand.bin", "word 3", "0xffffffff")


def test_running_an_illegal_word_faults_at_its_pc(tmp_path):
    from npu.runtime.tools import run_program
    from npu.sim.functional import SimulationError

    from npu.isa.assembler import assemble

    words = np.array([assemble("nop").words[0], 0xFFFFFFFF], dtype="<u4")  # nop, then garbage
    with pytest.raises(SimulationError) as info:
        run_program(write(tmp_path / "garbage.bin", words.tobytes()), "dnpu-edge")
    assert_names(info.value, "garbage.bin", "pc 1", "illegal instruction")


# ---- programs that fault or do not halt --------------------------------------------------------

def test_program_that_never_halts_stops_at_the_instruction_limit_naming_pc(tmp_path):
    from npu.runtime.tools import run_program
    from npu.sim.functional import SimulationError

    source = write(tmp_path / "spin.s", "# spins\nstart: addi r1, r1, 1\n       j start\n")
    with pytest.raises(SimulationError) as info:
        run_program(source, "dnpu-edge", max_instructions=1000)
    assert_names(info.value, "spin.s", "instruction limit 1000", "without `halt`", "source line")
    assert info.value.instruction in ("addi r1, r1, 1", "j -1")


def test_program_running_off_its_end_names_the_end(tmp_path):
    from npu.runtime.tools import run_program
    from npu.sim.functional import SimulationError

    with pytest.raises(SimulationError) as info:
        run_program(write(tmp_path / "nohalt.s", "nop\n"), "dnpu-edge")
    assert_names(info.value, "nohalt.s", "pc 1", "without `halt`")


def test_store_outside_int_sram_names_address_and_instruction(tmp_path):
    from npu.runtime.tools import run_program
    from npu.sim.functional import SimulationError

    source = write(tmp_path / "oob.s", "lui r1, 0x7fff\nsw r1, 0(r1)\nhalt\n")
    with pytest.raises(SimulationError) as info:
        run_program(source, "dnpu-edge")
    assert_names(info.value, "oob.s", "pc 1", "source line 2", "`sw r1, 0(r1)`", "INT SRAM", "outside")


def test_dma_outside_dram_names_the_byte_range(tmp_path):
    from npu.runtime.tools import run_program
    from npu.sim.functional import SimulationError

    source = write(tmp_path / "dma.s", "addi r1, r0, 1\naddi r2, r0, 1\naddi r3, r0, 64\naset a1, r1, r0\n"
                                       "dld.v a1, r0, r2, r3, r3, r3, bf16\nwait dma\nhalt\n")
    with pytest.raises(SimulationError) as info:
        run_program(source, "dnpu-edge")
    assert_names(info.value, "dma.s", "source line 5", "dld.v", "DRAM bytes", "outside")


def test_dump_range_outside_memory_is_refused_before_the_run(tmp_path):
    from npu.runtime.tools import DumpRangeError, parse_dump, run_program

    with pytest.raises(DumpRangeError) as info:
        run_program(write(tmp_path / "ok.s", "halt\n"), "dnpu-edge", dumps=(parse_dump("int:16380:8"),))
    assert_names(info.value, "--dump-sram int:16380:8", "outside", "16384", "dnpu-edge")


@pytest.mark.parametrize("text, what", [("vector:0", "SPACE:START:COUNT"), ("tape:0:4", "unknown memory 'tape'"),
                                        ("fp:x:4", "integers"), ("fp:0:0", "COUNT >= 1")],
                         ids=["missing_count", "unknown_memory", "not_a_number", "zero_count"])
def test_malformed_dump_range_names_what_is_wrong(text, what):
    from npu.runtime.tools import DumpRangeError, parse_dump

    with pytest.raises(DumpRangeError) as info:
        parse_dump(text)
    assert_names(info.value, repr(text), what)


def test_run_reports_registers_and_memory_of_a_good_program(tmp_path):
    """The counterpart of the cases above: a program that halts gives its dumps."""
    from npu.runtime.tools import parse_dump, run_program

    source = write(tmp_path / "ok.s", "addi r1, r0, 5\naddi r2, r1, 7\nsw r2, 3(r0)\nhalt\n")
    report = run_program(source, "dnpu-edge", dump_registers=True, dumps=(parse_dump("int:0:4"),))
    assert "halted after 4 instructions" in report
    assert "r1=5 r2=12" in report
    assert report.splitlines()[-1].split() == ["0", "0", "0", "12"]


# ---- model presets ----------------------------------------------------------------------------

def model_preset(tmp_path: Path, edit, name: str = "tiny-sort") -> Path:
    """tiny-sort's preset after `edit(data)`, written as <tmp>/<name>.yaml."""
    data = yaml.safe_load(MODEL_PRESET.read_text())
    data["name"] = name
    edit(data)
    return write(tmp_path / f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))


def load_model(path):
    from npu.models.presets import load_model_spec

    return load_model_spec(path)


MODEL_CASES = {
    "decoding_key_typo": (lambda d: d["decoding"].update(block_len=d["decoding"].pop("block_length")),
                          "decoding.block_len", "unknown key"),
    "training_key_typo": (lambda d: d["training"].update(learning_rate=d["training"].pop("lr")),
                          "training.learning_rate", "unknown key"),
    "task_key_typo": (lambda d: d["task"].update(digits=d["task"].pop("n_digits")), "task", "digits"),
    "unknown_task": (lambda d: d["task"].update(name="juggle"), "task", "juggle"),
    "block_length_not_dividing_gen_length": (lambda d: d["decoding"].update(block_length=5),
                                             "decoding.block_length", "does not divide gen_length=12"),
    "steps_not_a_multiple_of_blocks": (lambda d: d["decoding"].update(steps=10), "decoding.steps", "10"),
    "wrong_type": (lambda d: d["architecture"].update(n_layers="four"), "architecture.n_layers", "expected int"),
    "float_for_int": (lambda d: d["architecture"].update(d_model=128.0), "architecture.d_model", "expected int"),
    "zero_layers": (lambda d: d["architecture"].update(n_layers=0), "architecture.n_layers", "0"),
    "negative_training_steps": (lambda d: d["training"].update(steps=-1), "training.steps", "-1"),
    "missing_architecture_key": (lambda d: d["architecture"].pop("d_model"), "architecture.d_model", "missing key"),
    "kv_heads_not_dividing_heads": (lambda d: d["architecture"].update(n_kv_heads=3), "architecture.n_kv_heads",
                                    "does not divide n_heads=4"),
    "vocab_not_the_task_vocab": (lambda d: d["architecture"].update(vocab_size=20), "architecture.vocab_size", "20"),
    "task_without_training": (lambda d: d.pop("training"), "training", "missing"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_bad_model_preset_names_file_and_key(tmp_path, case):
    edit, key, what = MODEL_CASES[case]
    path = model_preset(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_model(path)
    assert_names(info.value, str(path), key, what)


def test_model_schema_training_section_lists_exactly_the_train_config_fields():
    """Preset loading checks `training` by the schema alone (it does not import the training code),
    so the schema must know every TrainConfig field and no other."""
    import dataclasses

    from npu.config import load_schema
    from npu.models.train import TrainConfig

    schema = load_schema("model")["properties"]["training"]["properties"]
    assert set(schema) == {field.name for field in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("key, value", [("batch_size", 0), ("lr", 0.0), ("mask_ratio_floor", 1.0),
                                        ("block_fraction", 1.5), ("eval_every", -1)])
def test_every_value_train_config_refuses_the_schema_refuses(tmp_path, key, value):
    from npu.models.train import TrainConfig

    with pytest.raises(ValueError):
        TrainConfig(**{key: value})
    path = model_preset(tmp_path, lambda d: d["training"].update({key: value}))
    with pytest.raises(ConfigError) as info:
        load_model(path)
    assert_names(info.value, str(path), f"training.{key}")


def test_model_preset_yaml_syntax_error_names_file_and_line(tmp_path):
    text = MODEL_PRESET.read_text().replace("  n_layers: 4", "  n_layers: [4", 1)
    path = write(tmp_path / "tiny-sort.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_model(path)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "n_layers: [4" in row)
    assert_names(info.value, str(path), "YAML syntax error", f"line {line + 1}")


def test_model_preset_whose_name_differs_from_its_file_is_refused(tmp_path):
    path = model_preset(tmp_path, lambda d: d.update(name="tiny-sorted"))
    path = path.rename(tmp_path / "tiny-sort.yaml")
    with pytest.raises(ConfigError) as info:
        load_model(path)
    assert_names(info.value, "tiny-sort.yaml", "name", "tiny-sorted")


def test_unknown_model_preset_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        load_model("tiny-sortt")
    assert_names(info.value, "'tiny-sortt'", "tiny-sort")


# ---- NPU presets ------------------------------------------------------------------------------

def npu_preset(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(NPU_PRESET.read_text())
    edit(data)
    return write(tmp_path / "mine.yaml", yaml.safe_dump(data, sort_keys=False))


NPU_CASES = {
    "key_typo": (lambda d: d.update(vlan=d.pop("vlen")), "vlan", "unknown key"),
    "missing_key": (lambda d: d.pop("mlen"), "mlen", "missing key"),
    "wrong_type": (lambda d: d.update(mlen="sixty-four"), "mlen", "expected int"),
    "zero_array": (lambda d: d.update(mlen=0), "mlen", "0"),
    "negative_sram": (lambda d: d["vector_sram"].update(size_bytes=-1), "vector_sram.size_bytes", "-1"),
    "unknown_weight_format": (lambda d: d["formats"].update(weights="mxint5"), "formats.weights", "mxint5"),
    "unknown_technology": (lambda d: d.update(technology="tsmc-1nm"), "technology", "tsmc-1nm"),
}


@pytest.mark.parametrize("case", list(NPU_CASES))
def test_bad_npu_preset_names_file_and_key(tmp_path, case):
    from npu.hw.config import NPUConfigError, load_npu_config

    edit, key, what = NPU_CASES[case]
    with pytest.raises(NPUConfigError) as info:
        load_npu_config(npu_preset(tmp_path, edit))
    assert_names(info.value, "mine.yaml", key, what)


def test_npu_preset_yaml_syntax_error_names_file_and_line(tmp_path):
    from npu.hw.config import NPUConfigError, load_npu_config

    path = write(tmp_path / "mine.yaml", "name: mine\nmlen: 64\nvlen: {64\n")
    with pytest.raises(NPUConfigError) as info:
        load_npu_config(path)
    assert_names(info.value, str(path), "YAML syntax error", "line")
    assert one_line(info.value).count(str(path)) == 1


def test_unknown_npu_preset_lists_the_known_ones():
    from npu.hw.config import NPUConfigError, load_npu_config

    with pytest.raises(NPUConfigError) as info:
        load_npu_config("dnpu-clod")
    assert_names(info.value, "'dnpu-clod'", "dnpu-cloud", "dnpu-edge")


# ---- the pipeline's config.yaml ---------------------------------------------------------------

def pipeline_config(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(PIPELINE_CONFIG.read_text())
    edit(data)
    return write(tmp_path / "config.yaml", yaml.safe_dump(data, sort_keys=False))


CONFIG_CASES = {
    "missing_required_key": (lambda d: d.pop("npus"), "npus", "missing key"),
    "misspelled_key": (lambda d: d.update(npu=d.pop("npus")), "npu", "unknown key"),
    "wrong_type": (lambda d: d["evaluate"].update(n_samples="many"), "evaluate.n_samples", "expected int"),
    "zero_count": (lambda d: d["quantization"].update(prompts=0), "quantization.prompts", "0"),
    "bad_choice": (lambda d: d["simulate"].update(cycle_dram="ddr9"), "simulate.cycle_dram", "ddr9"),
    "bad_roofline_source": (lambda d: d["simulate"].update(roofline_attained="rtl"), "simulate.roofline_attained",
                            "rtl"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_pipeline_config_names_file_and_key_in_one_line(tmp_path, case):
    edit, key, what = CONFIG_CASES[case]
    path = pipeline_config(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_validated_yaml(path, "config")
    line = assert_names(info.value, str(path), key, what)
    assert len(line) < 300  # the problem itself, not a dump of the schema


def test_pipeline_config_yaml_syntax_error_names_file_and_line(tmp_path):
    text = PIPELINE_CONFIG.read_text().replace("npus: [dnpu-cloud", "npus: [dnpu-cloud:", 1)
    text = re.sub(r"train:\n  threads: (\d+)", r"train:\n threads: \1\n   bad: indent", text, count=1)
    assert "bad: indent" in text  # the edit found its place in config.yaml
    path = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_validated_yaml(path, "config")
    assert_names(info.value, str(path), "YAML syntax error", "line")


def test_empty_pipeline_config_is_named_not_a_mapping(tmp_path):
    from npu.config import load_pipeline_config

    path = write(tmp_path / "config.yaml", "# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline_config([path])
    assert_names(info.value, str(path), "expected a mapping", "empty file")


def test_pipeline_config_syntax_error_in_a_later_configfile_names_that_file_and_line(tmp_path):
    from npu.config import load_pipeline_config

    extra = write(tmp_path / "extra.yaml", "npus: [dnpu-edge]\nsimulate:\n  cycle_dram: jedec\n   oops: 1\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline_config([PIPELINE_CONFIG, extra])
    assert_names(info.value, str(extra), "line 4", "YAML syntax error")


def test_pipeline_config_override_with_a_bad_value_names_the_key():
    """`--config simulate='{cycle_dram: ddr9}'` is checked like the file it overrides."""
    from npu.config import load_pipeline_config

    with pytest.raises(ConfigError) as info:
        load_pipeline_config([PIPELINE_CONFIG], {"simulate": {"cycle_dram": "ddr9"}})
    assert_names(info.value, f"{PIPELINE_CONFIG} + --config: simulate.cycle_dram", "'ddr9'")


# ---- the NPU-arithmetic reference, exact mode and the analytical model -------------------------

def test_reference_gemm_refuses_operands_whose_k_differ():
    """A K remainder is zero-padded (tests/test_ragged_shapes.py), but mismatched operands are an error."""
    from npu.compiler.asm import CompileError
    from npu.compiler.linear import reference_gemm

    with pytest.raises(CompileError) as info:
        reference_gemm(np.ones((4, 96), np.float32), np.ones((64, 64), np.float32), 64)
    assert_names(info.value, "K=96", "K=64")


def small_model(head_dim: int):
    """tiny-sort with one layer and another head_dim (24: not a power of two, so RoPE's vrothalf
    cannot rotate it on any preset; widths no longer matter, they are padded to MLEN)."""
    import dataclasses

    from npu.models.presets import load_model_spec

    spec = load_model_spec("tiny-sort")
    return dataclasses.replace(spec.architecture, name=f"tiny-sort-hd{head_dim}", head_dim=head_dim, n_layers=1)


def test_reference_step_refuses_what_the_compiler_refuses():
    from npu.compiler.asm import CompileError
    from npu.compiler.context import StepSpec
    from npu.compiler.layout import Shapes
    from npu.compiler.reference import ReferenceState, reference_step
    from npu.hw.config import load_npu_config

    shapes = Shapes(small_model(24), load_npu_config("dnpu-edge"), 25)
    seq = np.zeros(25, np.int32)
    with pytest.raises(CompileError) as info:
        reference_step(StepSpec(shapes, 25, 12, "topk"), {}, ReferenceState.start(shapes, seq), 0, 13, k=1)
    assert_names(info.value, "dnpu-edge", "tiny-sort-hd24", "head_dim=24", "power of two")


def test_exact_mode_refuses_a_model_the_compiler_refuses_before_decoding():
    from npu.check.exact import check_fits
    from npu.compiler.asm import CompileError

    with pytest.raises(CompileError) as info:
        check_fits("sort24", small_model(24), "dnpu-cloud", 25, (8, 4))
    assert_names(info.value, "exact mode", "'sort24'", "head_dim=24")


def test_exact_stage_writes_no_table_for_a_model_the_machine_cannot_run(tmp_path, small_add_checkpoint):
    """BAOS KV on ar-npu, which lacks the dLLM KV instructions: refused by name before any decoding.
    (The 64-wide test model on dnpu-cloud's 128-wide array, once refused here, now compiles padded.)"""
    from npu.compiler.asm import CompileError
    from npu.quant.experiments import ModelSource
    from npu.stages.quantize import exact_accuracy_stage

    out = tmp_path / "exact.tsv"
    with pytest.raises(CompileError) as info:
        exact_accuracy_stage([ModelSource(str(small_add_checkpoint), "small-add")], "ar-npu", (4,), 2, out,
                             log=lambda line: None)
    assert_names(info.value, "'small-add'", "ar-npu", "dllm_instructions")
    assert not out.exists()


def analytical_rows(npu_name: str, preset: Path, tmp_path: Path) -> list[dict]:
    from npu.stages.simulate import simulate_analytical_stage

    out = simulate_analytical_stage(npu_name, str(preset), tmp_path / "analytical.tsv")
    return list(csv.DictReader(out.open(), delimiter="\t"))


def assert_no_figures(row: dict, *reason: str) -> None:
    """A refused generation: its status names the compiler's reason and no figure is a number."""
    assert row["status"].startswith("not compilable: ")
    for name in reason:
        assert name in row["status"], row["status"]
    for column in ("tokens_per_s", "latency_per_token_ms", "energy_per_token_mj", "dram_mb_per_token"):
        assert row[column] in ("", "nan"), (column, row[column])


def test_analytical_table_has_no_figures_for_a_model_that_does_not_compile(tmp_path):
    preset = model_preset(tmp_path, lambda d: d["architecture"].update(head_dim=24), name="tiny-sort-hd24")
    rows = analytical_rows("dnpu-edge", preset, tmp_path)
    assert len(rows) == 6
    for row in rows:
        assert_no_figures(row, "tiny-sort-hd24", "head_dim=24")


def test_analytical_table_has_figures_for_a_d_model_neither_mlen_nor_the_mx_blocks_divide(tmp_path):
    """d_model 100 (once refused: no machine tiled it) compiles zero-padded to MLEN, so every
    generation of the table has figures."""
    preset = model_preset(tmp_path, lambda d: d["architecture"].update(d_model=100), name="tiny-sort-100")
    rows = analytical_rows("ar-npu", preset, tmp_path)
    assert len(rows) == 6
    for row in rows:
        assert row["status"] == "ok", row["status"]
        assert float(row["tokens_per_s"]) > 0


def test_compiled_step_that_overruns_its_instruction_budget_names_block_step_and_program(monkeypatch):
    """A compiled step runs under a budget from the compiler's own count (not 2^31 instructions)."""
    import importlib

    from npu.hw.config import load_npu_config
    from npu.ir import weights_from_model
    from npu.models.decoding import DecodeConfig
    from npu.models.transformer import build_model
    from npu.sim.functional import SimulationError

    runtime = importlib.import_module("npu.runtime.generate")  # npu.runtime.generate is also a function
    config = dataclasses.replace(small_model(32), d_model=64)
    weights = weights_from_model(build_model(config).init_weights(0))
    plan = DecodeConfig(gen_length=12, block_length=4, steps=12)
    stepper = runtime.SimulatorStepper(config, weights, load_npu_config("dnpu-edge"), 25, plan.sampling)
    monkeypatch.setattr(runtime, "step_instruction_limit", lambda compiled: 50)
    with pytest.raises(SimulationError) as info:
        runtime.generate(stepper, [1] * 13, plan, config.mask_token_id)
    assert_names(info.value, "generation block 0, step 0", "step program (query_length 25, sample_length 4",
                 "no `halt` within 50 instructions")
    assert runtime.step_instruction_limit(stepper.program(25, 4)) < 1 << 31


# ---- checkpoints ------------------------------------------------------------------------------

def test_truncated_checkpoint_weights_name_the_file(small_add_checkpoint):
    from npu.models.checkpoint import CheckpointError, load_checkpoint

    weights = small_add_checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(small_add_checkpoint)
    assert_names(info.value, "model.safetensors")


def test_corrupted_checkpoint_weights_fail_their_checksum(small_add_checkpoint):
    from npu.models.checkpoint import CheckpointError, load_checkpoint

    weights = small_add_checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(small_add_checkpoint)
    assert_names(info.value, "model.safetensors", "SHA-256")


def test_truncated_checkpoint_metadata_names_the_file(small_add_checkpoint):
    from npu.models.checkpoint import CheckpointError, load_checkpoint

    meta = small_add_checkpoint / "meta.json"
    meta.write_text(meta.read_text()[:40])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(small_add_checkpoint)
    assert_names(info.value, "meta.json", "truncated or corrupt")


def test_folder_that_is_not_a_checkpoint_is_named(tmp_path):
    from npu.models.checkpoint import CheckpointError, load_checkpoint

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path)
    assert_names(info.value, "meta.json", "not found")


# ---- npu verify ------------------------------------------------------------------------------

def run_main(main, argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of an argparse entry point run in-process."""
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err


def assert_one_error_line(status: int, err: str, *names: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2
    assert "Traceback" not in err
    assert "error:" in lines[-1]
    for name in names:
        assert name in lines[-1], f"{name!r} not in {lines[-1]!r}"


@pytest.mark.parametrize("argv, names", [
    (["--cache", "bogus"], ["--cache", "'bogus'"]),
    (["--rule", "bogus"], ["--rule", "'bogus'"]),
    (["--prompts", "0"], ["--prompts", "at least 1"]),
    (["--prompts", "-3"], ["--prompts", "at least 1"]),
    (["--temperature", "-1"], ["--temperature", ">= 0"]),
    (["--npu", "dnpu-clod"], ["--npu", "'dnpu-clod'", "known: ar-npu, dnpu-cloud, dnpu-edge"]),
], ids=["unknown_cache_mode", "unknown_rule", "zero_prompts", "negative_prompts", "negative_temperature",
        "unknown_npu_preset"])
def test_verify_rejects_bad_arguments_at_parse_time(tmp_path, capsys, argv, names):
    from npu.cli import main

    out = tmp_path / "report.json"
    status, err = run_main(main, ["verify", "--checkpoint", str(tmp_path), *argv, "--out", str(out)], capsys)
    assert_one_error_line(status, err, *names)
    assert not out.exists()


def test_verify_on_a_bad_checkpoint_is_one_line_without_traceback(tmp_path, capsys):
    from npu.cli import main

    out = tmp_path / "report.json"
    status, err = run_main(main, ["verify", "--checkpoint", str(tmp_path / "nothing"), "--out", str(out)], capsys)
    assert_one_error_line(status, err, "meta.json", "not found")
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_verify_checks_every_npu_preset_before_the_first_run(small_add_checkpoint, tmp_path, capsys):
    from npu.cli import main

    broken = npu_preset(tmp_path, lambda d: d.update(mlen=0))
    out = tmp_path / "report.json"
    status, err = run_main(main, ["verify", "--checkpoint", str(small_add_checkpoint), "--npu", "dnpu-edge", str(broken),
                                  "--prompts", "1", "--out", str(out)], capsys)
    assert_one_error_line(status, err, "mine.yaml", "mlen")
    assert not out.exists() and "identical" not in capsys.readouterr().out


# ---- the npu command: one line, exit status 2, no traceback, no partial output -----------------

def npu(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `npu ARGV` run in-process."""
    from npu.cli import main

    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_cli_error(result: tuple[int, str, str], stage: str, *names: str) -> None:
    """Exit status 2 and exactly one line on stderr (argparse's usage line aside), naming `names`."""
    status, _out, err = result
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"npu {stage}: error: "), lines[0]
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"


def test_npu_asm_then_disasm_round_trips_a_program(tmp_path, capsys):
    source = write(tmp_path / "ok.s", "addi r1, r0, 5\nloop: addi r1, r1, -1\nbne r1, r0, loop\nhalt\n")
    status, _out, err = npu(["asm", str(source), "-o", str(tmp_path / "ok.bin")], capsys)
    assert status == 0 and "4 instruction words" in err
    status, listing, _err = npu(["disasm", str(tmp_path / "ok.bin")], capsys)
    assert status == 0
    again = write(tmp_path / "again.s", listing)
    assert npu(["asm", str(again), "-o", str(tmp_path / "again.bin")], capsys)[0] == 0
    assert (tmp_path / "again.bin").read_bytes() == (tmp_path / "ok.bin").read_bytes()


def test_npu_asm_on_garbage_names_file_line_and_writes_nothing(tmp_path, capsys):
    source = write(tmp_path / "bad.s", "nop\nfrob r1\n")
    out = tmp_path / "bad.bin"
    assert_cli_error(npu(["asm", str(source), "-o", str(out)], capsys), "asm", f"{source}:2:1:", "'frob'")
    assert not out.exists()


def test_npu_disasm_on_random_bytes_names_the_word(tmp_path, capsys):
    binary = write(tmp_path / "rand.bin", np.full(3, 0xFFFFFFFF, dtype="<u4").tobytes())
    assert_cli_error(npu(["disasm", str(binary)], capsys), "disasm", "rand.bin", "word 0")


def test_npu_disasm_on_a_truncated_binary_names_the_byte_count(tmp_path, capsys):
    binary = write(tmp_path / "cut.bin", b"\x00" * 6)
    assert_cli_error(npu(["disasm", str(binary)], capsys), "disasm", "cut.bin", "6 bytes")


def test_npu_run_prints_registers_and_memory(tmp_path, capsys):
    source = write(tmp_path / "ok.s", "addi r1, r0, 5\nsw r1, 2(r0)\nhalt\n")
    status, out, _err = npu(["run", str(source), "--dump-registers", "--dump-sram", "int:0:4"], capsys)
    assert status == 0
    assert "halted after 3 instructions" in out and "r1=5" in out and out.splitlines()[-1].split() == ["0", "0", "5", "0"]


def test_npu_run_stops_a_program_that_does_not_halt(tmp_path, capsys):
    source = write(tmp_path / "spin.s", "start: j start\n")
    assert_cli_error(npu(["run", str(source), "--max-instructions", "500"], capsys), "run",
                     "spin.s", "pc 0", "`j 0`", "instruction limit 500")


def test_npu_run_names_an_out_of_bounds_access(tmp_path, capsys):
    source = write(tmp_path / "oob.s", "lui r1, 0x7fff\nlw r2, 0(r1)\nhalt\n")
    assert_cli_error(npu(["run", str(source)], capsys), "run", "oob.s", "pc 1", "lw r2, 0(r1)", "outside")


@pytest.mark.parametrize("argv, names", [
    (["--max-instructions", "0"], ["--max-instructions", "at least 1"]),
    (["--dump-sram", "tape:0:4"], ["--dump-sram", "unknown memory 'tape'"]),
    (["--npu", "dnpu-clod"], ["--npu", "'dnpu-clod'"]),
    (["--dram-bytes", "-5"], ["--dram-bytes", "at least 1"]),
], ids=["zero_instruction_limit", "unknown_memory", "unknown_npu_preset", "negative_dram_size"])
def test_npu_run_rejects_bad_arguments_at_parse_time(tmp_path, capsys, argv, names):
    source = write(tmp_path / "ok.s", "halt\n")
    assert_cli_error(npu(["run", str(source), *argv], capsys), "run", *names)


def test_npu_run_refuses_a_dump_range_outside_the_memory_before_running(tmp_path, capsys):
    source = write(tmp_path / "ok.s", "halt\n")
    status, out, err = npu(["run", str(source), "--dump-sram", "fp:16380:10"], capsys)
    assert_cli_error((status, out, err), "run", "--dump-sram fp:16380:10", "outside")
    assert out == ""


@pytest.mark.parametrize("argv, names", [
    (["kv-exact", "--checkpoint", "a=b", "--prompts", "0", "--out", "x.tsv"], ["--prompts", "at least 1"]),
    (["kv-accuracy", "--checkpoint", "a=b", "--prompts", "-4", "--out", "x.tsv"], ["--prompts", "at least 1"]),
    (["evaluate", "--preset", "tiny-sort", "--checkpoint", "c", "--out", "x.tsv", "--n-samples", "0"],
     ["--n-samples"]),
    (["evaluate", "--preset", "tiny-sort", "--checkpoint", "c", "--out", "x.tsv", "--thresholds", "1.5"],
     ["--thresholds", "(0, 1]"]),
    (["train", "--preset", "tiny-sortt", "--out", "ckpt"], ["--preset", "'tiny-sortt'"]),
    (["compile", "--npu", "dnpu-clod", "--ir-dir", "ir", "--out-dir", "out"], ["--npu", "known: ar-npu"]),
    (["simulate-cycle", "--npu", "dnpu-edge", "--model", "tiny-sort", "--compile-dir", "c", "--out", "a",
      "--generation-out", "b", "--dram", "ddr9"], ["--dram", "'ddr9'"]),
    (["export", "--preset", "tiny-sort", "--out-dir", "ir", "--cache-modes", "full"], ["--cache-modes", "'full'"]),
    (["roofline", "--npu", "dnpu-cloud", "--compile-dir", "c", "--out", "a", "--figure", "b", "--attained", "rtl"],
     ["--attained", "'rtl'"]),
    (["roofline", "--npu", "dnpu-cloud", "--compile-dir", "c", "--out", "a", "--figure", "b",
      "--max-instructions", "0"], ["--max-instructions", "at least 1"]),
], ids=["kv_exact_zero_prompts", "kv_accuracy_negative_prompts", "evaluate_zero_samples",
        "evaluate_threshold_above_one", "train_unknown_preset", "compile_unknown_npu", "cycle_unknown_dram_model",
        "export_unknown_cache_mode", "roofline_unknown_attained_source", "roofline_zero_instruction_limit"])
def test_npu_rejects_bad_arguments_at_parse_time_naming_the_option(tmp_path, capsys, monkeypatch, argv, names):
    monkeypatch.chdir(tmp_path)
    assert_cli_error(npu(argv, capsys), argv[0], *names)
    assert list(tmp_path.iterdir()) == []


def test_npu_export_with_a_decoding_typo_names_file_and_key(tmp_path, capsys):
    preset = model_preset(tmp_path, lambda d: d["decoding"].update(block_len=d["decoding"].pop("block_length")))
    out = tmp_path / "ir"
    assert_cli_error(npu(["export", "--preset", str(preset), "--out-dir", str(out)], capsys), "export",
                     "tiny-sort.yaml", "decoding.block_len")
    assert not out.exists()


def test_npu_evaluate_on_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "accuracy.tsv"
    assert_cli_error(npu(["evaluate", "--preset", "tiny-sort", "--checkpoint", str(tmp_path / "none"),
                          "--out", str(out)], capsys), "evaluate", "meta.json")
    assert not out.exists()


def test_npu_kv_exact_with_an_unlabelled_checkpoint_names_the_expected_form(tmp_path, capsys):
    out = tmp_path / "exact.tsv"
    assert_cli_error(npu(["kv-exact", "--checkpoint", str(tmp_path), "--out", str(out)], capsys), "kv-exact",
                     "LABEL=CHECKPOINT_DIR")
    assert not out.exists()


def test_npu_kv_accuracy_with_a_malformed_static_factor_names_the_option(tmp_path, capsys):
    out = tmp_path / "accuracy.tsv"
    assert_cli_error(npu(["kv-accuracy", "--checkpoint", f"a={tmp_path}", "--static", "factors.json",
                          "--out", str(out)], capsys), "kv-accuracy", "--static", "LABEL=JSON", "'factors.json'")
    assert not out.exists()


def test_npu_compile_without_graphs_names_the_folder(tmp_path, capsys):
    assert_cli_error(npu(["compile", "--npu", "dnpu-edge", "--ir-dir", str(tmp_path), "--out-dir",
                          str(tmp_path / "out")], capsys), "compile", str(tmp_path), "step_<mode>.json")


def compile_dir_with_listing(tmp_path: Path, listing: str) -> Path:
    """A compile folder whose refresh program is `listing` (as the compile stage writes it)."""
    folder = tmp_path / "compiled"
    write(folder / "refresh.s", listing)
    write(folder / "compile.tsv", "npu\tmodel\tstep\tquery_length\tstatus\texecuted_instructions\terror\n"
                                  "dnpu-edge\ttiny-sort\trefresh\t25\tok\t10\t\n")
    return folder


def test_npu_simulate_cycle_on_a_bad_listing_names_file_and_line(tmp_path, capsys):
    folder = compile_dir_with_listing(tmp_path, "nop\naddi r1, r0\nhalt\n")
    out, traces = tmp_path / "cycle.tsv", tmp_path / "traces"
    assert_cli_error(npu(["simulate-cycle", "--npu", "dnpu-edge", "--model", "tiny-sort", "--compile-dir",
                          str(folder), "--out", str(out), "--generation-out", str(tmp_path / "gen.tsv"),
                          "--trace-dir", str(traces)], capsys),
                     "simulate-cycle", "refresh.s:2:", "expected 3 operand")
    assert not out.exists() and not traces.exists() and not (tmp_path / "gen.tsv").exists()


def test_npu_crossvalidate_on_a_bad_listing_names_file_and_line(tmp_path, capsys):
    folder = compile_dir_with_listing(tmp_path, "halt\nbogus\n")
    out = tmp_path / "crossval.tsv"
    assert_cli_error(npu(["crossvalidate", "--npu", "dnpu-edge", "--compile-dir", str(folder), "--out", str(out)],
                         capsys), "crossvalidate", "refresh.s:2:1:", "unknown mnemonic 'bogus'")
    assert not out.exists()


def test_npu_simulate_analytical_writes_a_status_and_no_figures_for_a_model_that_does_not_compile(tmp_path, capsys):
    preset = model_preset(tmp_path, lambda d: d["architecture"].update(head_dim=24), name="tiny-sort-hd24")
    out = tmp_path / "analytical.tsv"
    status, _out, err = npu(["simulate-analytical", "--npu", "dnpu-edge", "--model", str(preset), "--out", str(out)],
                            capsys)
    assert status == 0 and "not compilable" in err
    for row in csv.DictReader(out.open(), delimiter="\t"):
        assert_no_figures(row, "head_dim=24")


# ---- snakemake -n: the pipeline's own configuration ---------------------------------------------

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake_dry_run(workdir: Path, *args: str) -> tuple[int, str]:
    """(exit status, stdout + stderr) of `snakemake -n` in `workdir` with the repository's Snakefile."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([str(SNAKEMAKE), "-n", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
                            capture_output=True, text=True, env=env, timeout=300)
    return result.returncode, result.stdout + result.stderr


def assert_pipeline_refuses(workdir: Path, status: int, output: str, *names: str) -> None:
    """Failed before any job: no traceback, no schema dump, no results folder; one line per problem."""
    assert status != 0
    assert "Traceback" not in output and "properties" not in output
    problems = [line for line in output.splitlines() if line.startswith("dnpu: ")]
    assert problems and len(output.strip().splitlines()) <= 3, output
    for name in names:
        assert name in problems[0], f"{name!r} not in {problems[0]!r}"
    assert not (workdir / "results").exists()


def config_text(edit=None) -> str:
    data = yaml.safe_load(PIPELINE_CONFIG.read_text())
    data["config_dir"] = str(REPO / "config")
    if edit is not None:
        edit(data)
    return yaml.safe_dump(data, sort_keys=False)


def test_snakemake_names_file_and_line_of_a_yaml_error_in_config_yaml(tmp_path):
    text = config_text().replace("npus:\n- dnpu-cloud\n", "npus: [dnpu-cloud\n", 1)
    write(tmp_path / "config" / "config.yaml", text)
    status, output = snakemake_dry_run(tmp_path)
    assert_pipeline_refuses(tmp_path, status, output, "config/config.yaml: line", "YAML syntax error",
                            "flow sequence at line")


@pytest.mark.parametrize("edit, names", [
    (lambda d: d.pop("npus"), ["config.yaml: npus: missing key"]),
    (lambda d: d.update(npu=d.pop("npus")), ["config.yaml: npu: unknown key"]),
    (lambda d: d["evaluate"].update(n_samples="many"), ["config.yaml: evaluate.n_samples: expected int"]),
    (lambda d: d["models"].update(trained=["tiny-sortt"]),
     ["config: models.trained: unknown models preset 'tiny-sortt'", "tiny-sort"]),
    (lambda d: d.update(npus=["dnpu-clod"]), ["config: npus: unknown npu preset 'dnpu-clod'", "dnpu-cloud"]),
], ids=["missing_key", "misspelled_key", "wrong_type", "unknown_model_preset", "unknown_npu_preset"])
def test_snakemake_names_file_and_key_of_a_bad_configfile_in_one_line(tmp_path, edit, names):
    configfile = write(tmp_path / "config.yaml", config_text(edit))
    status, output = snakemake_dry_run(tmp_path, "--configfile", str(configfile))
    assert_pipeline_refuses(tmp_path, status, output, *names)


def test_snakemake_checks_every_npu_preset_the_run_names_in_full_before_any_job(tmp_path):
    import shutil

    shutil.copytree(REPO / "config", tmp_path / "presets")
    preset = tmp_path / "presets" / "npu" / "dnpu-edge.yaml"
    preset.write_text(preset.read_text().replace("mlen: 64", "mlen: 48"))
    configfile = write(tmp_path / "config.yaml", config_text(lambda d: d.update(config_dir=str(tmp_path / "presets"))))
    status, output = snakemake_dry_run(tmp_path, "--configfile", str(configfile))
    assert_pipeline_refuses(tmp_path, status, output, "config: npus:", "dnpu-edge.yaml: mlen: 48")


def test_snakemake_checks_a_config_override_like_the_file(tmp_path):
    configfile = write(tmp_path / "config.yaml", config_text())
    status, output = snakemake_dry_run(tmp_path, "--configfile", str(configfile), "--config", "results_dir=5")
    assert_pipeline_refuses(tmp_path, status, output, "config.yaml + --config: results_dir: expected str, got 5")
