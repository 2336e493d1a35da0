"""How K/V statistics move during dLLM decoding: the evidence for (or against) per-block adaptation.

`collect_kv_trace` decodes prompts with a cache that records every write (layer, block, step,
positions, K, V) and, from `generate(record=True)`, which positions held [MASK] when the pass
ran. `kv_statistics` turns the trace into one table row per (layer, K or V):
- absmax / mean / std over all refresh writes, the channel outlier strength (max over channels
  of max|x_c| divided by its median) and the outlier ratio (fraction of values beyond 6 std of
  the layer);
- decoded vs [MASK]: per-channel max|x| of [MASK] rows over that of prompt + decoded rows
  (median over channels), and the distance between their channel means in std units;
- drift: the median and 90th-percentile relative change of per-channel max|x| from one block's
  refresh to the next (what stale smoothing factors would miss), and from a block's refresh to
  its later steps for the block's own rows.
`channel_maxima` lists per-channel max|x| of each block's refresh in one layer; `write_kv_table`
writes a table atomically. The figure is drawn from these tables (npu.plots.kv).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from npu.io import write_tsv
from npu.models.decoding import DecodeConfig, generate
from npu.models.tasks import CharCorpus
from npu.models.transformer import KVCache, MaskedDiffusionTransformer


@dataclass
class KVWrite:
    """One cache write: which layer, block and step, the span, and the K/V (batch, heads, rows, dim)."""

    layer: int
    block: int
    step: int
    start: int
    end: int
    k: torch.Tensor
    v: torch.Tensor
    masked: torch.Tensor | None = None  # bool (batch, rows): the row held [MASK] during the pass


@dataclass
class KVTrace:
    label: str
    n_layers: int
    block_length: int
    writes: list[KVWrite] = field(default_factory=list)


class _RecordingCache(KVCache):
    """A plain cache that appends every write to a trace; block and step from the write pattern."""

    def __init__(self, config, batch, seq_len, trace: KVTrace):
        super().__init__(config, batch, seq_len)
        self.trace, self.block, self.step = trace, -1, -1

    def write(self, layer, positions, k, v):
        start, end = int(positions[0]), int(positions[-1]) + 1
        if layer == 0:
            if start == 0 and end == self.seq_len:
                self.block, self.step = self.block + 1, 0
            else:
                self.step += 1
        self.trace.writes.append(KVWrite(layer, self.block, self.step, start, end, k.detach().clone(), v.detach().clone()))
        super().write(layer, positions, k, v)


def analysis_prompts(task, n_prompts: int, seed: int) -> torch.Tensor:
    """Prompts for a trace: puzzle prompts, or the first half of validation text windows."""
    generator = torch.Generator().manual_seed(seed)
    if isinstance(task, CharCorpus):
        return task.sample_windows(n_prompts, task.window_length // 2, generator, split="validation")
    return task.sample(n_prompts, generator)[0]


def collect_kv_trace(model: MaskedDiffusionTransformer, task, decode: DecodeConfig, n_prompts: int = 64,
                     seed: int = 4321, label: str = "model") -> KVTrace:
    """Decode `n_prompts` prompts in `decode.cache` mode ('prefix' or 'dual') and record every write."""
    if decode.cache == "none":
        raise ValueError("collect_kv_trace needs a cached decoding mode ('prefix' or 'dual')")
    prompts = analysis_prompts(task, n_prompts, seed)
    trace = KVTrace(label, model.config.n_layers, decode.block_length)
    result = generate(model, prompts, decode, record=True,
                      cache_factory=lambda cfg, b, n: _RecordingCache(cfg, b, n, trace))
    mask_id = model.config.mask_token_id
    before = torch.cat([prompts, torch.full((prompts.shape[0], decode.gen_length), mask_id)], dim=1)
    states = [before] + [record.tokens for record in result.records]
    n_layers = model.config.n_layers
    for index, write in enumerate(trace.writes):
        tokens = states[index // n_layers]  # the sequence as the pass saw it
        write.masked = tokens[:, write.start:write.end] == mask_id
    return trace


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, rows, dim) -> (batch * rows, heads * dim): one column per channel."""
    return x.permute(0, 2, 1, 3).reshape(-1, x.shape[1] * x.shape[3])


def _relative_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return (new - old).abs() / old.clamp_min(1e-12)


def _quantiles(x: torch.Tensor) -> tuple[float, float]:
    if x.numel() == 0:
        return float("nan"), float("nan")
    return x.median().item(), torch.quantile(x.float(), 0.9).item()


