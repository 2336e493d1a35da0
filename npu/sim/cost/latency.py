"""The per-instruction timing model of the dnpu, in ONE place: a pure function of the ISA table
entry, the operands and the machine configuration.

`instruction_timing(mnemonic, config, operands, shape)` says, for one instruction:
- `issue`: front-end cycles it takes to decode and dispatch (1 for every instruction);
- `occupancy`: cycles its unit is busy before it can start the next instruction (the
  initiation interval; a fully pipelined op has occupancy 1);
- `latency`: cycles from its start until its result is visible (>= occupancy);
- `ports`: SRAM port cycles it holds from its start (port contention is modelled on these);
- `traffic`, `macs`, `lane_ops`: what it does, for the energy model.
DMA and matrix ops carry extra fields (bytes moved, weight-tile load, systolic fill/drain)
that the cycle simulator combines with run-time state (the DRAM model, which weight tile the
array holds). The analytical model evaluates the same function in closed form.

Every number is a field of `LatencyParameters`, read from the machine's technology file
(config/tech/<name>.yaml, npu.hw.technology) with its source; docs/timing.md tabulates them.
Starting point: the latency table of the public PLENA code (github.com/AICrossSim/PLENA_Simulator,
arXiv 2509.09505): vector add 2, mul 1, exp 1, reciprocal 2, max 4, sum 8, top-k 20, matrix tile
op 1 + BLEN + 3 pipelined. `params=None` means the technology of `config`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from npu.hw.config import MATRIX_SRAM_ELEMENT_BITS, NPUConfig
from npu.hw.technology import LatencyParameters
from npu.isa.table import BY_MNEMONIC, DRAM_FORMATS, SMOOTH_MODES, InstructionSpec, Unit
from npu.hw.rows import row_bytes

SCALAR_WORD_BYTES = 4  # FP and INT SRAM hold 32-bit words


@dataclass(frozen=True)
class PortUse:
    """`cycles` cycles of one port of SRAM `memory`, held from the instruction's start."""

    memory: str
    cycles: int


@dataclass(frozen=True)
class Traffic:
    """Bytes an instruction reads from and writes to one memory ("dram" or an SRAM)."""

    memory: str
    read_bytes: int = 0
    write_bytes: int = 0


@dataclass(frozen=True)
class DmaShape:
    """Run-time operands of a DMA (register values at dispatch)."""

    rows: int
    cols: int


@dataclass(frozen=True)
class InstructionTiming:
    """Timing and resource use of one instruction; see the module docstring."""

    mnemonic: str
    unit: str                          # control, scalar, dma, matrix, vector
    issue: int
    occupancy: int
    latency: int
    ports: tuple[PortUse, ...] = ()
    traffic: tuple[Traffic, ...] = ()
    macs: int = 0
    lane_ops: tuple[tuple[str, int], ...] = ()  # (energy class, lane operations); DMA: its codec's (dma_codec_actions)
    # DMA: bytes on each side and the SRAM the transfer streams through its port
    dma_setup: int = 0
    dram_bytes: int = 0
    dram_write: bool = False
    sram_memory: str = ""
    sram_bytes: int = 0
    sram_port_cycles: int = 0
    # matrix: loading a new weight tile into the array, and the systolic fill/drain
    weight_load_cycles: int = 0
    weight_bytes: int = 0
    fill_drain: int = 0


