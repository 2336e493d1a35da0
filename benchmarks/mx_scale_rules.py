"""MX round-trip error of K-like rows under the two MX scale rules (OCP vs no-clip).

    .venv/bin/python benchmarks/mx_scale_rules.py [--tokens 4096] [--outlier 20]

K-like rows: head_dim 128 of standard-normal channels, two of them (5 and 77) `--outlier` times
larger (the outlier channels LLM keys show), rounded to bf16 as the vector SRAM holds them; MX
blocks of 32 channels. Prints, per DMA MX format, the share of blocks whose maximum the OCP
exponent clips, and for each rule the relative RMS error and the largest absolute error of the
round trip (numerics.mx_round). docs/numerics.md quotes the output.
"""

from __future__ import annotations

import argparse

import numpy as np

from npu.hw import numerics

DMA_MX_FORMATS = ("mxint8", "mxint4", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp4")


def k_like_rows(tokens: int, outlier: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((tokens, 128)).astype(np.float32)
    x[:, [5, 77]] *= outlier
    return numerics.round_to_format(x, "bf16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--outlier", type=float, default=20.0)
    args = parser.parse_args()
    x = k_like_rows(args.tokens, args.outlier)
    power = np.sqrt((x.astype(np.float64) ** 2).mean())
    print("format      clipped-blocks  ocp: rel-RMSE  max|err|   no_clip: rel-RMSE  max|err|")
    for fmt in DMA_MX_FORMATS:
        stats = []
        for rule in numerics.MX_SCALE_RULES:
            error = numerics.mx_round(x, fmt, 32, scale_rule=rule).astype(np.float64) - x
            stats += [np.sqrt((error**2).mean()) / power, np.abs(error).max()]
        ocp = numerics.mx_quantize(x, fmt, 32).scales
        no_clip = numerics.mx_quantize(x, fmt, 32, scale_rule="no_clip").scales
        clipped = 100 * (ocp != no_clip).mean()
        print(f"{fmt:11s} {clipped:13.1f}%  {stats[0]:14.4f}  {stats[1]:8.3f}   {stats[2]:17.4f}  {stats[3]:8.3f}")


if __name__ == "__main__":
    main()
