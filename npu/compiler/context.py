"""The static description of one compiled step and the fixed scratch layout of the scalar SRAMs.

`StepSpec` is what the lowering and the NPU-arithmetic reference both read: model and machine,
sequence length, how many query rows the step feeds (`query_length`, starting at the run-time
parameter q0), how many of them the sampling pass reads (`sample_length`, starting at run-time
s0 relative to q0) and the commit rule. `Emit` bundles the assembly writer, the DRAM map and the
vector SRAM allocator for the emitters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu.compiler.asm import Asm, CompileError
from npu.compiler.layout import Allocator, DramMap, Shapes, roundup
from npu.hw.numerics import round_to_format

# FP SRAM words (fp32)
FP_INV_D, FP_EPS, FP_SCALE, FP_MLEN = 0, 1, 2, 3  # loaded from the constants region
FP_TAU = 16  # fparams[0]
FP_TEMP = 17  # fparams[1]: the sampling temperature T (programs with StepSpec.temperature)
FP_SCRATCH = 32
# INT SRAM words (int32)
INT_Q0, INT_S0, INT_K = 0, 1, 2  # params[0..2]
INT_MROW = 16  # scratch word
INT_KV_BASE, INT_KV_LEFT = 18, 19  # attention: matrix-SRAM base of the current KV head, KV heads left to prefetch
INT_SCRATCH = 64


@dataclass(frozen=True)
class StepSpec:
    shapes: Shapes
    query_length: int
    sample_length: int
    sampling: str  # "topk" | "threshold"
    default_q0: int = 0
    default_s0: int = 0
    # Gumbel-max sampling: x0 = argmax(logits + T * g), T from fparams[1] and g from the DRAM
    # region "noise" at run time, so one program serves every T > 0. False: greedy argmax.
    temperature: bool = False

    @property
    def model(self):
        return self.shapes.model

    @property
    def npu(self):
        return self.shapes.npu

    @property
    def rows(self) -> int:
        """Query rows padded to whole BLEN blocks (pad rows carry token 0 and are ignored)."""
        return roundup(self.query_length, self.npu.blen)

    @property
    def sample_rows(self) -> int:
        return roundup(self.sample_length, self.npu.blen)

    @property
    def sample_pad(self) -> int:
        return roundup(self.sample_length, self.npu.vlen)

    def check(self) -> None:
        self.shapes.check()
        if self.sampling not in ("topk", "threshold"):
            raise CompileError(f"sampling rule {self.sampling!r} is not topk or threshold")
        if not 0 < self.sample_length <= self.query_length <= self.shapes.seq_len:
            raise CompileError(f"need 0 < sample_length {self.sample_length} <= query_length "
                               f"{self.query_length} <= seq_len {self.shapes.seq_len}")
        vlen = self.npu.vlen
        if self.temperature and vlen & (vlen - 1):
            raise CompileError(f"{self.npu.name}: temperature sampling reads one lane of a VLEN chunk "
                               f"by shifts; vlen={vlen} is not a power of two")


class ScalarLayout:
    """Fixed word addresses of the per-step arrays in FP and INT SRAM."""

    def __init__(self, spec: StepSpec):
        npu, pad = spec.npu, spec.sample_pad
        self.rinv = FP_SCRATCH                      # 1/l of the BLEN rows of one attention block
        self.mst = self.rinv + roundup(npu.blen, 16)  # running max per sampled row
        self.lst = self.mst + pad                   # running exp-sum per sampled row
        self.conf = self.lst + pad                  # confidence (fp32)
        self.confr = self.conf + pad                # confidence rounded to the vector format
        self.fp_end = self.confr + pad
        if spec.temperature:  # appended, so greedy programs keep their addresses
            self.pst = self.fp_end                  # running max of logits + T * g per sampled row
            self.cst = self.pst + pad               # logit of the running argmax (x0) per sampled row
            self.lane = self.cst + pad              # one VLEN chunk of a tile row, to read one lane
            self.fp_end = self.lane + npu.vlen
        self.tok = INT_SCRATCH                      # query token ids (rows, pad rows = token 0)
        self.blk = self.tok + roundup(spec.rows, 16)  # sampled tokens, padded with -1
        self.idx = self.blk + pad                   # running argmax = x0
        self.rank = self.idx + pad
        self.com = self.rank + pad                  # committed 0/1
        self.elig = self.com + pad                  # eligible 0/1 (generic lowering)
        self.int_end = self.elig + pad
        fp_words, int_words = npu.fp_sram.size_bytes // 4, npu.int_sram.size_bytes // 4
        if self.fp_end > fp_words:
            raise CompileError(f"{npu.name}: fp_sram.size_bytes: {self.fp_end} words needed, {fp_words} available")
        if self.int_end > int_words:
            raise CompileError(f"{npu.name}: int_sram.size_bytes: {self.int_end} words needed, {int_words} available")


@dataclass
class Emit:
    asm: Asm
    spec: StepSpec
    dram: DramMap
    vec: Allocator
    scalars: ScalarLayout
    constants: dict  # name -> vector SRAM address of a constant row / strip
    matrix_peak: int = 0  # matrix SRAM elements in use at the busiest point

    @property
    def npu(self):
        return self.spec.npu

    @property
    def shapes(self) -> Shapes:
        return self.spec.shapes


def rounder(npu):
    """Rounding of a value landing in vector SRAM."""
    fmt = npu.formats.vector

    def rnd(x):
        return round_to_format(np.asarray(x, dtype=np.float32), fmt)
    return rnd


def f32(x):
    return np.asarray(x, dtype=np.float32)