def port_cycles(config: NPUConfig, memory: str, nbytes: int) -> int:
    """Cycles one port of `memory` needs to move `nbytes` (one width_bits word per cycle)."""
    width = getattr(config, memory).width_bits // 8
    return -(-nbytes // width)


def _sram_element_bytes(config: NPUConfig, memory: str) -> int:
    if memory == "vector_sram":
        return config.vector_element_bytes
    if memory == "matrix_sram":
        return MATRIX_SRAM_ELEMENT_BITS // 8
    return SCALAR_WORD_BYTES


_DMA_TARGETS = {"v": "vector_sram", "m": "matrix_sram", "f": "fp_sram", "i": "int_sram"}

# Vector ops: (latency parameter, energy class, vector SRAM rows read, rows written,
# (scalar memory, words read, words written) or None).
_VECTOR_OPS: dict[str, tuple[str, str, int, int, tuple[str, int, int] | None]] = {}
for _name in ("vadd", "vsub", "vadds", "vsubs"):
    _VECTOR_OPS[_name] = ("vector_add", "vector_add", 2 if _name in ("vadd", "vsub") else 1, 1, None)
for _name in ("vmul", "vmuls"):
    _VECTOR_OPS[_name] = ("vector_mul", "vector_mul", 2 if _name == "vmul" else 1, 1, None)
for _name in ("vmax", "vmin", "vgt", "vge", "veq", "vamax"):
    _VECTOR_OPS[_name] = ("vector_compare", "vector_compare", 2, 1, None)
for _name in ("vmaxs", "vmins", "vges", "vgts"):
    _VECTOR_OPS[_name] = ("vector_compare", "vector_compare", 1, 1, None)
for _name in ("vmov", "vneg", "vabs", "vrothalf"):
    _VECTOR_OPS[_name] = ("vector_move", "vector_move", 1, 1, None)
_VECTOR_OPS["vbcast"] = ("vector_move", "vector_move", 0, 1, None)
_VECTOR_OPS["vexp"] = ("vector_exp", "vector_special", 1, 1, None)
for _name in ("vrecip", "vrsqrt"):
    _VECTOR_OPS[_name] = ("vector_recip", "vector_special", 1, 1, None)
_VECTOR_OPS["vsilu"] = ("vector_silu", "vector_special", 1, 1, None)
_VECTOR_OPS["vsum"] = ("vector_sum", "vector_add", 1, 0, None)
_VECTOR_OPS["vmaxr"] = ("vector_max_reduce", "vector_compare", 1, 0, None)
_VECTOR_OPS["vargmax"] = ("vector_max_reduce", "vector_compare", 1, 0, None)
_VECTOR_OPS["vldf"] = ("vector_transfer", "vector_move", 0, 1, ("fp_sram", 1, 0))
_VECTOR_OPS["vstf"] = ("vector_transfer", "vector_move", 1, 0, ("fp_sram", 0, 1))
_VECTOR_OPS["vldi"] = ("vector_transfer", "vector_move", 0, 1, ("int_sram", 1, 0))
_VECTOR_OPS["vsti"] = ("vector_transfer", "vector_move", 1, 0, ("int_sram", 0, 1))
_VECTOR_OPS["vieq"] = ("vector_transfer", "vector_compare", 0, 1, ("int_sram", 1, 0))
_VECTOR_OPS["vrank"] = ("vector_rank", "vector_rank", 2, 0, ("int_sram", 1, 1))
_VECTOR_OPS["vtopk"] = ("vector_compare", "vector_compare", 1, 1, ("int_sram", 1, 0))
_VECTOR_OPS["vthresh"] = ("vector_compare", "vector_compare", 2, 1, None)
_VECTOR_OPS["vsel"] = ("vector_move", "vector_move", 3, 1, None)
_VECTOR_OPS["vseli"] = ("vector_move", "vector_move", 1, 0, ("int_sram", 2, 1))
_VECTOR_OPS["vsmscale"] = ("vector_smscale", "vector_special", 1, 1, None)

_SCALAR_FP = {
    "fadd": "fp_add", "fsub": "fp_add", "fmul": "fp_mul", "fmax": "fp_compare", "fmin": "fp_compare",
    "flt": "fp_compare", "fle": "fp_compare", "feq": "fp_compare", "fexp": "fp_exp",
    "frecip": "fp_recip", "frsqrt": "fp_recip",
}


def vector_latency(mnemonic: str, config: NPUConfig, operands: Mapping[str, int] | None = None,
                   params: LatencyParameters | None = None) -> int:
    """Result latency of a vector instruction (cycles from start to the written result)."""
    params = params or config.technology.latency
    key = _VECTOR_OPS[mnemonic][0]
    if key == "vector_sum":  # adder tree over VLEN lanes: log2(VLEN) levels, then accumulate
        return int(math.log2(config.vlen)) + params.vector_sum_extra
    if key == "vector_silu":  # x * 1 / (1 + exp(-x)): exp, add, reciprocal, mul in sequence
        return params.vector_exp + params.vector_add + params.vector_recip + params.vector_mul
    if key == "vector_smscale":  # power-of-two modes are exponent arithmetic; sqrt needs rsqrt * x
        mode = SMOOTH_MODES[(operands or {}).get("mode", 0)]
        return params.vector_recip + params.vector_mul if mode == "sqrt" else params.vector_move
    return getattr(params, key)


def instruction_timing(mnemonic: str | InstructionSpec, config: NPUConfig,
                       operands: Mapping[str, int] | None = None, shape: DmaShape | None = None,
                       params: LatencyParameters | None = None) -> InstructionTiming:
    """Timing of one instruction. `operands` are the decoded operand fields (needed for the DMA
    format and the vsmscale mode); `shape` is a DMA's rows x cols (register values at dispatch)."""
    params = params or config.technology.latency
    spec = mnemonic if isinstance(mnemonic, InstructionSpec) else BY_MNEMONIC.get(mnemonic)
    if spec is None:
        raise ValueError(f"unknown mnemonic {mnemonic!r}")
    name, unit, operands = spec.mnemonic, spec.unit, operands or {}
    if unit is Unit.CONTROL:
        return InstructionTiming(name, "control", params.dispatch, 1, 1)
    if unit is Unit.SCALAR:
        return _scalar_timing(spec, config, params)
    if unit is Unit.VECTOR:
        return _vector_timing(name, config, operands, params)
    if unit is Unit.MATRIX:
        return _matrix_timing(name, config, params)
    if shape is None:
        raise ValueError(f"{name}: a DMA needs its shape (rows, cols) to be timed")
    return _dma_timing(name, config, operands, shape, params)


def _scalar_timing(spec: InstructionSpec, config: NPUConfig, params: LatencyParameters) -> InstructionTiming:
    name = spec.mnemonic
    if name in ("lw", "sw", "flw", "fsw"):
        memory = "int_sram" if name in ("lw", "sw") else "fp_sram"
        store = name in ("sw", "fsw")
        traffic = Traffic(memory, 0 if store else SCALAR_WORD_BYTES, SCALAR_WORD_BYTES if store else 0)
        latency = params.scalar_store if store else params.scalar_load
        return InstructionTiming(name, "scalar", params.dispatch, 1, latency, (PortUse(memory, 1),), (traffic,))
    if spec.latency == "fpu":
        latency = getattr(params, _SCALAR_FP[name]) if name in _SCALAR_FP else params.fp_move
        return InstructionTiming(name, "scalar", params.dispatch, 1, latency, lane_ops=(("scalar_fp", 1),))
    return InstructionTiming(name, "scalar", params.dispatch, 1, params.scalar_alu, lane_ops=(("scalar_int", 1),))


def _vector_timing(name: str, config: NPUConfig, operands: Mapping[str, int],
                   params: LatencyParameters) -> InstructionTiming:
    _, energy_class, rows_read, rows_written, scalar = _VECTOR_OPS[name]
    row = config.vlen * config.vector_element_bytes
    latency = vector_latency(name, config, operands, params)
    occupancy = latency if name == "vrank" else 1  # the ranking network is iterative
    ports = [PortUse("vector_sram", 1)]
    traffic = [Traffic("vector_sram", rows_read * row, rows_written * row)]
    if scalar is not None:
        memory, reads, writes = scalar
        words = config.vlen * SCALAR_WORD_BYTES
        ports.append(PortUse(memory, port_cycles(config, memory, words)))
        traffic.append(Traffic(memory, reads * words, writes * words))
    lanes = config.vlen * config.vlen if name == "vrank" else config.vlen
    return InstructionTiming(name, "vector", params.dispatch, occupancy, latency, tuple(ports), tuple(traffic),
                             lane_ops=((energy_class, lanes),))


def _matrix_timing(name: str, config: NPUConfig, params: LatencyParameters) -> InstructionTiming:
    act_bytes = config.blen * config.mlen * config.vector_element_bytes
    feed = port_cycles(config, "vector_sram", act_bytes)
    if name == "mwb":
        return InstructionTiming(name, "matrix", params.dispatch, feed, feed + params.matrix_writeback_extra,
                                 (PortUse("vector_sram", feed),), (Traffic("vector_sram", 0, act_bytes),))
    weight_bytes = config.weight_tile_bytes
    # Streaming: the array takes one activation row per cycle, so back-to-back tile ops follow
    # each other every BLEN cycles (the activation feed through a vector-SRAM port can limit);
    # the issue and tail stages and the systolic fill/drain through MLEN PEs are pipeline
    # latency, paid once before the accumulator holds the op's result (a weight-stationary
    # array streams row after row: Kung, IEEE Computer 15(1), 1982; TPU, Jouppi et al., ISCA 2017).
    occupancy = max(config.blen, feed)
    latency = params.matrix_issue + occupancy + params.matrix_tail + config.mlen
    return InstructionTiming(
        name, "matrix", params.dispatch, occupancy, latency,
        (PortUse("vector_sram", feed),), (Traffic("vector_sram", act_bytes, 0),),
        macs=config.blen * config.mlen * config.mlen,
        weight_load_cycles=port_cycles(config, "matrix_sram", weight_bytes), weight_bytes=weight_bytes,
        fill_drain=config.mlen)


def tile_op_first_result(config: NPUConfig, params: LatencyParameters | None = None) -> int:
    """Cycles from a tile op's start to its first accumulator write (the issue stage and the MLEN
    PEs of the array): a tile op into an accumulator whose `mwb` has not read it yet may start
    this much before that write-back ends (both simulators)."""
    params = params or config.technology.latency
    return params.matrix_issue + config.mlen


# The DMA codec's energy actions (npu.sim.cost.energy): every element a transfer moves passes
# through the codec (npu/rtl/dma_codec.v: one block of mx_block elements per cycle, every DRAM
# format); a KV transfer also scales each element - a multiply (dldkv: x scale; dstkv: x 1/scale)
# and, on a store, the reciprocal of the scale (the codec computes it per element).
DMA_CODEC_ACTIONS = ("dma_codec_element", "dma_kv_multiply", "dma_kv_reciprocal")


def dma_codec_actions(name: str, rows: int, cols: int) -> tuple[tuple[str, int], ...]:
    """(action, count) of the DMA codec for `rows` x `cols` elements moved by DMA instruction `name`."""
    elements = max(rows, 0) * max(cols, 0)
    if not elements:
        return ()
    actions = [("dma_codec_element", elements)]
    if "kv" in name:
        actions.append(("dma_kv_multiply", elements))
        if name.startswith("dst"):
            actions.append(("dma_kv_reciprocal", elements))
    return tuple(actions)


def _dma_timing(name: str, config: NPUConfig, operands: Mapping[str, int], shape: DmaShape,
                params: LatencyParameters) -> InstructionTiming:
    if "fmt" not in operands:
        raise ValueError(f"{name}: a DMA needs its `fmt` operand to be timed")
    fmt = DRAM_FORMATS[operands["fmt"]]
    memory = _DMA_TARGETS[name[-1]]
    store = name.startswith("dst")
    rows, cols = max(shape.rows, 0), max(shape.cols, 0)
    if rows == 0 or cols == 0:
        return InstructionTiming(name, "dma", params.dispatch, params.dma_setup, params.dma_setup,
                                 dma_setup=params.dma_setup, dram_write=store, sram_memory=memory)
    # Both MX scale rules (dst* / dst*nc, npu.isa.table.STORE_SCALE_RULES) cost the same: the DRAM
    # layout and bytes are identical, and the no-clip check (the block maximum's leading mantissa
    # bits against a per-format constant, then +1 on the shared exponent) sits beside the OCP
    # exponent in the codec, which keeps its rate of one MX block per cycle (npu/rtl/dma_codec.v).
    dram_bytes = rows * row_bytes(fmt, cols, config.mx_block)
    sram_bytes = rows * cols * _sram_element_bytes(config, memory)
    cycles = port_cycles(config, memory, sram_bytes)
    ports = [PortUse(memory, cycles)]
    traffic = [Traffic("dram", 0 if store else dram_bytes, dram_bytes if store else 0),
               Traffic(memory, sram_bytes if store else 0, 0 if store else sram_bytes)]
    if "kv" in name:  # the smoothing-scale row is read once from vector SRAM
        scale_bytes = cols * config.vector_element_bytes
        ports.append(PortUse("vector_sram", port_cycles(config, "vector_sram", scale_bytes)))
        traffic.append(Traffic("vector_sram", scale_bytes, 0))
    occupancy = params.dma_setup + cycles
    return InstructionTiming(name, "dma", params.dispatch, occupancy, occupancy, tuple(ports), tuple(traffic),
                             lane_ops=dma_codec_actions(name, rows, cols),
                             dma_setup=params.dma_setup, dram_bytes=dram_bytes, dram_write=store,
                             sram_memory=memory, sram_bytes=sram_bytes, sram_port_cycles=cycles)
