"""Stage of workflow/rules/verify.smk: `verify_compiled` (`npu verify`).

Every generation of a trained task model, decoded by the compiled step programs on the
functional simulator, against the NPU-arithmetic reference token for token (npu.check.verify);
with `kv` set, the dual cache with BAOS KV quantization (npu.check.verify_kv). The JSON report
is rewritten atomically after every (machine, cache mode, commit rule) run, so an interrupted
verification keeps what it finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from npu.io import atomic_write_text


def verify_stage(checkpoint: str | Path, npus: list[str | Path], out: str | Path | None = None,
                 caches: list[str] = ("none", "prefix", "dual"), rules: list[str] = ("topk", "threshold"),
                 n_prompts: int = 50, seed: int = 1234, temperature: float = 0.0,
                 kv: str | None = None, kv_alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75),
                 jobs: int = 1) -> dict:
    """Run the verification and write its report to `out` (JSON); returns the report. `jobs`
    worker processes run (machine, cache mode, rule) cells side by side (not with `kv`)."""
    def save(report: dict) -> None:
        if out is not None:
            atomic_write_text(out, json.dumps(report, indent=1))

    if kv:
        from npu.check.verify_kv import verify_kv
        from npu.compiler.kv_quant import KVQuant

        if temperature:
            raise ValueError("--kv runs greedy decoding; drop --temperature")
        report = verify_kv(str(checkpoint), list(npus), list(rules), n_prompts, KVQuant.parse(kv, tuple(kv_alphas)),
                           seed, compare_bf16=True, log=lambda line: print(line, flush=True))
        save(report)
        return report

    from npu.check.verify import verify

    if not temperature >= 0:
        raise ValueError(f"--temperature {temperature} must be >= 0")
    return verify(str(checkpoint), list(npus), list(caches), list(rules), n_prompts, seed,
                  log=lambda line: print(line, flush=True), temperature=temperature, on_run=save, progress=True,
                  jobs=jobs)
