"""row_sram (npu/rtl/row_sram.v), the NPU's SRAMs as element-wide sram_bank instances with the ASAP7
bank macros' ports: a random stream of row reads and writes at every alignment, with partial lane
masks, against a numpy model of an element-addressed memory (npu/sim/functional/memory.py's Sram).
Read latency 1 cycle; read_data holds until the next read."""

from __future__ import annotations

import numpy as np
import pytest

from npu.rtl import RTL_DIR
from npu.rtl import sim as rtl_sim
from rtl_helpers import ELABORATE, verilator_lint, yosys, yosys_binaries

SOURCES = [RTL_DIR / "sram_bank.v", RTL_DIR / "row_sram.v"]
SHAPES = [(8, 16, 128), (4, 32, 64)]  # LANES, ELEMENT_BITS, WORDS


def random_stream(lanes: int, element_bits: int, words: int, cycles: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if element_bits == 16 else np.uint32
    enable = rng.random(cycles) < 0.85
    write = rng.random(cycles) < 0.5
    address = rng.integers(0, words - lanes + 1, cycles)
    # full rows, single lanes, a prefix (a row's tail) and random masks
    kinds = rng.integers(0, 4, cycles)
    masks = np.where(kinds == 0, (1 << lanes) - 1,
                     np.where(kinds == 1, 1 << rng.integers(0, lanes, cycles),
                              np.where(kinds == 2, (1 << rng.integers(1, lanes + 1, cycles)) - 1,
                                       rng.integers(0, 1 << lanes, cycles))))
    data = rng.integers(0, 1 << element_bits, (cycles, lanes), dtype=np.uint64).astype(dtype)
    return {"enable": enable, "write": write, "address": address, "lane_enable": masks, "write_data": data}


def element_model(stream: dict[str, np.ndarray], words: int) -> dict[int, np.ndarray]:
    """The row each full-row read returns from an element-addressed memory (functional Sram)."""
    lanes = stream["write_data"].shape[1]
    memory = np.zeros(words, dtype=stream["write_data"].dtype)
    rows = {}
    for k in range(len(stream["enable"])):
        at, mask = int(stream["address"][k]), int(stream["lane_enable"][k])
        if not stream["enable"][k]:
            continue
        if stream["write"][k]:
            for j in range(lanes):
                if mask >> j & 1:
                    memory[at + j] = stream["write_data"][k, j]
        elif mask == (1 << lanes) - 1:
            rows[k] = memory[at:at + lanes].copy()
    return rows


def bank_model(stream: dict[str, np.ndarray], words: int) -> np.ndarray:
    """The same, exact about disabled lanes: each bank's dataout holds its own last read."""
    lanes = stream["write_data"].shape[1]
    memory = np.zeros(words, dtype=stream["write_data"].dtype)
    bank_out = np.zeros(lanes, dtype=memory.dtype)
    rotation = 0
    out = np.zeros_like(stream["write_data"])
    for k in range(len(stream["enable"])):
        at, mask = int(stream["address"][k]), int(stream["lane_enable"][k])
        if stream["enable"][k]:
            if stream["write"][k]:
                for j in range(lanes):
                    if mask >> j & 1:
                        memory[at + j] = stream["write_data"][k, j]
            else:
                for j in range(lanes):
                    if mask >> j & 1:
                        bank_out[(at + j) % lanes] = memory[at + j]
                rotation = at % lanes
        out[k] = [bank_out[(j + rotation) % lanes] for j in range(lanes)]
    return out


def run_rtl(stream: dict[str, np.ndarray], lanes: int, element_bits: int, words: int, simulator: str) -> np.ndarray:
    params = {"LANES": lanes, "ELEMENT_BITS": element_bits, "WORDS": words}
    build_dir = rtl_sim.build_design("row_sram", SOURCES, simulator, parameters=params)
    nbytes = max(1, (words - 1).bit_length() + 7) // 8
    inputs = {
        "enable": stream["enable"].astype(np.uint8)[:, None],
        "write": stream["write"].astype(np.uint8)[:, None],
        "address": stream["address"].astype("<u4").view(np.uint8).reshape(-1, 4)[:, :nbytes],
        "lane_enable": stream["lane_enable"].astype("<u8").view(np.uint8).reshape(-1, 8)[:, :(lanes + 7) // 8],
        "write_data": np.ascontiguousarray(stream["write_data"]).view(np.uint8),
    }
    out = rtl_sim.run_stream("row_sram", build_dir, inputs, ("read_data",), simulator)["read_data"]
    return np.ascontiguousarray(out).view(stream["write_data"].dtype)


@pytest.mark.parametrize("lanes, element_bits, words", SHAPES)
@pytest.mark.parametrize("simulator", rtl_sim.SIMULATORS)
def test_rows_at_any_alignment_read_back_what_was_written(simulator, lanes, element_bits, words):
    if reason := rtl_sim.missing_tool(simulator):
        pytest.skip(reason)
    stream = random_stream(lanes, element_bits, words, 800, seed=lanes * element_bits)
    expected = bank_model(stream, words)
    got = run_rtl(stream, lanes, element_bits, words, simulator)
    mismatches = np.argwhere(got != expected)
    assert len(mismatches) == 0, f"{len(mismatches)} lanes differ, first (cycle, lane) {mismatches[:5].tolist()}"
    # the full-row reads alone follow the element-addressed memory (the functional simulator's Sram)
    full = element_model(stream, words)
    assert len(full) > 50
    assert all((got[k] == row).all() for k, row in full.items())


def test_lint_and_elaboration_are_clean():
    for params in ({"LANES": 8, "ELEMENT_BITS": 16, "WORDS": 128}, {"LANES": 256, "ELEMENT_BITS": 16, "WORDS": 1 << 21}):
        result = verilator_lint("row_sram", SOURCES, params)
        assert result.returncode == 0, result.stderr
    for binary in yosys_binaries():
        result = yosys(binary, "row_sram", SOURCES, ELABORATE, {"LANES": 8, "ELEMENT_BITS": 16, "WORDS": 128})
        assert result.returncode == 0, result.stderr
