"""KV-cache DRAM traffic per generated token for each KV method, from the analytical NPU model.

The analytical model (npu.sim.analytical.NpuStepModel) prices a whole generation operator by
operator; its `attention` operators stream the cached K/V tiles from DRAM and its `kv_write`
operators store the new entries, both in the preset's `formats.kv_cache` (bf16 on every shipped
preset). A KV method changes only how many bits each of those elements takes, so its KV traffic is
the bf16 traffic scaled by `kv_element_bits(method, bits) / 16` (npu.quant.storage: scales and
zero points included). KIVI keeps the current block in bf16: that share of the writes stays at
16 bits. The rest of the generation's DRAM traffic (weights, activations, logits) is unchanged.
The model costs compiled programs; npu.quant does not import the compiler, so the caller passes
the lowering in (npu.runtime.lowering.step_program).
"""

from __future__ import annotations

from npu.hw.config import load_npu_config
from npu.io import write_tsv
from npu.quant.methods import get_method
from npu.quant.storage import DEFAULT_GROUP, channel_group, kv_element_bits
from npu.sim.analytical.generation import step_schedule
from npu.sim.analytical.npu_ops import Lowering, NpuStepModel
from npu.sim.analytical.stages import model_scenarios

KV_OPERATOR_KINDS = ("attention", "kv_write")


def kv_traffic_of_generation(machine: NpuStepModel, model, setup) -> dict:
    """DRAM bytes of a whole generation: KV reads (attention), KV writes, and everything."""
    reads = writes = total = 0.0
    for shape, count in step_schedule(setup):
        for op in machine.step(model, shape).operators:
            total += count * op.dram_bytes
            if op.kind == "attention":
                reads += count * op.dram_bytes
            elif op.kind == "kv_write":
                writes += count * op.dram_bytes
    return {"kv_read_bytes": reads, "kv_write_bytes": writes, "dram_bytes": total}


def kv_traffic_rows(npu_name: str, model_names: tuple[str, ...], methods: tuple[str, ...],
                    bits: tuple[int, ...], lower: Lowering, caches: tuple[str, ...] = ("prefix", "dual")) -> list[dict]:
    """One row per (model, cache mode, method, bits) of the top-k generation of each model."""
    config = load_npu_config(npu_name)
    if config.formats.kv_cache != "bf16":
        raise ValueError(f"{config.source}: formats.kv_cache is {config.formats.kv_cache!r}; the KV traffic "
                         "table scales bf16 traffic and needs a preset that stores K/V in bf16")
    machine = NpuStepModel(config, lower)
    rows = []
    for name in model_names:
        model, setups = model_scenarios(name, caches=caches)
        for setup in setups:
            if setup.decode.threshold is not None:
                continue
            base = kv_traffic_of_generation(machine, model, setup)
            gen = setup.decode.gen_length
            kv_bf16 = base["kv_read_bytes"] + base["kv_write_bytes"]
            group = channel_group(model.head_dim, DEFAULT_GROUP)
            for method in methods:
                for width in bits:
                    if not get_method(method).supports(width):
                        continue
                    scale = kv_element_bits(method, width, group) / 16.0
                    kv = kv_bf16 * scale
                    if get_method(method).storage == "kivi":  # the current block's writes stay bf16
                        kv += base["kv_write_bytes"] * (1.0 - scale)
                    dram = base["dram_bytes"] - kv_bf16 + kv
                    rows.append({"npu": config.name, "model": model.name, "cache": setup.decode.cache,
                                 "rule": "topk", "prompt_length": setup.prompt_length, "gen_length": gen,
                                 "method": method, "bits": width,
                                 "kv_bytes_per_token": kv / gen, "dram_bytes_per_token": dram / gen,
                                 "kv_share_of_dram": kv / dram if dram else 0.0,
                                 "kv_bytes_vs_bf16": kv / kv_bf16 if kv_bf16 else 0.0})
    return rows


def kv_traffic_stage(npu_name: str, model_names: tuple[str, ...], methods: tuple[str, ...], bits: tuple[int, ...],
                     out_tsv, lower: Lowering, caches: tuple[str, ...] = ("prefix", "dual")):
    """Write the KV traffic table (see the module docstring), costed on the programs `lower` compiles."""
    return write_tsv(out_tsv, kv_traffic_rows(npu_name, model_names, methods, bits, lower, caches))

