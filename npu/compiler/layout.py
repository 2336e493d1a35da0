"""Where everything lives: padded shapes, the DRAM map, packed weights and SRAM allocation.

Head slots. Attention works per head on MLEN-wide tiles, so every head (Q, K, V and the attention
output) occupies a slot of `slot = roundup(head_dim, MLEN)` columns whose padding columns are
exactly zero. The compiler gets the zeros for free by padding the weights: q/k/v projections
gain zero output rows (and zero bias), o_proj gains zero input columns. For LLaDA/Dream
(head_dim 128) slot == head_dim on both dnpu presets; only tiny models pay for padding.

Model widths. d_model and d_ff are padded the same way, to `d_model_pad` / `d_ff_pad` (multiples
of MLEN): the weights gain zero rows/columns (`pack_weights`), so the residual stream, the norms'
outputs and the MLP activations hold exact zeros in the padded columns (a GEMM column of zero
weights writes +0.0; silu(0) * 0 = 0; 0 + 0 = 0), and the padded K rows add nothing to any GEMM.
The one reduction over d_model, RMSNorm's sum of squares, adds those zeros at the end of its
chain and divides by the true d_model. The NPU-arithmetic reference computes at the true widths
(`true_width_weights`); numerics defines its ragged reductions as the zero-padded ones
(`reference_gemm`, `chained_row_sum`), so program and reference agree bit for bit. A model whose
widths are multiples of MLEN pads nothing: its program is the unpadded one.

DRAM map (all programs of one generation share it, so it depends only on model, machine and
sequence length): constants, run parameters, token ids, step outputs, RoPE tables, weights in
the configured weight format, and one block-addressed K and V region per layer
([kv_heads][kv_slots][slot] in the KV format; slot s of head g is overwritten in place). With BAOS
KV quantization (Shapes.kv_quant) each layer also gets MXINT K and V regions and factor rows
(npu.compiler.kv_quant); the bf16 regions then hold only the current block's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from npu.compiler.asm import CompileError
from npu.hw.config import NPUConfig
from npu.models.transformer import ModelConfig
from npu.hw.rows import delivered, row_bytes


def roundup(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Shapes:
    """Model dimensions padded for one machine and one sequence length."""

    model: ModelConfig
    npu: NPUConfig
    seq_len: int  # L: positions of the whole sequence = KV slots
    # K/V storage: None = the formats.kv_cache regions only; a npu.compiler.kv_quant.KVQuant adds
    # BAOS's quantized K/V and factor-row regions and changes the K/V write and attention.
    kv_quant: object | None = None

    @property
    def slot(self) -> int:
        return roundup(self.model.head_dim, self.npu.mlen)

    @property
    def rope_width(self) -> int:
        return roundup(self.model.head_dim, self.npu.vlen)

    @property
    def q_width(self) -> int:
        return self.model.n_heads * self.slot

    @property
    def kv_width(self) -> int:
        return self.model.n_kv_heads * self.slot

    @property
    def kv_slots(self) -> int:
        return roundup(self.seq_len, self.npu.mlen)

    @property
    def vocab_pad(self) -> int:
        return roundup(self.model.vocab_size, self.npu.mlen)

    @property
    def d_model_pad(self) -> int:
        """Columns of the residual stream and K of every projection from it (zero padding)."""
        return roundup(self.model.d_model, self.npu.mlen)

    @property
    def d_ff_pad(self) -> int:
        """Columns of the MLP's gate/up activations and K of down_proj (zero padding)."""
        return roundup(self.model.d_ff, self.npu.mlen)

    @property
    def rope_rows(self) -> int:
        return self.seq_len + self.npu.blen

    def check(self) -> None:
        """Raise CompileError naming the first model dimension or format this machine cannot run."""
        m, vlen = self.model, self.npu.vlen
        # d_model, d_ff and the vocabulary need no rule: they are zero-padded to MLEN (see module doc)
        hd = m.head_dim
        if hd <= vlen:
            if hd & (hd - 1) or hd < 2:
                raise CompileError(f"{self.npu.name}: model {m.name} head_dim={hd} <= vlen must be a power of "
                                   f"two (vrothalf)")
        elif (hd // 2) % vlen:
            raise CompileError(f"{self.npu.name}: model {m.name} head_dim={hd} > vlen={vlen} needs head_dim/2 "
                               f"to be a multiple of vlen (RoPE by row moves)")
        if self.npu.formats.kv_cache not in ("bf16", "fp32"):
            raise CompileError(f"{self.npu.name}: formats.kv_cache={self.npu.formats.kv_cache} is not "
                               f"supported by the compiler yet (bf16 or fp32 K/V cache)")
        if self.kv_quant is not None:
            self.kv_quant.check(self)


# ---- weights --------------------------------------------------------------------------------


def _slot_rows(weight: np.ndarray, heads: int, head_dim: int, slot: int) -> np.ndarray:
    """(heads*head_dim, ...) -> (heads*slot, ...) with zero rows padding each head."""
    out = np.zeros((heads, slot) + weight.shape[1:], dtype=np.float32)
    out[:, :head_dim] = weight.reshape((heads, head_dim) + weight.shape[1:])
    return out.reshape((heads * slot,) + weight.shape[1:])


def weight_axes(name: str) -> tuple[str | None, ...]:
    """What each axis of a state-dict weight spans, for padding: 'd_model', 'd_ff', 'q' / 'kv'
    (heads x head_dim, padded per head to slots), 'vocab' (LM head rows); None: not padded
    (the embedding's rows are gathered by token id)."""
    if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
        return ("q" if "q_proj" in name else "kv", "d_model")
    if name.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias")):
        return ("q" if "q_proj" in name else "kv",)
    if name.endswith("o_proj.weight"):
        return ("d_model", "q")
    if name.endswith(("gate_proj.weight", "up_proj.weight")):
        return ("d_ff", "d_model")
    if name.endswith("down_proj.weight"):
        return ("d_model", "d_ff")
    if name.endswith("norm.weight"):
        return ("d_model",)
    if name == "embed.weight":
        return (None, "d_model")
    if name == "lm_head.weight":
        return ("vocab", "d_model")
    raise CompileError(f"weight {name!r}: the compiler has no layout for it")


def _padded_sizes(shapes: Shapes) -> dict[str, int]:
    return {"d_model": shapes.d_model_pad, "d_ff": shapes.d_ff_pad, "vocab": shapes.vocab_pad,
            "q": shapes.q_width, "kv": shapes.kv_width}


def packed_shape(name: str, shape: tuple[int, ...], shapes: Shapes) -> tuple[int, ...]:
    """The shape `pack_weights` gives the weight `name` of state-dict `shape`."""
    sizes = _padded_sizes(shapes)
    return tuple(n if axis is None else sizes[axis] for axis, n in zip(weight_axes(name), shape))


def _pad_axis(w: np.ndarray, axis: int, kind: str, shapes: Shapes) -> np.ndarray:
    """Zero padding of one axis: per head to its slot ('q', 'kv'), else at the end."""
    m = shapes.model
    if kind in ("q", "kv"):
        heads = m.n_heads if kind == "q" else m.n_kv_heads
        return np.moveaxis(_slot_rows(np.moveaxis(w, axis, 0), heads, m.head_dim, shapes.slot), 0, axis)
    width = [(0, 0)] * w.ndim
    width[axis] = (0, _padded_sizes(shapes)[kind] - w.shape[axis])
    return np.pad(w, width)


def pack_weights(weights: dict[str, np.ndarray], shapes: Shapes) -> dict[str, np.ndarray]:
    """State-dict float32 arrays -> the padded float32 matrices the DRAM image stores."""
    out: dict[str, np.ndarray] = {}
    for name, value in weights.items():
        w = np.asarray(value, dtype=np.float32)
        for axis, kind in enumerate(weight_axes(name)):
            if kind is not None:
                w = _pad_axis(w, axis, kind, shapes)
        out[name] = np.ascontiguousarray(w)
    return out


def true_width_weights(weights: dict[str, np.ndarray], shapes: Shapes) -> dict[str, np.ndarray]:
    """Packed (or delivered) weights with the d_model / d_ff padding sliced off again: what the
    reference computes with, at the model's true widths. Head slots and the LM head's padded
    vocabulary stay (the reference works on slots and masks padded logits like the program).
    Where a width leaves an MX block part real, part padding (d_model 100, blocks of 32), the
    block's shared scale comes from its real values alone (zeros never raise a block maximum), so
    the sliced values are those of the ragged row."""
    true = {"d_model": shapes.model.d_model, "d_ff": shapes.model.d_ff}
    out = {}
    for name, w in weights.items():
        index = tuple(slice(0, true[kind]) if kind in true else slice(None) for kind in weight_axes(name))
        out[name] = w[index]
    return out


def is_matrix(name: str, array: np.ndarray) -> bool:
    """Matrices go to DRAM in the weight format; vectors (norms, biases) in the vector format."""
    return array.ndim == 2


def weight_format(name: str, array: np.ndarray, npu: NPUConfig) -> str:
    return npu.formats.weights if is_matrix(name, array) else "bf16"


def reference_weights(packed: dict[str, np.ndarray], npu: NPUConfig) -> dict[str, np.ndarray]:
    """What the NPU computes with: every packed weight after its DRAM round trip into SRAM."""
    out = {}
    for name, w in packed.items():
        fmt = weight_format(name, w, npu)
        sram = "bf16" if is_matrix(name, w) else npu.formats.vector  # matrix SRAM holds bf16
        if name == "embed.weight":
            sram = npu.formats.vector  # rows are gathered into vector SRAM
        out[name] = delivered(w, fmt, npu, sram)
    return out


def rope_tables(shapes: Shapes) -> tuple[np.ndarray, np.ndarray]:
    """cos / sin (rope_rows, rope_width) float32, the recipe of transformer.rope_cos_sin."""
    m = shapes.model
    inv_freq = 1.0 / (m.rope_theta ** (np.arange(0, m.head_dim, 2, dtype=np.float64) / m.head_dim))
    angles = np.arange(shapes.rope_rows, dtype=np.float64)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=-1)
    cos = np.zeros((shapes.rope_rows, shapes.rope_width), np.float32)
    sin = np.zeros_like(cos)
    cos[:, :m.head_dim] = np.cos(angles).astype(np.float32)
    sin[:, :m.head_dim] = np.sin(angles).astype(np.float32)
    return cos, sin


