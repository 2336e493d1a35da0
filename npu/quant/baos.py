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

The default is the variant the dnpu can run with its online-smoothing instructions: `vamax` /
`vmax` / `vmin` statistics, power-of-two factors from `vsmscale p2aNN` (alpha = 0 means no
smoothing), `vsub` for the shift, and `dstkv` / `dldkv` MXINT storage with per-segment factor
rows. The per-token INT layout needs per-row scales and zero points that the DMA does not handle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from npu.hw import numerics
from npu.hw.numerics import SMOOTHING_ALPHAS
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
CRITERIA = ("attention", "attention-max", "mse")
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
    criterion: how alpha is chosen for keys - 'attention' weighs each channel's squared key
        error by the mean q_c^2 of the queries of the same pass (the logit error; needs
        `observe_queries`), 'attention-max' by max q_c^2 (vamax), 'mse' uses the plain key
        error. Values always use the plain error.
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
    criterion: str = "attention"
    group: int = DEFAULT_GROUP
    mx_scale: str = "ocp"

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

    shift, factors: (batch, heads, head_dim); alphas: (batch, heads), the strength picked.
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
        self._query_energy: dict[int, torch.Tensor] = {}

    def observe_queries(self, layer: int, q: torch.Tensor) -> None:
        """Queries of the pass about to write `layer` (see npu.quant.observe)."""
        reduce = "max" if self.options.criterion == "attention-max" else "mean"
        self._query_energy[layer] = query_channel_energy(q, self.model_config.n_kv_heads, reduce)

    def _round_trip(self, x: torch.Tensor, shift: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """What attention reads back: quantize (x - shift) * hw_recip(factors) (dstkv), then
        multiply the factors back in (dldkv) and add the shift."""
        inverse = reciprocal(factors)[:, :, None, :]
        shift, factors = shift[:, :, None, :], factors[:, :, None, :]
        stored = quantizers.per_token((x - shift) * inverse, self.options.storage, self.bits, self.options.group,
                                      self.options.mx_scale)
        return stored * factors + shift

    def _fit(self, x: torch.Tensor, shift: torch.Tensor, kind: str,
             weights: torch.Tensor | None) -> tuple[_Transform, torch.Tensor]:
        """Factors for x (after `shift`), alpha picked per (batch, head) by the smallest round-trip
        error, each channel's squared error weighted by `weights` (batch, heads, head_dim) if given."""
        options = self.options
        absmax = channel_absmax(x - shift[:, :, None, :], options.rope_paired and kind == "key")
        best = None
        for alpha in options.alphas:
            factors = smoothing_factors(absmax, alpha, options.scale)
            x_hat = self._round_trip(x, shift, factors)
            if len(options.alphas) == 1:
                best = (None, factors, torch.full(absmax.shape[:2], alpha), x_hat)
                break
            squared = (x_hat - x).pow(2)
            if weights is not None:
                squared = squared * weights[:, :, None, :]
            error = squared.sum(dim=(-2, -1))  # (batch, heads)
            if best is None:
                best = (error, factors, torch.full_like(error, alpha), x_hat)
                continue
            better = error < best[0]  # ties keep the earlier (weaker) alpha
            best = (
                torch.where(better, error, best[0]),
                torch.where(better[..., None], factors, best[1]),
                torch.where(better, torch.full_like(error, alpha), best[2]),
                torch.where(better[..., None, None], x_hat, best[3]),
            )
        _, factors, alphas, x_hat = best
        for alpha in alphas.flatten().tolist():
            self.alpha_counts[(kind, alpha)] += 1
        return _Transform(shift, factors, alphas), x_hat

    def _encode(self, layer: int, x: torch.Tensor, full: bool, kind: str, weights: torch.Tensor | None):
        transforms = self.transforms[kind]
        current = transforms[layer]
        if full and (current is None or self.options.adaptation == "block"):
            shift = channel_midrange(x) if self.options.shift else torch.zeros_like(x[:, :, 0, :])
            transforms[layer], x_hat = self._fit(x, shift, kind, weights)
            return x_hat
        if self.options.statistics == "step":
            return self._fit(x, current.shift, kind, weights)[1]  # the shift stays the refresh's
        return self._round_trip(x, current.shift, current.factors)

    def store(self, layer, start, end, k, v):
        full = self.is_full(start, end)
        weights = self._query_energy.pop(layer, None)
        if self.options.criterion != "mse" and len(self.options.alphas) > 1 and weights is None:
            raise ValueError(
                "BAOS with criterion='attention' needs the queries of each pass: run the model "
                "inside npu.quant.observe.observe_queries(model), or use criterion='mse'"
            )
        if self.options.criterion == "mse":
            weights = None
        k_hat = self._encode(layer, round_bf16(k), full, "key", weights)
        v = round_bf16(v)
        if self.options.smooth_values:
            v_hat = self._encode(layer, v, full, "value", None)
        else:
            v_hat = quantizers.per_token(v, self.options.storage, self.bits, self.options.group, self.options.mx_scale)
        return k_hat, v_hat

    def alpha_histogram(self) -> dict[str, dict[float, float]]:
        """Fraction of (write, layer, head, sequence) choices per alpha, for keys and values."""
        out: dict[str, dict[float, float]] = {}
        for kind in ("key", "value"):
            counts = {a: n for (k, a), n in self.alpha_counts.items() if k == kind}
            total = sum(counts.values())
            if total:
                out[kind] = {a: counts[a] / total for a in sorted(counts)}
        return out
