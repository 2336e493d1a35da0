"""Roofline models of GPUs and CPUs running the PyTorch reference of a denoising step.

Each operator becomes the PyTorch kernels its reference implementation launches; a kernel
takes max(FLOPs / attainable FLOP/s, bytes / attainable bandwidth), and an operator at least
its kernel count x the per-kernel launch (dispatch) time:

    t_op = max(sum over kernels of max(flops / (peak * eff), bytes / (bandwidth * eff_mem)),
               kernels * launch_s)

Matrix work runs at the tensor (GEMM) peak, element-wise work at the vector peak, float64
work (Fast-dLLM's softmax, LLaDA's Gumbel noise) at the FP64 peak - which is what makes
sampling expensive on GPUs whose FP64 rate is 1/64 of FP32 (GA102: RTX A6000).

Sampling implementations (`DeviceModel.sampling`):
- "fast-dllm": Fast-dLLM's `get_transfer_index` (github.com/NVlabs/Fast-dLLM, llada/generate.py):
  argmax over the bf16 logits, `F.softmax(logits.to(torch.float64))`, gather, where, then a
  sort (top-k) or a threshold + argmax over the positions; it runs over ALL query rows (the
  model returns logits for every queried position). With temperature > 0, `add_gumbel_noise`
  first: float64 cast, rand, -log, pow, exp, divide.
- "reference": npu.models.decoding (this repository): the block rows only, float32.

Peak figures are public datasheet numbers (sources next to each preset); efficiencies and launch
times are stated assumptions, and `DeviceSpec.measured` builds a spec from microbenchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from npu.models.transformer import ModelConfig
from npu.sim.analytical.costs import OperatorCost, StepCost, roofline_bound
from npu.sim.analytical.operators import Operator, StepShape, step_operators

TERA = 1e12
GIGA = 1e9


@dataclass(frozen=True)
class DeviceSpec:
    """One device: peaks, attainable fractions, per-kernel launch cost."""

    name: str
    matmul_flops: float          # dense GEMM peak in the model's dtype (tensor cores on GPUs)
    vector_flops: float          # element-wise fp32 peak
    fp64_flops: float            # element-wise fp64 peak
    memory_bandwidth: float      # bytes / s
    launch_s: float              # per kernel (eager PyTorch dispatch + launch)
    gemm_efficiency: float = 0.75      # attainable fraction of matmul_flops on large GEMMs
    attention_efficiency: float = 0.5  # fused attention (flash) vs matmul_flops
    memory_efficiency: float = 0.85    # attainable fraction of memory_bandwidth when streaming
    dtype_bytes: int = 2         # weights and activations (bf16 on GPUs, fp32 on the CPU reference)
    exp_flops: float = 8.0       # fp32 FLOPs per exp (polynomial + range reduction, assumption)
    exp64_flops: float = 20.0    # fp64 FLOPs per exp / log (assumption: ~2x the fp32 polynomial)
    power_w: float | None = None  # board power for energy = power x time (None: not reported)
    caches: tuple[tuple[float, float], ...] = ()  # (bytes, bandwidth) per cache level, smallest first
    gemm_pack_passes: float = 0.0  # extra passes over the weights a BLAS packs before multiplying
    indexed_reduction_per_s: float = 0.0  # argmax elements / s (0: as fast as a plain reduction)
    alloc_s_per_byte: float = 0.0  # first touch of a fresh output (page faults; CPU allocator), per byte
    alloc_min_bytes: float = 65536.0  # smaller outputs come from reused memory
    source: str = ""

    def bandwidth(self, nbytes: float) -> float:
        """Attainable bytes / s for a kernel that moves `nbytes`: the smallest cache that holds
        them, else DRAM."""
        for size, bandwidth in self.caches:
            if nbytes <= size:
                return bandwidth
        return self.memory_bandwidth * self.memory_efficiency


# Public peaks. Efficiencies, launch times and transcendental costs are the assumptions above.
A6000 = DeviceSpec(
    name="rtx-a6000",
    matmul_flops=154.8 * TERA,   # FP16/BF16 tensor, FP32 accumulate, dense (309.7 with sparsity)
    vector_flops=38.7 * TERA,    # FP32
    fp64_flops=38.7 * TERA / 64,  # GA10x: FP64 rate is 1/64 of FP32
    memory_bandwidth=768 * GIGA,  # 384-bit GDDR6, 16 Gb/s
    launch_s=8e-6, power_w=300.0,
    source="NVIDIA RTX A6000 datasheet; NVIDIA Ampere GA102 GPU architecture whitepaper (FP64 1/64 of FP32)")
A100 = DeviceSpec(
    name="a100-80gb",
    matmul_flops=312 * TERA,     # BF16 tensor, dense (624 with sparsity)
    vector_flops=19.5 * TERA,    # FP32
    fp64_flops=9.7 * TERA,       # FP64 non-tensor (19.5 with FP64 tensor cores, unused by element-wise ops)
    memory_bandwidth=2039 * GIGA,  # HBM2e, SXM4 80 GB
    launch_s=8e-6, power_w=400.0,
    source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)")
H100 = DeviceSpec(
    name="h100-sxm",
    matmul_flops=989 * TERA,     # BF16 tensor, dense (1979 with sparsity)
    vector_flops=67 * TERA,      # FP32
    fp64_flops=34 * TERA,        # FP64 non-tensor
    memory_bandwidth=3350 * GIGA,  # HBM3, SXM5 80 GB
    launch_s=8e-6, power_w=700.0,
    source="NVIDIA H100 Tensor Core GPU datasheet (SXM5 80GB)")
GPU_PRESETS = {spec.name: spec for spec in (A6000, A100, H100)}


@dataclass(frozen=True)
class Kernel:
    """One PyTorch kernel: work on a datapath, bytes moved, and bytes moved before the work
    starts (`staged_bytes`: a BLAS packing its weights), which do not overlap with it."""

    flops: float = 0.0
    datapath: str = "vector"     # "matmul", "attention", "vector", "fp64" or "index" (argmax elements)
    bytes: float = 0.0
    staged_bytes: float = 0.0
    written: float = 0.0         # bytes of the freshly allocated output
    footprint: float = 0.0       # bytes the kernel touches (selects the cache level; 0: `bytes`)

    def allocation_seconds(self, spec: DeviceSpec) -> float:
        return self.written * spec.alloc_s_per_byte if self.written >= spec.alloc_min_bytes else 0.0

    def compute_seconds(self, spec: DeviceSpec) -> float:
        if self.datapath == "index" and spec.indexed_reduction_per_s > 0:
            return self.flops / spec.indexed_reduction_per_s
        peak = {"matmul": spec.matmul_flops * spec.gemm_efficiency,
                "attention": spec.matmul_flops * spec.attention_efficiency,
                "vector": spec.vector_flops, "index": spec.vector_flops, "fp64": spec.fp64_flops}[self.datapath]
        return self.flops / peak

    def stream_seconds(self, spec: DeviceSpec) -> float:
        return self.bytes / spec.bandwidth(self.footprint or self.bytes)

    def memory_seconds(self, spec: DeviceSpec) -> float:
        staged = self.staged_bytes / spec.bandwidth(self.staged_bytes) if self.staged_bytes else 0.0
        return self.stream_seconds(spec) + staged + self.allocation_seconds(spec)

    def seconds(self, spec: DeviceSpec) -> float:
        staged = self.staged_bytes / spec.bandwidth(self.staged_bytes) if self.staged_bytes else 0.0
        return max(self.compute_seconds(spec), self.stream_seconds(spec)) + staged + self.allocation_seconds(spec)


def argmax_kernels(elements: int, element_bytes: int) -> list[Kernel]:
    """torch.argmax over the last axis: one read, one compare-and-keep-index per element."""
    return [Kernel(elements, "index", elements * element_bytes)]  # (the index output is small)


def softmax_kernels(elements: int, element_bytes: int, spec: DeviceSpec) -> list[Kernel]:
    """torch.softmax over the last axis: max pass, exp-and-sum pass, normalise pass."""
    return [Kernel(elements * (spec.exp_flops + 3), "vector", 4 * elements * element_bytes,
                   written=elements * element_bytes, footprint=2 * elements * element_bytes)]


def topk_kernels(rows: int, length: int, k: int, element_bytes: int) -> list[Kernel]:
    """torch.topk as a heap select: one compare per element plus k log2 k heap updates for each
    of log2(length / k) rounds, at the argmax rate (both are scalar loops keeping an index)."""
    log_k = max(1, k.bit_length())
    steps = rows * (length + k * log_k * max(1, (max(length // k, 1)).bit_length()))
    return [Kernel(steps, "index", rows * length * element_bytes + 2 * rows * k * 8)]


@dataclass(frozen=True)
class DeviceModel:
    """Costs of steps on a device running a PyTorch implementation (see the module docstring).

    `attention`: "fused" (scaled_dot_product_attention: no score matrix in memory) or
    "unfused" (matmul, scale, softmax, matmul as in npu/models/transformer.py).
    `sample_rows`: "query" (logits and sampling over every queried row, Fast-dLLM) or "block".
    """

    spec: DeviceSpec
    sampling: str = "fast-dllm"
    attention: str = "fused"
    sample_rows: str = "query"
    temperature: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def peak_flops(self) -> float:
        return self.spec.matmul_flops

    @property
    def peak_bandwidth(self) -> float:
        return self.spec.memory_bandwidth

    # ---- kernels per operator -----------------------------------------------------------------
    def kernels(self, op: Operator) -> list[Kernel]:
        b, s = self.spec.dtype_bytes, self.spec
        n = op.elements
        if op.kind == "gemm":
            flops = 2.0 * op.rows * op.width * op.out
            weights, out = op.width * op.out * b, op.rows * op.out * b
            data = weights + out + (op.rows * op.width + (op.out if op.bias else 0)) * b
            packing = s.gemm_pack_passes * weights if op.rows > 1 else 0.0  # a GEMV reads the weights as stored
            return [Kernel(flops, "matmul", data, packing, written=out)]
        if op.kind == "attention":
            q = op.heads * op.rows * op.width
            kv = 2 * op.heads * op.out * op.width  # read per query head (GQA expanded, as the reference)
            flops = 4.0 * op.heads * op.rows * op.out * op.width
            if self.attention == "fused":
                return [Kernel(flops, "attention", (2 * q + kv) * b, written=q * b)]
            scores = op.heads * op.rows * op.out
            views = [Kernel()] * 8  # view / transpose of q, k, v and the output: dispatch only
            return views + [
                Kernel(flops / 2, "matmul", (q + kv / 2 + scores) * b, written=scores * b),          # q @ k^T
                Kernel(scores, "vector", 2 * scores * b, written=scores * b),                        # / sqrt(d)
                Kernel(scores * (s.exp_flops + 4), "vector", 4 * scores * b, written=scores * b),    # softmax
                Kernel(flops / 2, "matmul", (scores + kv / 2 + q) * b, written=q * b),               # p @ v
                Kernel(0.0, "vector", 2 * q * b, written=q * b)]                                     # reshape copy
        if op.kind == "rmsnorm":   # pow, mean, add, rsqrt, mul, mul
            return [Kernel(n, "vector", 2 * n * b, written=n * b), Kernel(n, "vector", n * b), Kernel(), Kernel(),
                    Kernel(n, "vector", 3 * n * b, written=n * b), Kernel(n, "vector", 3 * n * b, written=n * b)]
        if op.kind == "rope":      # x * cos, slice, neg, slice, cat, * sin, add
            return [Kernel(n, "vector", 3 * n * b, written=n * b), Kernel(), Kernel(n / 2, "vector", n * b, written=n * b / 2),
                    Kernel(), Kernel(0, "vector", 2 * n * b, written=n * b), Kernel(n, "vector", 3 * n * b, written=n * b),
                    Kernel(n, "vector", 3 * n * b, written=n * b)]
        if op.kind == "rope_table":  # arange, pow, outer product, cat, cos, sin, casts
            return [Kernel(n, "vector", 2 * n * 8)] * 8
        if op.kind in ("embedding", "kv_write"):  # gather / index_put of rows
            return [Kernel(0, "vector", 2 * n * b, written=n * b if op.kind == "embedding" else 0.0)]
        if op.kind == "elementwise":
            reads = 2 if op.op in ("add", "sub", "mul") else 1
            flops = n * (s.exp_flops + 3 if op.op in ("silu", "exp") else 1)
            return [Kernel(flops, "vector", (reads + 1) * n * b, written=n * b)]
        if op.kind == "sampling":
            return self._sampling_kernels(op)
        if op.kind == "commit":
            if self.sampling == "reference":  # decoding.commit_mask: pairwise ranks over the block, checks
                pairs = op.rows * op.rows
                return [Kernel(pairs, "vector", 3 * pairs)] * 6 + [Kernel(0, "vector", 16 * op.rows)] * 14
            return [Kernel(0, "vector", 16 * op.rows)] * 8  # where, sort / threshold, scatter, where
        raise ValueError(f"no device kernels for operator kind {op.kind!r}")

    def _sampling_kernels(self, op: Operator) -> list[Kernel]:
        n, s = op.rows * op.width, self.spec
        if self.sampling == "reference":   # npu.models.decoding, float32
            kernels = [Kernel(0, "vector", 8 * n, written=4 * n), Kernel()]  # forbid: clone, set [MASK]
            kernels += argmax_kernels(n, 4)                            # x0
            kernels += [Kernel(n, "vector", 4 * n),                    # amax
                        Kernel(n, "vector", 8 * n, written=4 * n),     # subtract
                        Kernel(n * s.exp_flops, "vector", 8 * n, written=4 * n),  # exp
                        Kernel(n, "vector", 4 * n)]                    # sum
            return kernels + [Kernel(0, "vector", 8 * op.rows)] * 5    # gather, sub, squeeze, exp, divide
        if self.sampling != "fast-dllm":
            raise ValueError(f"unknown sampling implementation {self.sampling!r}")
        b = s.dtype_bytes
        kernels = []
        if self.temperature > 0:  # add_gumbel_noise in float64
            kernels += [Kernel(0, "vector", (b + 8) * n),               # logits.to(float64)
                        Kernel(10 * n, "fp64", 8 * n),                  # rand_like (Philox + convert)
                        Kernel(s.exp64_flops * n, "fp64", 16 * n),      # log
                        Kernel(n, "fp64", 16 * n),                      # negate
                        Kernel(2 * s.exp64_flops * n, "fp64", 16 * n),  # pow = exp(T log x)
                        Kernel(s.exp64_flops * n, "fp64", 16 * n),      # logits.exp()
                        Kernel(4 * n, "fp64", 24 * n),                  # divide
                        Kernel(n, "index", 8 * n)]                      # argmax (float64)
        else:
            kernels += argmax_kernels(n, b)                             # argmax over the bf16 logits
        kernels += [Kernel(0, "vector", (b + 8) * n),                   # logits.to(float64)
                    Kernel((s.exp64_flops + 4) * n, "fp64", 32 * n)]    # softmax: max, exp-sum, normalise passes
        return kernels + [Kernel(0, "vector", 16 * op.rows)] * 3        # gather, where, where

    # ---- steps --------------------------------------------------------------------------------
    def operators(self, model: ModelConfig, shape: StepShape) -> list[Operator]:
        """The step's operators as this implementation runs them (which rows are sampled)."""
        ops = step_operators(model, shape)
        if self.sample_rows == "query":
            ops = [replace(op, rows=shape.query_length) if op.kind in ("sampling", "commit") else op for op in ops]
        elif self.sample_rows != "block":
            raise ValueError(f"sample_rows={self.sample_rows!r} must be 'query' or 'block'")
        return ops

    def operator_cost(self, op: Operator) -> OperatorCost:
        kernels = self.kernels(op)
        busy = sum(kernel.seconds(self.spec) for kernel in kernels)
        launches = len(kernels) * self.spec.launch_s
        seconds = max(busy, launches)
        flops = sum(k.flops for k in kernels if k.datapath in ("matmul", "attention"))
        data = sum(k.bytes for k in kernels)
        if launches >= busy:
            bound = "launch"
        else:
            compute = sum(k.compute_seconds(self.spec) for k in kernels)
            memory = sum(k.memory_seconds(self.spec) for k in kernels)
            bound = "compute" if compute >= memory else "memory"
        phase = "sampling" if op.kind in ("sampling", "commit") else "transformer"
        energy = None if self.spec.power_w is None else self.spec.power_w * seconds
        return OperatorCost(op.name, op.kind, seconds, flops, data, bound, roofline_bound(bound), phase, energy)

    def step(self, model: ModelConfig, shape: StepShape) -> StepCost:
        """All operators of a step; operators of identical shape (the layers) are costed once."""
        known: dict[tuple, OperatorCost] = {}
        costs = []
        for op in self.operators(model, shape):
            key = (op.kind, op.rows, op.width, op.out, op.heads, op.kv_heads, op.op, op.bias)
            if key not in known:
                known[key] = self.operator_cost(op)
            costs.append(known[key].renamed(op.name))
        return StepCost(self.name, shape, tuple(costs), self.peak_flops, self.peak_bandwidth)
