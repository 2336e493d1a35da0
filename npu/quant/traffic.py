"""KV-cache DRAM traffic per generated token for each KV method, from a generation's bf16 traffic.

The analytical model (npu.sim.analytical.NpuStepModel) prices a whole generation operator by
operator; its `attention` operators stream the cached K/V tiles from DRAM and its `kv_write`
operators store the new entries, both in the preset's `formats.kv_cache` (bf16 on every shipped
preset). A KV method changes only how many bits each of those elements takes, so its KV traffic is
the bf16 traffic scaled by `kv_element_bits(method, bits) / 16` (npu.quant.storage: scales and
zero points included). KIVI keeps the current block in bf16: that share of the writes stays at
16 bits. The rest of the generation's DRAM traffic (weights, activations, logits) is unchanged.

`method_traffic(base, gen_length, head_dim, methods, bits)` does the scaling for one generation
whose bf16 traffic `base` (kv_read_bytes, kv_write_bytes, dram_bytes) the analytical model gave
(npu.sim.analytical.scenarios.kv_traffic_of_generation); the stage that writes the table is
npu.stages.quantize.kv_traffic_stage.
"""

from __future__ import annotations

from npu.quant.methods import get_method
from npu.quant.storage import DEFAULT_GROUP, channel_group, kv_element_bits


def method_traffic(base: dict, gen_length: int, head_dim: int, methods: tuple[str, ...],
                   bits: tuple[int, ...]) -> list[dict]:
    """One entry per (method, bits) the method supports: KV and DRAM bytes per generated token,
    the KV share of DRAM traffic and the KV bytes relative to bf16."""
    kv_bf16 = base["kv_read_bytes"] + base["kv_write_bytes"]
    group = channel_group(head_dim, DEFAULT_GROUP)
    rows = []
    for method in methods:
        for width in bits:
            if not get_method(method).supports(width):
                continue
            scale = kv_element_bits(method, width, group) / 16.0
            kv = kv_bf16 * scale
            if get_method(method).storage == "kivi":  # the current block's writes stay bf16
                kv += base["kv_write_bytes"] * (1.0 - scale)
            dram = base["dram_bytes"] - kv_bf16 + kv
            rows.append({"method": method, "bits": width,
                         "kv_bytes_per_token": kv / gen_length, "dram_bytes_per_token": dram / gen_length,
                         "kv_share_of_dram": kv / dram if dram else 0.0,
                         "kv_bytes_vs_bf16": kv / kv_bf16 if kv_bf16 else 0.0})
    return rows
