"""Per-channel smoothing factors for K/V: statistics, the factor rule, and static calibration.

Smoothing divides channel c of K by s_c before quantization and multiplies it back after (or,
equivalently, multiplies Q by s: Q K^T = (Q s)(K / s)^T), so outlier channels stop setting the
step size of every other channel of a token. s_c = max|K_c|^alpha (SmoothQuant form).

Two factor rules, both for alpha in {0, 0.25, 0.5, 0.75, 1}:
- "pow2": the hardware's `vsmscale p2aNN` rule, s = 2^floor(alpha * floor(log2 m)) - a power of
  two, so dividing by it is exact and costs an exponent add. Computed by the functional
  simulator's own `smoothing_factor`, so both agree by construction. Coarse for small m: for
  m in [2, 8) and alpha = 0.5 it gives s = 1 or 2.
- "fp": s = m^alpha in float32 (SmoothQuant / SmoothAttention), built from the vector unit's
  hw_rsqrt (`vsmscale sqrt` for alpha = 0.5, one more rsqrt step for 0.25 and 0.75); the
  stored value is x * hw_recip(s), as `dstkv` computes it.
alpha = 0 means no smoothing (s = 1). Channels whose max is 0 (or not finite) get s = 1.

Keys are cached after RoPE, which rotates channel pairs (i, i + head_dim / 2) into each other;
a per-channel factor commutes with RoPE only if both channels of a pair share it, so key
statistics are taken over each pair (`rope_paired=True`). Values have no such constraint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from npu.hw import numerics
from npu.io import write_json
from npu.hw.numerics import POW2_MODES, smoothing_factor

SCALE_RULES = ("pow2", "fp")


def channel_absmax(x: torch.Tensor, rope_paired: bool) -> torch.Tensor:
    """max|x| per (batch, head, channel) over the token axis of (batch, heads, tokens, head_dim)."""
    stats = x.detach().abs().amax(dim=-2)
    if rope_paired:
        half = stats.shape[-1] // 2
        shared = torch.maximum(stats[..., :half], stats[..., half:])
        stats = torch.cat([shared, shared], dim=-1)
    return stats


def channel_midrange(x: torch.Tensor) -> torch.Tensor:
    """(max + min) / 2 per (batch, head, channel) over the token axis: the centring shift."""
    x = x.detach()
    return (x.amax(dim=-2) + x.amin(dim=-2)) / 2


def smoothing_factors(absmax: torch.Tensor, alpha: float, rule: str) -> torch.Tensor:
    """Factor s per channel from max|x| statistics (same shape as `absmax`).

    Both rules take alpha in {0, 0.25, 0.5, 0.75, 1} and compute exactly what the vector unit
    would: pow2 is `vsmscale p2aNN`; fp builds m^0.5 = m * hw_rsqrt(m) (`vsmscale sqrt`),
    m^0.25 = sqrt(m^0.5) the same way, m^0.75 = m^0.5 * m^0.25, m^1 = m (float32).
    """
    if rule not in SCALE_RULES:
        raise ValueError(f"unknown smoothing scale rule {rule!r}; known: {', '.join(SCALE_RULES)}")
    if alpha != 0.0 and alpha not in POW2_MODES:
        raise ValueError(f"smoothing alpha must be one of {sorted({0.0, *POW2_MODES})}, not {alpha}")
    if alpha == 0.0:
        return torch.ones_like(absmax)
    stats = absmax.detach().cpu().to(torch.float32).numpy()
    if rule == "pow2":
        return torch.from_numpy(smoothing_factor(stats, POW2_MODES[alpha])).to(absmax.device)
    usable = np.isfinite(stats) & (stats > 0)
    m = np.where(usable, stats, np.float32(1.0)).astype(np.float32)
    root = smoothing_factor(m, "sqrt")  # m^0.5
    quarter = (root * numerics.hw_rsqrt(root)).astype(np.float32)  # m^0.25
    factor = {0.25: quarter, 0.5: root, 0.75: (root * quarter).astype(np.float32), 1.0: m}[alpha]
    return torch.from_numpy(np.where(usable, factor, np.float32(1.0))).to(absmax.device)


def reciprocal(factors: torch.Tensor) -> torch.Tensor:
    """1 / s as `dstkv` computes it (hw_recip), so smoothing multiplies exactly like the DMA."""
    values = numerics.hw_recip(factors.detach().cpu().to(torch.float32).numpy())
    return torch.from_numpy(values).to(factors.device)


@dataclass(frozen=True)
class StaticSmoothing:
    """Offline key-smoothing factors (SmoothAttention): one (kv_heads, head_dim) tensor per layer."""

    factors: tuple[torch.Tensor, ...]
    alpha: float
    model_name: str
    n_calibration_sequences: int

    def to_dict(self) -> dict:
        return {
            "kind": "static-key-smoothing",
            "model": self.model_name,
            "alpha": self.alpha,
            "n_calibration_sequences": self.n_calibration_sequences,
            "factors": [f.tolist() for f in self.factors],
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "static smoothing") -> "StaticSmoothing":
        for key in ("kind", "model", "alpha", "n_calibration_sequences", "factors"):
            if key not in data:
                raise ValueError(f"{where}: missing key {key!r}")
        if data["kind"] != "static-key-smoothing":
            raise ValueError(f"{where}: kind {data['kind']!r} is not 'static-key-smoothing'")
        factors = tuple(torch.tensor(f, dtype=torch.float32) for f in data["factors"])
        if not factors or any(f.dim() != 2 for f in factors):
            raise ValueError(f"{where}: 'factors' must be a non-empty list of (kv_heads, head_dim) tables")
        if any(not torch.isfinite(f).all() or (f <= 0).any() for f in factors):
            raise ValueError(f"{where}: factors must be finite and positive")
        return cls(factors, float(data["alpha"]), str(data["model"]), int(data["n_calibration_sequences"]))

    def save(self, path: str | Path) -> Path:
        """Write the factors as JSON (atomically)."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "StaticSmoothing":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: static smoothing factors not found (run the calibration stage)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON, truncated or corrupt ({error})") from None
        return cls.from_dict(data, where=str(path))

    def check_fits(self, n_layers: int, n_kv_heads: int, head_dim: int) -> None:
        shape = (n_kv_heads, head_dim)
        if len(self.factors) != n_layers or any(tuple(f.shape) != shape for f in self.factors):
            raise ValueError(
                f"static smoothing factors of model {self.model_name!r} ({len(self.factors)} layers of "
                f"{tuple(self.factors[0].shape)}) do not fit {n_layers} layers of {shape}"
            )


def static_factors_from_absmax(
    absmax_per_layer: list[torch.Tensor], alpha: float, model_name: str, n_sequences: int
) -> StaticSmoothing:
    """lambda_c = max|K_c|^alpha (fp rule, RoPE pairs already shared in the statistics)."""
    factors = tuple(smoothing_factors(m, alpha, "fp") for m in absmax_per_layer)
    return StaticSmoothing(factors, alpha, model_name, n_sequences)
