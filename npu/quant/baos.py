"""BAOS: Block-Adaptive Online Smoothing of the KV cache (design notes and ablations in docs/baos.md).

At each block's full refresh - when the dLLM recomputes every K/V anyway - BAOS takes, per
sequence, layer, KV head and channel, the statistics of the rows being written: the midpoint
z = (max + min) / 2 (the shift) and max|x - z|. For a few candidate strengths alpha it builds
smoothing factors s = max|x - z|^alpha, round-trips (x - z) / s through the storage layout (MX
or per-token INT) and keeps, per (sequence, layer, head), the alpha with the smallest error -
for keys the error of the attention logits (each channel's squared error weighted by the mean
q_c^2 of the same pass's queries), for values the plain squared error. Reading back multiplies s
in and adds z: for keys the same as folding s into Q ((Q s)(K / s)^T) and dropping q . z (the
same for every key, so softmax ignores it); for values the same as scaling and shifting the
attention output's channels (rows of P sum to 1).

Later steps of the block rewrite the block (dual) or block + suffix (prefix); they reuse the
refresh's factors ("refresh" statistics) or fit fresh factors to the rows they write ("step"),
always with the refresh's shift. The current block itself stays in bf16 (the shared block
window of npu.quant.kv_cache), so with a dual cache only refresh writes are quantized.

The search's candidates include "no smoothing" - no shift, s = 1, the plain storage format - tried
first, so that on its own criterion BAOS can never do worse than the format it stores in. The
default criterion ("output", numerics.BAOS_CRITERIA) is the attention-output error of the current
block's queries, the rows whose later steps read the cache: for keys the change of
softmax(q k^T / sqrt(d)) v when k is replaced by its round trip (values exact), for values
|P (v_hat - v)|^2 with P the exact attention (keys exact). K and V are chosen apart; the sum of
the two errors is then as small as any (K, V) pair of candidates makes it.

The default is the variant the dnpu can run with its online-smoothing instructions: `vamax` /
`vmax` / `vmin` statistics, power-of-two factors from `vsmscale p2aNN` (alpha = 0 means no
smoothing), `vsub` for the shift, and `dstkv` / `dldkv` MXINT storage with per-segment factor
rows. The per-token INT layout needs per-row scales and zero points that the DMA does not handle.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import torch

from npu.hw import numerics
from npu.hw.numerics import BAOS_CRITERIA, SMOOTHING_ALPHAS
from npu.quant import quantizers
from npu.quant.kv_cache import BlockAwareKVCache, BlockLayout
from npu.quant.observe import query_channel_energy
from npu.quant.quantizers import DEFAULT_GROUP, round_bf16
from npu.quant.smoothing import (
    POW2_MODES,
    SCALE_RULES,
    channel_absmax,
    channel_midrange,
    reciprocal,
    smoothing_factors,
)

STATISTICS = ("refresh", "step")
CRITERIA = BAOS_CRITERIA
NO_SMOOTHING = -1.0  # the alpha recorded for the "no smoothing" candidate (no shift, s = 1)
ErrorFunction = Callable[[torch.Tensor], torch.Tensor]  # a candidate's read-back x_hat -> error per (batch, head)
ADAPTATION = ("block", "first")
DEFAULT_ALPHAS = SMOOTHING_ALPHAS


@dataclass(frozen=True)
class BaosOptions:
    """One BAOS variant.

    storage: per-token layout after smoothing ('mxint', 'mxfp' or 'int').
    alphas: candidate strengths; one value = fixed alpha, several = chosen by quantization error.
    scale: 'pow2' (vsmscale p2aNN: exact, keeps every mantissa, so MX block maxima do not
        move into the clipped range) or 'fp' (m^alpha from hw_rsqrt; finer steps).
    statistics: 'refresh' (factors from each block's full refresh, reused by its later steps) or
        'step' (every write computes factors from the rows it writes).
    adaptation: 'block' (new factors at every block's refresh) or 'first' (factors of the first
        refresh reused for the whole generation: online calibration without per-block adaptation).
    smooth_values: smooth (and shift) V as well; both are undone on the attention output
        channels (P (V - z) / s * s + z, rows of P summing to 1).
    shift: subtract a per-channel midpoint z = (max + min) / 2, taken at each refresh, before
        scaling (channel-wise shifting as in Outlier Suppression+). For keys it costs nothing:
        q . (k - z) differs from q . k by the same q . z for every key, which softmax ignores.
        The defaults (pow2, shift) are the MX hardware variant; the registered 'baos-int'
        method uses fp factors and no shift instead, which measured better with per-token INT
        (its own zero point already absorbs offsets; pow2 steps are too coarse for it).
    rope_paired: RoPE pairs (i, i + head_dim/2) share a key factor. Only needed when a factor
        is folded into the Q/K weights before RoPE (static smoothing); BAOS scales K after RoPE
        (dldkv) and so gives each channel its own factor - sharing made a small channel take its
        partner's large factor and measured worse.
    criterion: how a candidate is chosen (numerics.BAOS_CRITERIA) - 'output' (the default):
        the attention-output error of the current block's queries (keys with exact values,
        values with the exact attention weights); 'attention' weighs each channel's squared key
        error by the mean q_c^2 of the queries of the same pass (the diagonal of the logit
        error), 'attention-max' by max q_c^2 (vamax), 'mse' uses the plain key error; these
        three use the plain squared error for values. All but 'mse' need `observe_queries`.
    plain_candidate: the search also tries "no smoothing" (no shift, s = 1: the plain format),
        first, so ties keep it. Only with several alphas (a fixed alpha is not a search).
    group: channels per MX block / INT group.
    mx_scale: the MX scale rule of MX storage (numerics.MX_SCALE_RULES): 'ocp' (dstkv.v) or
        'no_clip' (dstkvnc.v, the block maximum never clips); ignored by 'int' storage.
    """

    storage: str = "mxint"
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    scale: str = "pow2"
    statistics: str = "refresh"
    adaptation: str = "block"
    smooth_values: bool = True
    shift: bool = True
    rope_paired: bool = False
    criterion: str = "output"
    group: int = DEFAULT_GROUP
    mx_scale: str = "ocp"
    plain_candidate: bool = True

    def __post_init__(self) -> None:
        numerics.check_scale_rule(self.mx_scale)
        if self.storage not in quantizers.LAYOUTS:
            raise ValueError(f"BAOS storage {self.storage!r} is not one of {quantizers.LAYOUTS}")
        if self.scale not in SCALE_RULES:
            raise ValueError(f"BAOS scale {self.scale!r} is not one of {SCALE_RULES}")
        if self.statistics not in STATISTICS:
            raise ValueError(f"BAOS statistics {self.statistics!r} is not one of {STATISTICS}")
        if self.adaptation not in ADAPTATION:
            raise ValueError(f"BAOS adaptation {self.adaptation!r} is not one of {ADAPTATION}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"BAOS criterion {self.criterion!r} is not one of {CRITERIA}")
        if not self.alphas or any(a not in POW2_MODES and a != 0.0 for a in self.alphas):
            raise ValueError(f"BAOS alphas must come from {sorted({0.0, *POW2_MODES})}, got {self.alphas}")
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))


@dataclass
class _Transform:
    """What a stored segment was encoded with: x_stored = quant((x - shift) / factors).

    shift, factors: (batch, heads, head_dim); alphas: (batch, heads), the strength picked
    (NO_SMOOTHING for the plain-format candidate).
    """

    shift: torch.Tensor
    factors: torch.Tensor
    alphas: torch.Tensor


class BaosKVCache(BlockAwareKVCache):
    """The BAOS cache; `alpha_counts` tallies which alpha each (layer, head, sequence) chose."""

    def __init__(self, config, batch, seq_len, layout: BlockLayout | None = None, *, bits: int,
                 options: BaosOptions = BaosOptions(), window: str = "block"):
        super().__init__(config, batch, seq_len, layout, window)
        quantizers.check_bits(options.storage, bits)
        self.bits, self.options = bits, options
        self.transforms: dict[str, list[_Transform | None]] = {
            "key": [None] * config.n_layers,
            "value": [None] * config.n_layers,
        }
        self.alpha_counts: Counter[tuple[str, float]] = Counter()
        self._queries: dict[int, torch.Tensor] = {}

    @property
    def searching(self) -> bool:
        """Several candidates to choose from (a fixed alpha is not a search)."""
        return len(self.options.alphas) > 1

    def observe_queries(self, layer: int, q: torch.Tensor) -> None:
        """Queries of the pass about to write `layer`, (batch, n_heads, tokens, head_dim) after
        RoPE (see npu.quant.observe)."""
        self._queries[layer] = q.detach().to(torch.float32)

    def _round_trip(self, x: torch.Tensor, shift: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """What attention reads back: quantize (x - shift) * hw_recip(factors) (dstkv), then
        multiply the factors back in (dldkv) and add the shift."""
        inverse = reciprocal(factors)[:, :, None, :]
        shift, factors = shift[:, :, None, :], factors[:, :, None, :]
        stored = quantizers.per_token((x - shift) * inverse, self.options.storage, self.bits, self.options.group,
                                      self.options.mx_scale)
        return stored * factors + shift

    def _candidates(self, x: torch.Tensor, shift: torch.Tensor, kind: str, plain: bool):
        """(alpha, shift, factors) of each candidate, in the order ties are broken: the plain
        format first (when `plain`, unless alpha 0 with a zero shift already is it), then the alphas."""
        options = self.options
        already = 0.0 in options.alphas and not bool(shift.any())
        if plain and self.searching and options.plain_candidate and not already:
            yield NO_SMOOTHING, torch.zeros_like(shift), torch.ones_like(shift)
        absmax = channel_absmax(x - shift[:, :, None, :], options.rope_paired and kind == "key")
        for alpha in options.alphas:
            yield alpha, shift, smoothing_factors(absmax, alpha, options.scale)

    def _fit(self, x: torch.Tensor, shift: torch.Tensor, kind: str, error: ErrorFunction | None,
             plain: bool = True) -> tuple[_Transform, torch.Tensor]:
        """The candidate with the smallest `error(x_hat)` (batch, heads) per (batch, head); one
        alpha (no search) needs no error."""
        best = None
        for alpha, cand_shift, factors in self._candidates(x, shift, kind, plain):
            x_hat = self._round_trip(x, cand_shift, factors)
            picked = torch.full(x.shape[:2], alpha)
            if not self.searching:
                best = (None, cand_shift, factors, picked, x_hat)
                break
            value = error(x_hat)
            if best is None:
                best = (value, cand_shift, factors, picked, x_hat)
                continue
            better = value < best[0]  # ties keep the earlier candidate (plain format, weaker alpha)
            best = (
                torch.where(better, value, best[0]),
                torch.where(better[..., None], cand_shift, best[1]),
                torch.where(better[..., None], factors, best[2]),
                torch.where(better, picked, best[3]),
                torch.where(better[..., None, None], x_hat, best[4]),
            )
        _, shift, factors, alphas, x_hat = best
        for alpha in alphas.flatten().tolist():
            self.alpha_counts[(kind, alpha)] += 1
        return _Transform(shift, factors, alphas), x_hat

    def _encode(self, layer: int, x: torch.Tensor, full: bool, kind: str, error: ErrorFunction | None):
        transforms = self.transforms[kind]
        current = transforms[layer]
        if full and (current is None or self.options.adaptation == "block"):
            shift = channel_midrange(x) if self.options.shift else torch.zeros_like(x[:, :, 0, :])
            transforms[layer], x_hat = self._fit(x, shift, kind, error)
            return x_hat
        if self.options.statistics == "step":  # the shift stays the refresh's
            return self._fit(x, current.shift, kind, error, plain=False)[1]
        return self._round_trip(x, current.shift, current.factors)

    def _errors(self, queries: torch.Tensor | None, start: int, end: int, k: torch.Tensor,
                v: torch.Tensor) -> tuple[ErrorFunction | None, ErrorFunction | None]:
        """The criterion's error functions of key and value candidates (None where not searching)."""
        criterion = self.options.criterion
        if not self.searching:
            return None, None
        if criterion == "output":
            return output_errors(queries, k, v, self.query_rows(start, end), self.window_rows(start, end))
        if criterion == "mse":
            return squared_error(k, None), squared_error(v, None)
        reduce = "max" if criterion == "attention-max" else "mean"
        energy = query_channel_energy(queries, self.model_config.n_kv_heads, reduce)
        return squared_error(k, energy), squared_error(v, None)

    def query_rows(self, start: int, end: int) -> slice:
        """Rows of a write whose queries the 'output' criterion uses: those of the current block
        (the rows whose later steps read the cache), or every row when the write holds none of
        it (no block layout: a single forward pass)."""
        block = self.current_block()
        if block is not None and max(start, block[0]) < min(end, block[1]):
            return slice(max(start, block[0]) - start, min(end, block[1]) - start)
        return slice(0, end - start)

    def store(self, layer, start, end, k, v):
        full = self.is_full(start, end)
        queries = self._queries.pop(layer, None)
        if self.options.criterion != "mse" and self.searching and queries is None:
            raise ValueError(
                f"BAOS with criterion={self.options.criterion!r} needs the queries of each pass: run the "
                "model inside npu.quant.observe.observe_queries(model), or use criterion='mse'"
            )
        k, v = round_bf16(k), round_bf16(v)
        key_error, value_error = self._errors(queries, start, end, k, v)
        k_hat = self._encode(layer, k, full, "key", key_error)
        if self.options.smooth_values:
            v_hat = self._encode(layer, v, full, "value", value_error)
        else:
            v_hat = quantizers.per_token(v, self.options.storage, self.bits, self.options.group, self.options.mx_scale)
        return k_hat, v_hat

    def alpha_histogram(self) -> dict[str, dict[float | str, float]]:
        """Fraction of (write, layer, head, sequence) choices per alpha, for keys and values;
        the plain-format candidate is counted as "none"."""
        out: dict[str, dict[float | str, float]] = {}
        for kind in ("key", "value"):
            counts = {a: n for (k, a), n in self.alpha_counts.items() if k == kind}
            total = sum(counts.values())
            if total:
                out[kind] = {("none" if a == NO_SMOOTHING else a): counts[a] / total for a in sorted(counts)}
        return out