# ---- DRAM map -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    name: str
    address: int
    nbytes: int
    fmt: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"address": self.address, "bytes": self.nbytes, "format": self.fmt, "shape": list(self.shape)}


CONSTANTS_BYTES = 1 << 16  # per-program constants (bias rows, key masks, fp32 scalars)
DRAM_ALIGN = 64


@dataclass
class DramMap:
    regions: dict[str, Region] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, fmt: str, shape: tuple[int, ...], mx_block: int) -> Region:
        rows, cols = (shape[0] if len(shape) == 2 else 1), shape[-1]
        nbytes = rows * row_bytes(fmt, cols, mx_block) if fmt != "raw" else cols
        region = Region(name, self.size, nbytes, fmt, shape)
        self.regions[name] = region
        self.size = roundup(self.size + nbytes, DRAM_ALIGN)
        return region

    def __getitem__(self, name: str) -> Region:
        return self.regions[name]

    def to_dict(self) -> dict:
        return {name: r.to_dict() for name, r in self.regions.items()}


def plan_dram(shapes: Shapes, weight_shapes: dict[str, tuple[int, ...]]) -> DramMap:
    """Lay out every region; weight_shapes are the packed shapes (see pack_weights)."""
    npu, m = shapes.npu, shapes.model
    mx = npu.mx_block
    dram = DramMap()
    dram.add("constants", "raw", (CONSTANTS_BYTES,), mx)
    dram.add("params", "int32", (16,), mx)
    dram.add("fparams", "fp32", (16,), mx)
    dram.add("tokens", "int32", (roundup(shapes.seq_len + npu.blen, 16),), mx)
    ls_pad = roundup(shapes.seq_len, npu.vlen)
    dram.add("out.x0", "int32", (ls_pad,), mx)
    dram.add("out.confidence", "fp32", (ls_pad,), mx)
    dram.add("out.committed", "int32", (ls_pad,), mx)
    dram.add("rope.cos", "bf16", (shapes.rope_rows, shapes.rope_width), mx)
    dram.add("rope.sin", "bf16", (shapes.rope_rows, shapes.rope_width), mx)
    for name, shape in weight_shapes.items():
        fmt = npu.formats.weights if len(shape) == 2 else "bf16"
        dram.add(name, fmt, shape, mx)
    kv_rows = m.n_kv_heads * shapes.kv_slots
    for layer in range(m.n_layers):
        for kind in ("k", "v"):
            dram.add(f"cache_{kind}.{layer}", npu.formats.kv_cache, (kv_rows, shapes.slot), mx)
    if shapes.kv_quant is not None:
        shapes.kv_quant.add_regions(dram, shapes)
    if dram.size > npu.dram.capacity_bytes:
        raise CompileError(f"{npu.name}: dram.capacity_gib: the image needs {dram.size / 2**30:.2f} GiB, "
                           f"more than {npu.dram.capacity_gib} GiB")
    return dram


