"""Pipeline stages of the KV-quantization work and the K/V distribution analysis, on tiny checkpoints."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from npu.models.checkpoint import CheckpointError, save_checkpoint
from npu.models.decoding import DecodeConfig
from npu.models.loading import save_in_llada_layout
from npu.models.tasks import SortDigits
from npu.models.transformer import ModelConfig, build_model
from npu.quant.kv_analysis import collect_kv_trace, kv_statistics
from npu.quant.outliers import OutlierSpec
from npu.quant.smoothing import StaticSmoothing
from npu.quant.experiments import ModelSource, quick_sizes
from npu.stages.quantize import (
    ablation_stage,
    accuracy_stage,
    calibrate_stage,
    kv_analysis_stage,
    llada_fidelity_stage,
)

CONFIG = ModelConfig(name="tiny-sort4", vocab_size=12, mask_token_id=11, n_layers=2, d_model=64, n_heads=2,
                     n_kv_heads=2, head_dim=32, d_ff=128, max_seq_len=9)
PRESET = {"name": "tiny-sort4", "task": {"name": "sort", "n_digits": 4},
          "decoding": {"gen_length": 4, "block_length": 2, "steps": 4}}


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-sort4"
    model = build_model(CONFIG).init_weights(0)
    save_checkpoint(folder, model, CONFIG, {"preset": PRESET})
    return str(folder)


def read_tsv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_calibrate_stage_writes_loadable_factors(checkpoint, tmp_path) -> None:
    path = calibrate_stage(checkpoint, tmp_path / "out" / "static.json", n_sequences=8)
    smoothing = StaticSmoothing.load(path)
    smoothing.check_fits(2, 2, 32)
    assert json.loads(path.read_text())["kind"] == "static-key-smoothing"


def test_a_missing_checkpoint_is_named(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint metadata not found"):
        calibrate_stage(tmp_path / "nothing", tmp_path / "static.json")


def test_accuracy_stage_writes_the_grid_as_tsv_and_json(checkpoint, tmp_path) -> None:
    sources = [ModelSource(checkpoint, "plain"), ModelSource(checkpoint, "outliers", outliers=OutlierSpec(key_pairs=1))]
    rows = accuracy_stage(sources, tmp_path / "acc.tsv", tmp_path / "acc.json", methods=("bf16", "baos-mxint"),
                          bits=(16, 2), cache_modes=("dual",), sizes=quick_sizes(8))
    table = read_tsv(tmp_path / "acc.tsv")
    assert len(table) == len(rows) == 4 and {r["model"] for r in table} == {"plain", "outliers"}
    assert json.loads((tmp_path / "acc.json").read_text())["sizes"]["exact_match_prompts"] == 8


def test_ablation_stage_labels_each_variant(checkpoint, tmp_path) -> None:
    variants = {"default": {}, "pow2 scales": {"scale": "pow2"}}
    rows = ablation_stage(ModelSource(checkpoint, "plain"), tmp_path / "ablation.tsv", bits=(4,),
                          storages=("baos-int",), variants=variants, sizes=quick_sizes(8))
    assert [r["variant"] for r in rows] == ["default", "pow2 scales"]
    assert len(read_tsv(tmp_path / "ablation.tsv")) == 2


def test_kv_analysis_stage_writes_a_table_and_a_png(checkpoint, tmp_path) -> None:
    rows = kv_analysis_stage([ModelSource(checkpoint, "plain")], tmp_path / "kv.tsv", tmp_path / "kv.png", n_prompts=4)
    assert len(rows) == 2 * 2  # layers x (K, V)
    assert (tmp_path / "kv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {r["tensor"] for r in read_tsv(tmp_path / "kv.tsv")} == {"K", "V"}


def test_the_trace_knows_blocks_steps_and_mask_rows() -> None:
    model = build_model(CONFIG).init_weights(1).eval()
    decode = DecodeConfig(4, 2, 4, cache="dual")
    trace = collect_kv_trace(model, SortDigits(4), decode, n_prompts=3)
    assert len(trace.writes) == 4 * 2  # 4 forward passes x 2 layers
    first = trace.writes[0]
    assert (first.block, first.step, first.start, first.end) == (0, 0, 0, 9)
    assert first.masked[:, 5:].all() and not first.masked[:, :5].any()
    later = trace.writes[2]  # block 0, step 1, dual: only the block's two rows
    assert (later.block, later.step, later.start, later.end) == (0, 1, 5, 7)
    rows = kv_statistics(trace)
    assert all(r["absmax"] > 0 and r["channel_max_over_median"] >= 1 for r in rows)
    with pytest.raises(ValueError, match="cached decoding mode"):
        collect_kv_trace(model, SortDigits(4), DecodeConfig(4, 2, 4), n_prompts=1)


def test_llada_fidelity_stage_runs_on_a_checkpoint_in_llada_layout(tmp_path) -> None:
    config = ModelConfig(name="tiny-llada", vocab_size=50, mask_token_id=49, n_layers=2, d_model=64, n_heads=2,
                         n_kv_heads=2, head_dim=32, d_ff=96, max_seq_len=32)
    save_in_llada_layout(build_model(config).init_weights(0), tmp_path / "llada")
    rows = llada_fidelity_stage(tmp_path / "llada", tmp_path / "fidelity.tsv", methods=("int", "mxfp"), bits=(8, 3),
                                n_prompts=2, prompt_length=8, gen_length=8, block_length=4)
    by_key = {(r["method"], r["bits"]): r for r in rows}
    assert by_key[("mxfp", 3)]["status"].startswith("n/a")
    assert 0.0 <= by_key[("int", 3)]["token_agreement"] <= 1.0
    assert by_key[("int", 8)]["token_agreement"] >= by_key[("int", 3)]["token_agreement"] - 0.5
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([[1, 2, 3]]))
    rows = llada_fidelity_stage(tmp_path / "llada", tmp_path / "f2.tsv", methods=("int",), bits=(4,),
                                prompts_json=prompts, gen_length=4, block_length=2)
    assert rows[0]["status"] == "ok"


def test_an_interrupted_grid_resumes_from_its_journal(checkpoint, tmp_path) -> None:
    journal = tmp_path / "acc.jsonl"
    kwargs = dict(methods=("bf16", "int"), bits=(16, 4), cache_modes=("dual",), sizes=quick_sizes(4), journal=journal)
    first = accuracy_stage([ModelSource(checkpoint, "plain")], tmp_path / "a.tsv", **kwargs)
    lines = journal.read_text().splitlines()
    assert len(lines) == 2
    forged = json.loads(lines[1]) | {"value": 0.123}
    journal.write_text(lines[0] + "\n" + json.dumps(forged) + "\n{\"torn")
    again = accuracy_stage([ModelSource(checkpoint, "plain")], tmp_path / "b.tsv", **kwargs)
    assert again[0] == first[0] and again[1]["value"] == 0.123  # taken from the journal, not recomputed