def squared_error(x: torch.Tensor, weights: torch.Tensor | None) -> ErrorFunction:
    """x_hat -> sum of (x_hat - x)^2 per (batch, head), each channel weighted by `weights`
    (batch, heads, head_dim) if given."""
    def error(x_hat: torch.Tensor) -> torch.Tensor:
        squared = (x_hat - x).pow(2)
        if weights is not None:
            squared = squared * weights[:, :, None, :]
        return squared.sum(dim=(-2, -1))
    return error


def output_errors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, query_rows: slice,
                  kept: slice | None) -> tuple[ErrorFunction, ErrorFunction]:
    """The 'output' criterion's error functions (numerics.BAOS_CRITERIA) for a write of k, v
    (batch, kv_heads, rows, head_dim) with the pass's queries q (batch, n_heads, rows, head_dim).

    Every query head of a KV head attends, from the rows `query_rows`, to the written rows as
    the model does (softmax(q k^T / sqrt(head_dim)) v); rows in `kept` (the bf16 block window)
    are never quantized, so a candidate's round trip counts only outside them. Key error: the
    squared change of the output with exact values; value error: |P (v_hat - v)|^2 with the
    exact weights P. Both are summed per (batch, KV head) over its query heads, rows, channels.
    """
    batch, kv_heads, _, head_dim = k.shape
    q = q[:, :, query_rows]
    group = q.shape[1] // kv_heads
    q = q.reshape(batch, kv_heads, group * q.shape[2], head_dim)  # a KV head's query heads' rows, stacked
    scale = 1.0 / math.sqrt(head_dim)
    weights = (q @ k.transpose(-2, -1) * scale).softmax(dim=-1)
    exact = weights @ v

    def keep_window(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if kept is None:
            return x_hat
        x_hat = x_hat.clone()
        x_hat[:, :, kept] = x[:, :, kept]
        return x_hat

    def key_error(k_hat: torch.Tensor) -> torch.Tensor:
        changed = (q @ keep_window(k_hat, k).transpose(-2, -1) * scale).softmax(dim=-1) @ v
        return (changed - exact).pow(2).sum(dim=(-2, -1))

    def value_error(v_hat: torch.Tensor) -> torch.Tensor:
        return (weights @ (keep_window(v_hat, v) - v)).pow(2).sum(dim=(-2, -1))

    return key_error, value_error