def kv_statistics(trace: KVTrace) -> list[dict]:
    """One row per (layer, K/V) with the statistics described in the module docstring."""
    rows = []
    for layer in range(trace.n_layers):
        writes = [w for w in trace.writes if w.layer == layer]
        refreshes = [w for w in writes if w.step == 0]
        for kind in ("K", "V"):
            pick = (lambda w: w.k) if kind == "K" else (lambda w: w.v)
            values = torch.cat([_rows(pick(w)) for w in refreshes])
            masked = torch.cat([w.masked.reshape(-1) for w in refreshes])
            std = values.std().item()
            channel_max = values.abs().amax(dim=0)
            mask_rows, known_rows = values[masked], values[~masked]
            row = {
                "model": trace.label, "layer": layer, "tensor": kind,
                "absmax": channel_max.max().item(),
                "mean": values.mean().item(),
                "std": std,
                "channel_max_over_median": (channel_max.max() / channel_max.median()).item(),
                "outlier_ratio": (values.abs() > 6 * std).float().mean().item(),
                "mask_over_decoded_absmax": float("nan"),
                "mask_decoded_mean_distance": float("nan"),
            }
            if mask_rows.shape[0] and known_rows.shape[0]:
                ratio = mask_rows.abs().amax(0) / known_rows.abs().amax(0).clamp_min(1e-12)
                row["mask_over_decoded_absmax"] = ratio.median().item()
                row["mask_decoded_mean_distance"] = ((mask_rows.mean(0) - known_rows.mean(0)).abs() / std).mean().item()
            per_block = [_rows(pick(w)).abs().amax(0) for w in refreshes_by_block(refreshes)]
            block_drift = torch.cat([_relative_change(b, a) for a, b in zip(per_block, per_block[1:])]) \
                if len(per_block) > 1 else torch.empty(0)
            row["block_drift_median"], row["block_drift_p90"] = _quantiles(block_drift)
            row["step_drift_median"], row["step_drift_p90"] = _quantiles(_step_drift(writes, pick, trace.block_length))
            rows.append(row)
    return rows


def refreshes_by_block(refreshes: list[KVWrite]) -> list[KVWrite]:
    """Refresh writes in block order, one per block (several traces' batches are one write)."""
    return sorted(refreshes, key=lambda w: w.block)


def _step_drift(writes: list[KVWrite], pick, block_length: int) -> torch.Tensor:
    """Relative change of the block rows' per-channel max from the refresh to each later step
    (later writes start at the block: dual writes the block, prefix the block and the suffix)."""
    changes = []
    refresh = {w.block: w for w in writes if w.step == 0}
    for w in writes:
        if w.step == 0 or w.block not in refresh:
            continue
        old = _rows(pick(refresh[w.block])[:, :, w.start:w.start + block_length]).abs().amax(0)
        new = _rows(pick(w)[:, :, :block_length]).abs().amax(0)
        changes.append(_relative_change(new, old))
    return torch.cat(changes) if changes else torch.empty(0)


def write_kv_table(rows: list[dict], path) -> None:
    """The statistics table as TSV (atomic)."""
    write_tsv(path, rows)


def channel_maxima(trace: KVTrace, layer: int | None = None) -> list[dict]:
    """Per-channel max|K| and max|V| of every block's refresh in one layer (default: the last),
    for prompt + decoded rows and for [MASK] rows apart: the table behind the drift figure's
    per-channel panel (npu.plots.kv)."""
    shown = trace.n_layers - 1 if layer is None else layer
    rows = []
    for w in refreshes_by_block([w for w in trace.writes if w.layer == shown and w.step == 0]):
        masked = w.masked.reshape(-1)
        for tensor, values in (("K", _rows(w.k)), ("V", _rows(w.v))):
            for kind, selected in (("decoded", values[~masked]), ("mask", values[masked])):
                if not len(selected):
                    continue
                for channel, value in enumerate(selected.abs().amax(0).tolist()):
                    rows.append({"model": trace.label, "layer": shown, "block": w.block, "tensor": tensor,
                                 "rows": kind, "channel": channel, "absmax": value})
    return rows


def trace_for_decode(model, task, decode: DecodeConfig, cache: str, n_prompts: int, seed: int, label: str) -> KVTrace:
    """collect_kv_trace with the recipe's cache mode replaced by `cache`."""
    return collect_kv_trace(model, task, replace(decode, cache=cache), n_prompts, seed, label)
