"""Run programs on npu_top (the whole core: npu_core, queues, DMA engine, vector and matrix units,
SRAMs) in one free-running simulation and return each program's final state.

The testbench (npu/rtl/npu_top_bench.v) and its DRAM model (npu/rtl/bandwidth_dram.v) are HDL: the
simulator runs with no host code per cycle, reading the programs and DRAM images from hex files
this module writes and dumping the final state to hex files it reads back. The caller supplies the
program words, each program's initial DRAM image (bytes; the runtime's image builder or a test makes
it - this layer imports no runtime) and the DRAM timing the model follows (bytes per cycle, read
and write latency: the cycle simulator's bandwidth backend, npu.sim.cost.dram.BandwidthDram, gives
them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npu.hw.config import NPUConfig
from npu.rtl import RTL_DIR, core, sim
from npu.rtl.top import top_parameters, top_sources

BENCH = "npu_top_bench"
# status_<p>.hex, in this order (npu_top_bench.v)
STATUS = ("halted", "error_code", "core_cycles", "retired", "cycles", "timed_out", "dram_requests", "dram_bytes")


# The whole core is one large C++ model: verilated.mk's -Os takes the better part of an hour on
# the 2-core machine; -O1 (measured in docs/rtl.md) builds in minutes.
VERILATOR_ARGS = ("-CFLAGS", "-O1")


@dataclass(frozen=True)
class DramTiming:
    """The testbench DRAM: a pipe of bytes_per_cycle plus a fixed latency (cycles) per access."""

    bytes_per_cycle: float
    read_latency: int
    write_latency: int


@dataclass
class TopRun:
    """The final state of one program on npu_top (registers and SRAM words as bit patterns)."""

    halted: bool
    error_code: int
    core_cycles: int     # the core's cycle counter: reset to `halt` (or the fault)
    retired: int
    cycles: int          # reset to every unit idle (what the program takes)
    timed_out: bool
    dram_requests: int
    dram_bytes: int
    int_regs: list[int]
    fp_regs: list[int]
    addr_regs: list[int]
    int_sram: np.ndarray     # uint32
    fp_sram: np.ndarray      # uint32 (float32 bits)
    vector_sram: np.ndarray  # uint32: bf16 codes or float32 bits, by the vector format
    matrix_sram: np.ndarray  # uint16 bf16 codes
    dram: np.ndarray         # uint8

    @property
    def fault(self) -> str:
        return core.CORE_FAULTS[self.error_code][0]


def build_top(config: NPUConfig, dram_bytes: int, timing: DramTiming, simulator: str | None = None,
              program_words: int = 1024) -> tuple[Path, dict[str, int]]:
    """Build npu_top_bench for `config` (cached by npu.rtl.sim.build_bench); returns (build dir,
    npu_top's parameters)."""
    parameters = top_parameters(config, dram_bytes, program_words)
    bench_parameters = {**parameters, "BYTES_PER_CYCLE": repr(float(timing.bytes_per_cycle)),
                        "DRAM_READ_LATENCY": int(timing.read_latency),
                        "DRAM_WRITE_LATENCY": int(timing.write_latency)}
    sources = top_sources() + [RTL_DIR / "bandwidth_dram.v", RTL_DIR / f"{BENCH}.v"]
    return sim.build_bench(BENCH, sources, simulator, parameters=bench_parameters,
                           verilator_args=VERILATOR_ARGS), parameters


def _write_hex(path: Path, values: np.ndarray, digits: int) -> None:
    """One value per line, `digits` hex digits each ($readmemh)."""
    values = np.asarray(values, dtype=np.uint64)
    if digits == 2:
        text = values.astype(np.uint8).tobytes().hex("\n")
    else:
        text = "\n".join(f"{int(v):0{digits}x}" for v in values)
    path.write_text(text + "\n")


def _read_hex(path: Path, bits: int) -> np.ndarray:
    """The values of a $writememh file (Icarus writes `// 0x...` address comments; Verilator none)."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("//")]
    text = "".join(lines)
    digits = bits // 4
    if any(len(line) != digits for line in lines) or any(c in text for c in "xXzZ"):
        bad = next(line for line in lines if len(line) != digits or any(c in line for c in "xXzZ"))
        raise RuntimeError(f"{path.name}: value {bad!r} is not a {bits}-bit number (an X or Z in the dumped state?)")
    raw = np.frombuffer(bytes.fromhex(text), dtype=np.dtype(f">u{bits // 8}"))
    return raw.astype(np.dtype(f"<u{bits // 8}"))


def run_programs(config: NPUConfig, programs: list[np.ndarray], dram_images: list[np.ndarray], timing: DramTiming,
                 simulator: str | None = None, *, program_words: int = 1024,
                 max_cycles: int | list[int] = 200_000, vcd: tuple[int, Path] | None = None,
                 vcd_cycles: int = 0, progress: Callable[[str], None] | None = None) -> list[TopRun]:
    """Run each program (uint32 words) from reset with its DRAM image (uint8, all the same size);
    SRAM contents carry over from one program to the next. `vcd` = (program index, path): record
    npu_top's signals while that program runs (a value change dump, e.g. for power analysis), its
    first `vcd_cycles` cycles (0: all). `progress` receives the testbench's line per finished program."""
    simulator = simulator or sim.default_simulator()
    if len(programs) != len(dram_images):
        raise ValueError(f"{len(programs)} programs but {len(dram_images)} DRAM images")
    if not programs:
        return []
    dram_bytes = len(dram_images[0])
    if any(len(image) != dram_bytes for image in dram_images):
        raise ValueError("every DRAM image must have the same size (the DRAM_BYTES parameter of the build)")
    longest = max(len(p) for p in programs)
    if longest > program_words:
        raise ValueError(f"a program of {longest} words does not fit the {program_words}-word program memory")
    budgets = np.broadcast_to(np.asarray(max_cycles, dtype=np.int64), (len(programs),))
    if (budgets <= 0).any() or (budgets >= 1 << 31).any():
        raise ValueError(f"max_cycles must lie in [1, 2^31): {max_cycles}")
    build_dir, parameters = build_top(config, dram_bytes, timing, simulator, program_words)
    vector_bits = parameters["VECTOR_BITS"]
    with tempfile.TemporaryDirectory(prefix="run-", dir=build_dir) as work:
        work = Path(work)
        settings = np.stack([[len(p) for p in programs], budgets], axis=1).reshape(-1)
        _write_hex(work / "settings.hex", settings, 8)
        for p, (program, image) in enumerate(zip(programs, dram_images)):
            words = np.zeros(program_words, dtype=np.uint64)
            words[:len(program)] = np.asarray(program, dtype=np.uint64)
            _write_hex(work / f"program_{p}.hex", words, 8)
            _write_hex(work / f"dram_{p}.hex", np.asarray(image, dtype=np.uint8), 2)
        plusargs: dict[str, object] = {"work": work, "programs": len(programs)}
        if vcd is not None:
            plusargs.update(vcd_program=vcd[0], vcd=Path(vcd[1]).resolve(), vcd_cycles=vcd_cycles)
        sim.run_bench(build_dir, simulator, plusargs, progress)
        runs = []
        for p in range(len(programs)):
            def read(name: str, bits: int) -> np.ndarray:
                return _read_hex(work / f"{name}_{p}.hex", bits)

            status = dict(zip(STATUS, (int(x) for x in read("status", 32))))
            runs.append(TopRun(bool(status["halted"]), status["error_code"], status["core_cycles"], status["retired"],
                               status["cycles"], bool(status["timed_out"]), status["dram_requests"], status["dram_bytes"],
                               [int(x) for x in read("int_regs", 32)], [int(x) for x in read("fp_regs", 32)],
                               [int(x) for x in read("addr_regs", 64)], read("int_sram", 32), read("fp_sram", 32),
                               read("vector_sram", vector_bits).astype(np.uint32), read("matrix_sram", 16),
                               read("dram_out", 8)))
    return runs


def record_activity(config: NPUConfig, program: np.ndarray, dram_image: np.ndarray, timing: DramTiming,
                    vcd_path: Path, cycles: int, simulator: str = "icarus", *, program_words: int = 1024) -> Path:
    """A value change dump of npu_top's signals during the first `cycles` cycles of `program` from
    reset (fresh SRAMs) with `dram_image`: switching activity for a power estimate. Icarus by default:
    it records without a special build (a Verilator bench would need --trace)."""
    if cycles <= 0:
        raise ValueError(f"cycles = {cycles}: record at least one cycle")
    if len(program) > program_words:
        raise ValueError(f"a program of {len(program)} words does not fit the {program_words}-word program memory")
    build_dir, _ = build_top(config, len(dram_image), timing, simulator, program_words)
    vcd_path = Path(vcd_path).resolve()
    vcd_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vcd-", dir=build_dir) as work:
        work = Path(work)
        _write_hex(work / "settings.hex", np.array([len(program), cycles + 1]), 8)
        words = np.zeros(program_words, dtype=np.uint64)
        words[:len(program)] = np.asarray(program, dtype=np.uint64)
        _write_hex(work / "program_0.hex", words, 8)
        _write_hex(work / "dram_0.hex", np.asarray(dram_image, dtype=np.uint8), 2)
        sim.run_bench(build_dir, simulator, {"work": work, "programs": 1, "vcd_program": 0, "vcd": vcd_path,
                                              "vcd_cycles": cycles, "vcd_finish": 1})
    if not vcd_path.exists():
        raise RuntimeError(f"{simulator} wrote no {vcd_path}")
    return vcd_path
