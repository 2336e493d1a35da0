"""Runners of the dLLM sampling pass: argmax + confidence per position, then commit.

`run_token_confidence` runs confidence_<lowering>.s: for each position, x0 = argmax of the
logits (or of logits + T * Gumbel noise) and the softmax probability of x0, in one streaming
pass over the vocabulary. `run_sampling_pass` runs it followed by commit_<lowering>.s on a block:
top-k (k from the schedule) or threshold selection among still-masked positions and the commit
of x0 into the block's token ids. The lowering is "dllm" on machines with the dLLM instructions
and "generic" otherwise (ar-npu); both give bit-identical results.

What the PyTorch reference (npu.models.decoding) sees and what the kernels compute:
- logits are stored in DRAM in the activation format (bf16), so pass bf16-representable
  values to compare x0 with torch.argmax exactly;
- the commit rule ranks the confidences in the vector-SRAM format (`vldf` rounds fp32 to
  bf16); `SamplingResult.rule_confidence` holds exactly those values, and
  `commit_mask(rule_confidence, ...)` reproduces the kernel's commits bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu.hw import numerics
from npu.hw.config import NPUConfig
from npu.kernels.layout import (
    DRAM_ALIGN,
    Allocator,
    KernelRun,
    activation_bytes,
    assemble_kernel,
    fp32_word,
    kernel_source,
    new_simulator,
    run_program,
    split_word,
)
from npu.isa.assembler import Program
from npu.sim.functional import FunctionalSimulator

MAX_TILE_CHUNKS = 64  # VLEN chunks per streamed tile: 4096 logits, 2 x 16 KiB double buffer


def lowering(config: NPUConfig) -> str:
    """The kernel variant: dllm where the machine has the dLLM sampling instructions, else generic."""
    return "dllm" if config.dllm_instructions else "generic"


def choose_tile_chunks(vocab_chunks: int, limit: int = MAX_TILE_CHUNKS) -> int:
    """The largest number of VLEN chunks per tile that divides the vocabulary and is <= limit."""
    return max(d for d in range(1, min(limit, vocab_chunks) + 1) if vocab_chunks % d == 0)


@dataclass
class ConfidenceResult:
    x0: np.ndarray          # int64 (positions,)
    confidence: np.ndarray  # float32 (positions,)
    run: KernelRun


@dataclass
class SamplingResult:
    x0: np.ndarray               # int64 (positions,)
    confidence: np.ndarray       # float32 (positions,)
    rule_confidence: np.ndarray  # float32: the confidences as the commit rule ranked them
    commit: np.ndarray           # bool (positions,)
    tokens: np.ndarray           # int64 (positions,): the block after the commit
    run: KernelRun


@dataclass
class SamplingLayout:
    """Where one sampling program keeps everything: its assembler constants and DRAM buffers."""

    constants: dict[str, int]
    dram: Allocator
    logits_at: int
    noise_at: int
    x0_at: int
    conf_at: int
    tokens_at: int
    commit_at: int

    @property
    def positions(self) -> int:
        return self.constants["POSITIONS"]


def sampling_layout(config: NPUConfig, positions: int, vocab: int, *, temperature: float = 0.0,
                    forbid_id: int | None = None, tile_chunks: int | None = None, commit: bool = False,
                    mask_id: int = 0, threshold: float | None = None) -> SamplingLayout:
    """Lay out DRAM and SRAM for confidence_*.s, and for commit_*.s after it when `commit`."""
    vlen = config.vlen
    if vocab % vlen:
        raise ValueError(f"vocabulary {vocab} must be a multiple of VLEN={vlen}")
    tile_chunks = tile_chunks or choose_tile_chunks(vocab // vlen)
    tile = tile_chunks * vlen
    if vocab % tile or tile_chunks > 1023 or vocab // tile > 1023:
        raise ValueError(f"tile of {tile_chunks} chunks must divide the vocabulary {vocab} "
                         f"into at most 1023 tiles")
    if forbid_id is not None and not 0 <= forbid_id < vocab:
        raise ValueError(f"forbid_id {forbid_id} outside the vocabulary [0, {vocab})")
    if commit and positions > 256 and not config.dllm_instructions:
        raise ValueError("the generic commit lowering handles at most 256 positions per block")
    use_noise = temperature != 0.0
    rows = -(-positions // vlen)
    act_bytes = activation_bytes(config)

    dram = Allocator("DRAM", 1 << 40, DRAM_ALIGN)
    logits_at = dram.take(positions * vocab * act_bytes)
    noise_at = dram.take(positions * vocab * 4) if use_noise else 0
    x0_at, conf_at = dram.take(positions * 4), dram.take(positions * 4)
    tokens_at = dram.take(positions * 4) if commit else 0
    commit_at = dram.take(positions * 4) if commit else 0

    vector = Allocator("vector SRAM", config.vector_sram.size_bytes // config.vector_element_bytes, vlen)
    int_sram = Allocator("INT SRAM", config.int_sram.size_bytes // 4, vlen)
    fp_sram = Allocator("FP SRAM", config.fp_sram.size_bytes // 4, vlen)
    block_rows = rows * vlen
    constants = {
        "VLEN": vlen, "POSITIONS": positions, "TILES": vocab // tile, "TILE": tile,
        "TILE_CHUNKS": tile_chunks, "TILE_BYTES": tile * act_bytes, "NOISE_TILE_BYTES": tile * 4,
        "ACT_BYTES": act_bytes, "USE_NOISE": int(use_noise),
        "BUF0": vector.take(2 * tile), "BUF1": vector.take(2 * tile),
        "RAMP": vector.take(vlen), "SEARCH_ROW": vector.take(vlen),
        "X0_SRAM": int_sram.take(block_rows), "K_SRAM": int_sram.take(1),
        "ISCRATCH": int_sram.take(max(vlen, block_rows)),
        "CONF_SRAM": fp_sram.take(block_rows), "FSCRATCH": fp_sram.take(1),
        **split_word("TEMP", fp32_word(temperature)),
        **split_word("FORBID", -1 if forbid_id is None else forbid_id),
        **split_word("LOGITS", logits_at), **split_word("LOGITS_ROW", vocab * act_bytes),
        **split_word("NOISE", noise_at), **split_word("NOISE_ROW", vocab * 4 if use_noise else 0),
        **split_word("X0_OUT", x0_at), **split_word("CONF_OUT", conf_at),
    }
    if commit:
        constants.update({
            "N": positions, "ROWS": rows, "PAD": block_rows - positions, "ROWS_X_VLEN": block_rows,
            "RULE": int(threshold is not None),
            "TOK_SRAM": int_sram.take(block_rows), "RANK_SRAM": int_sram.take(block_rows),
            "COMMIT_SRAM": int_sram.take(block_rows), "KEY_F": fp_sram.take(block_rows),
            **split_word("TOKENS", tokens_at), **split_word("COMMIT_OUT", commit_at),
            **split_word("TAU", fp32_word(threshold or 0.0)), **split_word("MASK", mask_id),
        })
        for name in ("CONFV", "ELIG", "MASKV", "TOPV", "KEYV", "RANKV", "POSV"):
            constants[name] = vector.take(block_rows)
        for name in ("NEGINF_ROW", "ZERO_ROW", "BCAST_ROW", "GT_ROW", "EQ_ROW", "AFTER_ROW"):
            constants[name] = vector.take(vlen)
    return SamplingLayout(constants, dram, logits_at, noise_at, x0_at, conf_at, tokens_at, commit_at)


def sampling_program(config: NPUConfig, layout: SamplingLayout) -> Program:
    """confidence_<lowering>.s, then commit_<lowering>.s if the layout has a block, then halt."""
    commit = "N" in layout.constants
    name = f"{'sampling' if commit else 'confidence'}_{lowering(config)}"
    source = kernel_source(f"confidence_{lowering(config)}", config)
    if commit:
        source += kernel_source(f"commit_{lowering(config)}", config)
    return assemble_kernel(name, source + "        halt\n", layout.constants)


def _loaded_simulator(config: NPUConfig, layout: SamplingLayout, logits: np.ndarray, temperature: float,
                      noise: np.ndarray | None, strict: bool) -> FunctionalSimulator:
    """A simulator with the logits (and noise) in DRAM where the layout says."""
    if temperature != 0.0 and (noise is None or np.shape(noise) != logits.shape):
        raise ValueError(f"temperature {temperature} needs Gumbel noise of the logits' shape {logits.shape}")
    sim = new_simulator(config, layout.dram, strict)
    sim.dram.write(layout.logits_at, logits, config.formats.activations)
    if temperature != 0.0:
        sim.dram.write(layout.noise_at, np.asarray(noise, dtype=np.float32), "fp32")
    return sim


def run_token_confidence(config: NPUConfig, logits: np.ndarray, *, temperature: float = 0.0,
                         noise: np.ndarray | None = None, forbid_id: int | None = None,
                         tile_chunks: int | None = None, strict: bool = True) -> ConfidenceResult:
    """x0 and confidence of each row of logits (positions, vocab).

    temperature > 0 needs `noise`, Gumbel values g of the logits' shape (npu.models.decoding.gumbel_noise);
    forbid_id (the [MASK] id) gets logit -inf first, as decoding.forbid_mask_token.
    """
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float32))
    layout = sampling_layout(config, *logits.shape, temperature=temperature, forbid_id=forbid_id,
                             tile_chunks=tile_chunks)
    sim = _loaded_simulator(config, layout, logits, temperature, noise, strict)
    program = sampling_program(config, layout)
    run = run_program(sim, program.source.removesuffix(".s"), program)
    x0 = sim.dram.read(layout.x0_at, layout.positions, "int32").astype(np.int64)
    return ConfidenceResult(x0, sim.dram.read(layout.conf_at, layout.positions, "fp32"), run)


def run_sampling_pass(config: NPUConfig, logits: np.ndarray, tokens: np.ndarray, mask_id: int, *,
                      k: int | None = None, threshold: float | None = None, temperature: float = 0.0,
                      noise: np.ndarray | None = None, forbid_id: int | None = None,
                      tile_chunks: int | None = None, strict: bool = True) -> SamplingResult:
    """One sampling step of a block: logits (positions, vocab), tokens (positions,) of the block.

    Exactly one of k (top-k rule; the control program leaves it in INT SRAM) and threshold
    (Fast-dLLM rule) must be given.
    """
    if (k is None) == (threshold is None):
        raise ValueError("run_sampling_pass needs exactly one of k (top-k) or threshold")
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float32))
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    if tokens.size != logits.shape[0]:
        raise ValueError(f"tokens has {tokens.size} entries for {logits.shape[0]} positions")
    layout = sampling_layout(config, *logits.shape, temperature=temperature, forbid_id=forbid_id,
                             tile_chunks=tile_chunks, commit=True, mask_id=mask_id, threshold=threshold)
    sim = _loaded_simulator(config, layout, logits, temperature, noise, strict)
    sim.dram.write(layout.tokens_at, tokens.astype(np.int32), "int32")
    sim.int_sram.write(layout.constants["K_SRAM"], np.array([k or 0], dtype=np.int32))
    program = sampling_program(config, layout)
    run = run_program(sim, program.source.removesuffix(".s"), program)
    positions = layout.positions
    x0 = sim.dram.read(layout.x0_at, positions, "int32").astype(np.int64)
    confidence = sim.dram.read(layout.conf_at, positions, "fp32")
    rule_confidence = numerics.round_to_format(confidence, config.formats.vector)
    commit = sim.dram.read(layout.commit_at, positions, "int32") != 0
    new_tokens = sim.dram.read(layout.tokens_at, positions, "int32").astype(np.int64)
    return SamplingResult(x0, confidence, rule_confidence, commit, new_tokens, run)