# ---- SRAM allocation ------------------------------------------------------------------------


class AllocationError(CompileError):
    """An SRAM allocation that does not fit: the lowering retries such a stage on fewer rows."""


@dataclass
class Allocator:
    """First-fit allocation of one SRAM (addresses in elements, `align`-element granules).

    Buffers are freed right after their last use, so the same space serves many tensors of a
    step; `peak` is the high-water mark the statistics report.
    """

    name: str
    capacity: int
    align: int
    free_spans: list[tuple[int, int]] = field(default_factory=list)
    live: dict[str, tuple[int, int]] = field(default_factory=dict)
    peak: int = 0

    def __post_init__(self) -> None:
        self.free_spans = [(0, self.capacity)]

    def alloc(self, tag: str, elements: int) -> int:
        size = roundup(max(elements, 1), self.align)
        for i, (start, length) in enumerate(self.free_spans):
            if length >= size:
                self.free_spans[i] = (start + size, length - size)
                self.live[tag] = (start, size)
                self.peak = max(self.peak, start + size)
                return start
        used = sum(size for _, size in self.live.values())
        raise AllocationError(f"{self.name}: buffer {tag!r} needs {size} more elements; {used} of "
                              f"{self.capacity} are live ({', '.join(self.live)})")

    def free(self, tag: str) -> None:
        start, size = self.live.pop(tag)
        spans = sorted(self.free_spans + [(start, size)])
        merged: list[tuple[int, int]] = []
        for s, n in spans:
            if merged and merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            elif n:
                merged.append((s, n))
        self.free_spans = merged
