"""Device validation: the roofline device model, calibrated on this machine, vs measured PyTorch.

1. `calibrate(device)` measures the machine with microbenchmarks - a large GEMM (peak FLOP/s),
   a triad c = a + s * b on 1 to 32 MiB and on 384 MiB (cache levels and DRAM bandwidth),
   exp in float32 and float64 (transcendental throughput), argmax over a cache-resident vector
   (PyTorch's CPU argmax is a scalar loop, far slower than a max), a small broadcast multiply
   (per-kernel dispatch) and the extra cost of writing a fresh 256 KiB output rather than an
   existing one (first-touch page faults of the CPU allocator) - and returns a `DeviceSpec` with those numbers (efficiencies 1:
   measured rates are attainable rates). On the CPU a BLAS packs the weights before a GEMM
   (two extra passes over them, `gemm_pack_passes`).
2. `validation_cases(...)` are the kernels to predict: GEMMs of several shapes, attention
   (scaled_dot_product_attention) at several lengths, vocabulary-wide argmax and softmax
   (LLaDA's 126464 and Dream's 152064 entries), top-k, and a whole tiny-model denoising step
   (npu/models/transformer.py forward + the sampling pass of npu/models/decoding.py).
3. `validate(...)` times each case (minimum over repeats after a warm-up) and compares with
   the model's prediction.

CPU runs single-threaded in float32 (the reference's dtype) and is timed in CPU time of the
calling thread (`time.thread_time`), so time slices lost to other processes on a shared machine
do not count; CUDA runs in bfloat16 and is timed with events.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from npu.models.decoding import commit_mask, commit_tokens, forbid_mask_token, token_confidence
from npu.models.transformer import MaskedDiffusionTransformer, ModelConfig
from npu.sim.analytical.devices import (
    DeviceModel,
    DeviceSpec,
    Kernel,
    argmax_kernels,
    softmax_kernels,
    topk_kernels,
)
from npu.sim.analytical.operators import Operator, StepShape

LLADA_VOCAB, DREAM_VOCAB = 126464, 152064
# The tiny model of the step case: tiny-text's shape (config/models/tiny-text.yaml).
TINY_STEP_MODEL = ModelConfig("tiny-text", 98, 97, 4, 128, 4, 4, 32, 512, 128)


@dataclass
class Timer:
    """Minimum wall time of a callable after warm-up, within a time budget per case."""

    device: str = "cpu"
    repeats: int = 7
    warmup: int = 2
    budget_s: float = 3.0

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.device == "cuda":
            return self._cuda(fn)
        for _ in range(self.warmup):
            fn()
        best, spent = math.inf, 0.0
        for _ in range(self.repeats):
            start = time.thread_time()
            fn()
            elapsed = time.thread_time() - start
            best, spent = min(best, elapsed), spent + elapsed
            if spent > self.budget_s:
                break
        return best

    def _cuda(self, fn: Callable[[], object]) -> float:
        for _ in range(self.warmup):
            fn()
        torch.cuda.synchronize()
        best = math.inf
        for _ in range(self.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        return best


@dataclass(frozen=True)
class Calibration:
    """What the microbenchmarks measured (all attainable rates)."""

    device: str
    dtype: str
    threads: int
    gemm_flops: float
    stream_bandwidth: float
    caches: tuple[tuple[float, float], ...]   # (working-set bytes, bandwidth)
    exp_per_s: float
    exp64_per_s: float
    argmax_per_s: float
    dispatch_s: float
    alloc_s_per_byte: float

    def spec(self, name: str | None = None) -> DeviceSpec:
        exp_flops, exp64_flops = 8.0, 20.0
        return DeviceSpec(
            name=name or f"{self.device}-measured", matmul_flops=self.gemm_flops,
            vector_flops=self.exp_per_s * exp_flops, fp64_flops=self.exp64_per_s * exp64_flops,
            memory_bandwidth=self.stream_bandwidth, launch_s=self.dispatch_s, gemm_efficiency=1.0,
            attention_efficiency=1.0, memory_efficiency=1.0, dtype_bytes=_dtype(self.dtype).itemsize,
            exp_flops=exp_flops, exp64_flops=exp64_flops, caches=self.caches,
            gemm_pack_passes=2.0 if self.device == "cpu" else 0.0, indexed_reduction_per_s=self.argmax_per_s,
            alloc_s_per_byte=self.alloc_s_per_byte, source="microbenchmarks (npu.sim.analytical.validation.calibrate)")

    def rows(self) -> list[dict]:
        rows = [{"quantity": key, "value": getattr(self, key)} for key in
                ("gemm_flops", "stream_bandwidth", "exp_per_s", "exp64_per_s", "argmax_per_s", "dispatch_s",
                 "alloc_s_per_byte")]
        rows += [{"quantity": f"bandwidth_{int(size) >> 20}MiB", "value": bandwidth} for size, bandwidth in self.caches]
        return rows


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def default_dtype(device: str) -> str:
    return "bfloat16" if device == "cuda" else "float32"


def calibrate(device: str = "cpu", dtype: str | None = None, timer: Timer | None = None,
              gemm_size: int | None = None, stream_bytes: int | None = None,
              cache_sizes: tuple[int, ...] = (1 << 20, 2 << 20, 4 << 20, 8 << 20, 32 << 20)) -> Calibration:
    """Peak GEMM FLOP/s, cache and DRAM bandwidths, exp and argmax rates, dispatch time."""
    dtype = dtype or default_dtype(device)
    timer = timer or Timer(device)
    kind = _dtype(dtype)
    generator = torch.Generator(device="cpu").manual_seed(0)

    def tensor(*shape, dtype=kind):
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    n = gemm_size or (8192 if device == "cuda" else 2048)
    a, b = tensor(n, n), tensor(n, n)
    gemm = 2.0 * n ** 3 / timer(lambda: a @ b)

    def triad_bandwidth(total_bytes: int) -> float:
        elements = max(1, total_bytes // (3 * 4))
        x, y = tensor(elements, dtype=torch.float32), tensor(elements, dtype=torch.float32)
        z = torch.empty(elements, device=device)
        return 3 * 4 * elements / timer(lambda: torch.add(x, y, alpha=1.5, out=z))

    stream = triad_bandwidth(stream_bytes or (1 << 30 if device == "cuda" else 384 << 20))
    caches = tuple((float(size), triad_bandwidth(size)) for size in cache_sizes) if device == "cpu" else ()
    elements = 1 << 16
    x32, out32 = tensor(elements, dtype=torch.float32), torch.empty(elements, device=device)
    x64 = tensor(elements, dtype=torch.float64)
    out64 = torch.empty(elements, device=device, dtype=torch.float64)
    exp32 = 20 * elements / timer(lambda: [torch.exp(x32, out=out32) for _ in range(20)])
    exp64 = 20 * elements / timer(lambda: [torch.exp(x64, out=out64) for _ in range(20)])
    argmax = 20 * elements / timer(lambda: [x32.argmax() for _ in range(20)])
    small, other = tensor(4, 8, 8), tensor(8, 8)
    dispatch = timer(lambda: [small * other for _ in range(1000)]) / 1000  # broadcast, fresh output
    alloc = 0.0
    if device == "cpu":  # first touch of fresh 256 KiB outputs vs writing into an existing one
        big = tensor(1 << 16, dtype=torch.float32)
        into = torch.empty_like(big)
        fresh = timer(lambda: [big * big for _ in range(20)]) / 20
        reused = timer(lambda: [torch.mul(big, big, out=into) for _ in range(20)]) / 20
        alloc = max(0.0, fresh - reused) / big.nbytes
    return Calibration(device, dtype, torch.get_num_threads(), gemm, stream, caches, exp32, exp64, argmax, dispatch,
                       alloc)


@dataclass(frozen=True)
class Case:
    """One kernel to predict and measure."""

    group: str
    name: str
    predict: Callable[[DeviceModel], float]
    run: Callable[[], object]


def _kernels_time(model: DeviceModel, kernels: list[Kernel]) -> float:
    busy = sum(kernel.seconds(model.spec) for kernel in kernels)
    return max(busy, len(kernels) * model.spec.launch_s)


def validation_cases(device: str = "cpu", dtype: str | None = None, scale: float = 1.0) -> list[Case]:
    """The kernels of the device validation; `scale` < 1 shrinks them (fast tests)."""
    dtype = dtype or default_dtype(device)
    kind = _dtype(dtype)
    generator = torch.Generator(device="cpu").manual_seed(0)

    def tensor(*shape, dtype=kind):
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    def dim(value: int) -> int:
        return max(8, int(value * scale) // 8 * 8)

    cases: list[Case] = []
    for m, k, n in ((1, 4096, 4096), (32, 4096, 4096), (256, 2048, 2048), (1024, 1024, 4096), (2048, 2048, 2048)):
        m, k, n = max(1, int(m * scale)), dim(k), dim(n)
        x, w = tensor(m, k), tensor(n, k)
        op = Operator("gemm", "gemm", m, k, n)
        cases.append(Case("gemm", f"{m}x{k}x{n}", lambda model, op=op: model.operator_cost(op).seconds,
                          lambda x=x, w=w: F.linear(x, w)))
    for heads, queries, keys in ((32, 128, 128), (32, 512, 512), (32, 32, 1024), (32, 1024, 1024)):
        queries, keys = dim(queries), dim(keys)
        q, kk, v = tensor(1, heads, queries, 128), tensor(1, heads, keys, 128), tensor(1, heads, keys, 128)
        op = Operator("attention", "attention", queries, 128, keys, heads, heads)
        cases.append(Case("attention", f"sdpa h{heads} q{queries} k{keys}",
                          lambda model, op=op: model.operator_cost(op).seconds,
                          lambda q=q, kk=kk, v=v: F.scaled_dot_product_attention(q, kk, v)))
    for vocab in (LLADA_VOCAB, DREAM_VOCAB):
        vocab = dim(vocab)
        for rows in (4, 32):
            logits = tensor(rows, vocab, dtype=torch.float32)
            elements = rows * vocab
            cases.append(Case("sampling", f"argmax {rows}x{vocab}",
                              lambda model, e=elements: _kernels_time(model, argmax_kernels(e, 4)),
                              lambda logits=logits: logits.argmax(dim=-1)))
            cases.append(Case("sampling", f"softmax {rows}x{vocab}",
                              lambda model, e=elements: _kernels_time(model, softmax_kernels(e, 4, model.spec)),
                              lambda logits=logits: torch.softmax(logits, dim=-1)))
    for length, k in ((32, 4), (256, 16), (4096, 64)):
        scores = tensor(1, length, dtype=torch.float32)
        cases.append(Case("sampling", f"topk {length} k{k}",
                          lambda model, n=length, k=k: _kernels_time(model, topk_kernels(1, n, k, 4)),
                          lambda scores=scores, k=k: torch.topk(scores, k, dim=-1)))
    cases.append(_step_case(device, kind))
    return cases


def _step_case(device: str, kind: torch.dtype) -> Case:
    """A whole denoising step of the tiny model: forward over 128 positions, sampling a block of 32."""
    config = TINY_STEP_MODEL
    model = MaskedDiffusionTransformer(config).init_weights(0).to(device=device, dtype=kind).eval()
    generator = torch.Generator(device="cpu").manual_seed(1)
    length, block = config.max_seq_len, 32
    tokens = torch.randint(0, config.vocab_size - 1, (1, length), generator=generator).to(device)
    tokens[:, length - block:] = config.mask_token_id
    positions = torch.arange(length, device=device)
    shape = StepShape("none", length, length, block)

    def step() -> torch.Tensor:
        with torch.no_grad():
            logits = model(tokens, positions)
            block_logits = forbid_mask_token(logits[:, length - block:], config.mask_token_id)
            x0, confidence = token_confidence(block_logits)
            eligible = tokens[:, length - block:] == config.mask_token_id
            commit = commit_mask(confidence, eligible, k=4)
            return commit_tokens(tokens[:, length - block:], x0, commit)

    def predict(device_model: DeviceModel) -> float:
        reference = DeviceModel(device_model.spec, sampling="reference", attention="unfused", sample_rows="block")
        return reference.step(config, shape).seconds
    return Case("step", f"{config.name} step L{length} block{block}", predict, step)


@dataclass(frozen=True)
class ValidationRow:
    group: str
    name: str
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return (self.predicted_s - self.measured_s) / self.measured_s

    def to_dict(self) -> dict:
        return {"group": self.group, "kernel": self.name, "measured_ms": 1e3 * self.measured_s,
                "predicted_ms": 1e3 * self.predicted_s, "relative_error": self.error}


def best_calibration(calibrations: list[Calibration]) -> Calibration:
    """The fastest rates and shortest overheads seen over several calibration rounds."""
    first = calibrations[0]
    best = lambda key, pick: pick(getattr(c, key) for c in calibrations)  # noqa: E731
    caches = tuple((size, max(c.caches[i][1] for c in calibrations)) for i, (size, _) in enumerate(first.caches))
    return Calibration(first.device, first.dtype, first.threads, best("gemm_flops", max),
                       best("stream_bandwidth", max), caches, best("exp_per_s", max), best("exp64_per_s", max),
                       best("argmax_per_s", max), best("dispatch_s", min), best("alloc_s_per_byte", min))


def validate(device: str = "cpu", dtype: str | None = None, threads: int = 1, scale: float = 1.0,
             timer: Timer | None = None, rounds: int = 2) -> tuple[Calibration, list[ValidationRow]]:
    """Calibrate, then predict and measure every validation case (see the module docstring).

    Everything is measured `rounds` times, alternating calibration and cases, and the best
    (fastest) of the rounds is kept for both: on a shared machine a single round can catch a
    burst of contention. Runs torch with `threads` intra-op threads (1: CPU time is the work).
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    timer = timer or Timer(device)
    cases = validation_cases(device, dtype, scale)
    calibrations, measured = [], [math.inf] * len(cases)
    try:
        for _ in range(rounds):
            calibrations.append(calibrate(device, dtype, timer))
            for index, case in enumerate(cases):
                measured[index] = min(measured[index], timer(case.run))
    finally:
        torch.set_num_threads(previous_threads)
    calibration = best_calibration(calibrations)
    model = DeviceModel(calibration.spec(), attention="fused", sampling="reference", sample_rows="block")
    rows = [ValidationRow(case.group, case.name, time, case.predict(model)) for case, time in zip(cases, measured)]
    return calibration, rows


def error_summary(rows: list[ValidationRow]) -> dict[str, float]:
    """Mean |relative error| per group and overall."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(abs(row.error))
        groups.setdefault("all", []).append(abs(row.error))
    return {group: sum(errors) / len(errors) for group, errors in groups.items()}
