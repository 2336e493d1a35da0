"""Switching activity of a synthesized unit on a workload, measured by gate-level simulation.

The netlist (with the wrapper's registers) runs in Icarus Verilog with the ASAP7 cell models
(shared/pdk/asap7/verilog), one operand set per clock cycle; the VCD of every net is reduced to
per-bit toggles per cycle and the fraction of time at 1, the figures OpenSTA takes with
`set_power_activity -pins` (OpenSTA 2.0.17 has no read_vcd / read_saif). The simulation is
zero-delay, so glitches are not counted: the activity is a lower bound of a real circuit's.
The outputs are returned too, so the netlist's function can be checked against npu.hw.numerics.

Workloads (`WORKLOADS`) are operand distributions of the NPU's kernels, drawn with a fixed seed:
activations ~ N(0, 1), weights ~ N(0, 0.02) (the initialisation scale of GPT-2/LLaMA-style
models), softmax exponents x - max(x) in [-16, 0], reciprocals of softmax sums in [1, 64],
RMSNorm mean squares in [0.01, 16]. They stand in for traces of compiled kernels (not done yet).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from npu.io import write_json
from npu.synth.errors import SynthesisError, ToolFailedError
from npu.synth.pdk import Pdk
from npu.synth.sta import NetActivity
from npu.synth.tools import find_tool


def _fp32_bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)


def _bf16_bits(values: np.ndarray) -> np.ndarray:
    return _fp32_bits(values) >> 16  # truncated: any bf16 pattern of the value's magnitude


@dataclass(frozen=True)
class Workload:
    description: str
    operands: Callable[[np.random.Generator, int], dict[str, np.ndarray]]


def _activations(rng, n):
    return rng.normal(0.0, 1.0, n)


def _load_once(n: int) -> np.ndarray:
    """A weight-load strobe: high in the first cycle only (weight-stationary: loaded, then held)."""
    strobe = np.zeros(n, dtype=np.uint64)
    strobe[0] = 1
    return strobe


def _matrix_pe(rng, n):
    """One PE of a tile op: weight ~ N(0, 0.02) loaded once, bf16 activations ~ N(0, 1) streaming
    through, fp32 partial sums ~ N(0, 4) from above (a reduction a few rows deep)."""
    weight = _bf16_bits(rng.normal(0, 0.02, 1))[0]
    return {"w_load0": _load_once(n), "w_load1": np.zeros(n, dtype=np.uint64),
            "w_data": np.full(n, weight, dtype=np.uint64), "act_in": _bf16_bits(_activations(rng, n)),
            "sel_in": np.zeros(n, dtype=np.uint64), "psum_in": _fp32_bits(rng.normal(0, 2.0, n))}


def _int8_pe(rng, n):
    """The anchor PE: an INT8 weight loaded once, INT8 activations and INT32 partial sums of a
    quantized layer (activations ~ N(0, 32) clipped to int8, sums ~ N(0, 2^12))."""
    return {"w_load": _load_once(n), "w_data": np.full(n, rng.integers(-64, 64) & 0xFF, dtype=np.uint64),
            "act_in": (np.clip(np.round(rng.normal(0, 32, n)), -128, 127).astype(np.int64) & 0xFF).astype(np.uint64),
            "psum_in": (np.round(rng.normal(0, 4096, n)).astype(np.int64) & 0xFFFFFFFF).astype(np.uint64)}


WORKLOADS: dict[str, Workload] = {
    "matrix_pe": Workload("tile op: bf16 activations ~ N(0,1) x weight ~ N(0,0.02) + fp32 sum ~ N(0,4)", _matrix_pe),
    "matrix_pe_row0": Workload("tile op: bf16 activations ~ N(0,1) x weight ~ N(0,0.02)", _matrix_pe),
    "anchor_fp_pe": Workload("tile op: bf16 activations ~ N(0,1) x weight ~ N(0,0.02) + fp32 sum ~ N(0,4)", _matrix_pe),
    "anchor_int8_pe": Workload("int8 activations ~ N(0,32) x int8 weight + int32 sum ~ N(0,4096)", _int8_pe),
    "bf16_to_fp32": Workload("bf16 activations ~ N(0,1)", lambda rng, n: {"a": _bf16_bits(_activations(rng, n))}),
    "fp32_to_bf16": Workload("fp32 activations ~ N(0,1)", lambda rng, n: {"a": _fp32_bits(_activations(rng, n))}),
    "fp32_add": Workload("accumulation: partial sum ~ N(0,4) + product ~ N(0,1)",
                         lambda rng, n: {"a": _fp32_bits(rng.normal(0, 2.0, n)), "b": _fp32_bits(_activations(rng, n))}),
    "fp32_mul": Workload("activation ~ N(0,1) x weight ~ N(0,0.02)",
                         lambda rng, n: {"a": _fp32_bits(_activations(rng, n)), "b": _fp32_bits(rng.normal(0, 0.02, n))}),
    "fp32_exp": Workload("softmax exponent x - max(x) ~ U(-16, 0)", lambda rng, n: {"a": _fp32_bits(rng.uniform(-16, 0, n))}),
    "fp32_recip": Workload("softmax sum ~ U(1, 64)", lambda rng, n: {"a": _fp32_bits(rng.uniform(1, 64, n))}),
    "fp32_rsqrt": Workload("RMSNorm mean square ~ U(0.01, 16)", lambda rng, n: {"a": _fp32_bits(rng.uniform(0.01, 16, n))}),
    "fp32_sigmoid": Workload("gate pre-activation ~ N(0,2)", lambda rng, n: {"a": _fp32_bits(rng.normal(0, 2.0, n))}),
    "fp32_silu": Workload("FFN gate pre-activation ~ N(0,2)", lambda rng, n: {"a": _fp32_bits(rng.normal(0, 2.0, n))}),
}


def testbench(top: str, ports: dict[str, tuple[str, int]], vectors: int, warmup: int) -> str:
    """A testbench applying one row of <input>.hex per clock cycle (at the falling edge) and
    writing the outputs of each cycle to outputs.txt; the VCD covers the cycles after `warmup`."""
    inputs = {name: width for name, (direction, width) in ports.items() if direction == "input" and name != "clk"}
    outputs = {name: width for name, (direction, width) in ports.items() if direction == "output"}
    lines = ["`timescale 1ns/1ps", "module activity_tb;", "  reg clk = 1'b0;", "  integer i, out;"]
    for name, width in inputs.items():
        lines += [f"  reg [{width - 1}:0] {name};", f"  reg [{width - 1}:0] {name}_mem [0:{vectors - 1}];"]
    for name, width in outputs.items():
        lines.append(f"  wire [{width - 1}:0] {name};")
    connections = ", ".join([".clk(clk)"] + [f".{name}({name})" for name in (*inputs, *outputs)])
    lines += [f"  {top} dut ({connections});", "  initial begin", '    out = $fopen("outputs.txt", "w");']
    lines += [f'    $readmemh("{name}.hex", {name}_mem);' for name in inputs]
    lines += ['    $dumpfile("activity.vcd");', "    $dumpvars(0, dut);", "    $dumpoff;",
              f"    for (i = 0; i < {vectors + 2}; i = i + 1) begin"]
    lines += [f"      {name} = {name}_mem[i < {vectors} ? i : {vectors - 1}];" for name in inputs]
    lines += [f"      if (i == {warmup}) $dumpon;", "      #5 clk = 1'b1;", "      #5 clk = 1'b0;",
              '      $fwrite(out, "' + " ".join(["%h"] * len(outputs)) + '\\n", ' + ", ".join(outputs) + ");",
              "    end", "    $dumpoff;", "    $fclose(out);", "    $finish;", "  end", "endmodule"]
    return "\n".join(lines) + "\n"


def parse_vcd(path: Path, scope_prefix: str) -> tuple[dict[str, tuple[int, int]], int]:
    """Net bit name (relative to `scope_prefix`, `/`-separated) -> (toggles, time at 1), and the
    measured time span. Only each time step's final value counts: the zero-delay simulation's
    changes within one time step (delta cycles) are not physical transitions. x/z values count
    neither as toggles nor as time at 1."""
    bits_of: dict[str, list[str]] = {}        # VCD code -> its bit names (LSB first)
    aliases: dict[str, list[list[str]]] = {}  # VCD code -> every name it has (one net in several scopes)
    scopes: list[str] = []
    value: dict[str, list[str]] = {}      # committed per-bit values (LSB first)
    pending: dict[str, str] = {}          # changes of the current time step
    toggles: dict[str, list[int]] = {}
    high: dict[str, list[int]] = {}
    since: dict[str, list[int]] = {}
    now = start = 0
    started = False

    def commit() -> None:
        for code, text in pending.items():
            bits = bits_of[code]
            new = list(text.rjust(len(bits), "0" if text[0] in "01" else text[0])[::-1])
            old = value.get(code)
            if old is not None and started:
                for i, (before, after) in enumerate(zip(old, new)):
                    if before == after:
                        continue
                    if before == "1":
                        high[code][i] += now - since[code][i]
                    if before in "01" and after in "01":
                        toggles[code][i] += 1
                    since[code][i] = now
            value[code] = new
            if old is None or not started:
                since[code] = [now] * len(bits)
        pending.clear()

    with open(path) as handle:
        for line in handle:
            token = line.split()
            if not token:
                continue
            head = token[0]
            if head == "$scope":
                scopes.append(token[2])
            elif head == "$upscope":
                scopes.pop()
            elif head == "$var":
                width, code, name = int(token[2]), token[3], token[4]
                full = "/".join(scopes + [name])
                if not full.startswith(scope_prefix):
                    continue
                relative = full[len(scope_prefix):]
                bits = [relative]
                if width > 1:
                    msb, lsb = width - 1, 0
                    if len(token) > 5 and token[5].startswith("["):
                        left, _, right = token[5].strip("[]").partition(":")
                        msb, lsb = int(left), int(right or left)
                    step = 1 if msb >= lsb else -1
                    bits = [f"{relative}[{bit}]" for bit in range(lsb, msb + step, step)]  # LSB first
                aliases.setdefault(code, []).append(bits)
                if code not in bits_of:
                    bits_of[code] = bits
                    toggles[code], high[code] = [0] * width, [0] * width
            elif head.startswith("#"):
                commit()
                now = int(head[1:])
            elif head == "$dumpon":
                commit()
                started, start = True, now
                for code in value:
                    since[code] = [now] * len(bits_of[code])
            elif head == "$dumpoff" and started:
                break
            elif head[0] in "bB":
                if token[1] in bits_of:
                    pending[token[1]] = head[1:]
            elif head[0] in "01xzXZ" and head[1:] in bits_of:
                pending[head[1:]] = head[0]
    commit()
    span = now - start
    result = {}
    for code, bits in bits_of.items():
        final = value.get(code, ["x"] * len(bits))
        for i in range(len(bits)):
            at_one = high[code][i] + (now - since.get(code, [start] * len(bits))[i] if final[i] == "1" else 0)
            for names in aliases[code]:
                result[names[i]] = (toggles[code][i], at_one)
    return result, span


_DELAYED = re.compile(r"^(\s*)wire\s+(delayed_\w+(?:\s*,\s*delayed_\w+)*)\s*;", re.M)


def simulation_models(pdk: Pdk, workdir: Path) -> list[Path]:
    """The PDK's cell models, made to simulate in Icarus: the flops read `delayed_D` /
    `delayed_CLK`, which only a timing simulator's $setuphold drives (Icarus leaves them
    undriven and every flop at x), so each gets `assign delayed_X = X;` (zero-delay)."""
    models = []
    for path in sorted(pdk.cell_models.glob("*.v")):
        text = path.read_text()

        def assign(match: re.Match) -> str:
            names = [name.strip() for name in match.group(2).split(",")]
            return match.group(0) + "".join(f"\n{match.group(1)}assign {name} = {name[len('delayed_'):]};" for name in names)

        patched = _DELAYED.sub(assign, text)
        target = workdir / path.name
        target.write_text(patched)
        models.append(target)
    return models


@dataclass(frozen=True)
class ActivityResult:
    workload: str
    cycles: int
    nets: list[NetActivity]
    outputs: dict[str, np.ndarray]   # per cycle, aligned with the input rows (-1: x)
    inputs: dict[str, np.ndarray]
    checked: int | None = None       # vectors compared with npu.hw.numerics (check_outputs)


# Units whose traced operands are another unit's (the same PE at another row or target).
TRACE_ALIASES = {"matrix_pe_row0": "matrix_pe", "anchor_fp_pe": "matrix_pe"}


def traced_workload(trace: str | Path, unit: str, ports: dict[str, tuple[str, int]],
                    vectors: int) -> Workload | None:
    """The unit's operands recorded from a model run (an npz of `<unit>.<port>` bit patterns with a
    `description`, written by `npu synth-trace`), as a Workload of its first `vectors` operand
    sets; None when the trace has no operands for this unit."""
    data = np.load(trace)
    source = TRACE_ALIASES.get(unit, unit)
    inputs = [name for name, (direction, _) in ports.items() if direction == "input" and name != "clk"]
    if not inputs or not all(f"{source}.{name}" in data.files for name in inputs):
        return None
    streams = {name: data[f"{source}.{name}"].astype(np.uint64) for name in inputs}
    count = min(len(values) for values in streams.values())
    if count < 4:
        return None
    description = f"traced: {data['description']}, {min(count, vectors)} operand sets"
    return Workload(description, lambda rng, n: {name: values[:n] for name, values in streams.items()})


def measure_activity(netlist: Path, top: str, ports: dict[str, tuple[str, int]], pdk: Pdk, unit: str,
                     workdir: Path, vectors: int = 256, seed: int = 0, warmup: int = 2,
                     trace: str | Path | None = None) -> ActivityResult:
    """Simulate `netlist` on `vectors` operand sets of the unit's workload - its recorded
    operands from `trace` when that holds them, else its operand distribution (WORKLOADS) -;
    per-net activities."""
    workload = traced_workload(trace, unit, ports, vectors) if trace else None
    if workload is None and unit not in WORKLOADS:
        raise SynthesisError(f"no workload for unit {unit!r} (npu.synth.activity.WORKLOADS)")
    workload = workload or WORKLOADS[unit]
    inputs = workload.operands(np.random.default_rng(seed), vectors)
    vectors = min(len(values) for values in inputs.values())
    if vectors <= warmup + 2:
        raise ValueError(f"activity vectors {vectors} must exceed the {warmup} warm-up cycles by 2 or more")
    iverilog, vvp = find_tool("iverilog"), find_tool("vvp")
    workdir, netlist = Path(workdir).resolve(), Path(netlist).resolve()  # the simulator runs in workdir
    workdir.mkdir(parents=True, exist_ok=True)
    for name, values in inputs.items():
        (workdir / f"{name}.hex").write_text("\n".join(f"{int(v):x}" for v in values) + "\n")
    (workdir / "activity_tb.v").write_text(testbench(top, ports, vectors, warmup))
    models = simulation_models(pdk, workdir)
    build = [iverilog, "-g2012", "-o", str(workdir / "activity.vvp"), str(workdir / "activity_tb.v"), str(netlist),
             *map(str, models)]
    for command, what in ((build, "iverilog (gate-level netlist)"), ([vvp, "-n", "activity.vvp"], "vvp")):
        result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
        (workdir / f"{Path(command[0]).name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise ToolFailedError(f"{what} failed with status {result.returncode}: {(result.stdout + result.stderr)[-800:]}")
    bits, span = parse_vcd(workdir / "activity.vcd", "activity_tb/dut/")
    cycles = span // 10_000  # 10 ns per cycle at the VCD's 1 ps resolution
    if cycles <= 0:
        raise SynthesisError(f"the gate-level simulation of {netlist} recorded no cycles")
    nets = [NetActivity(name, toggles / cycles, at_one / span) for name, (toggles, at_one) in sorted(bits.items())
            if name != "clk"]
    out_names = [name for name, (direction, _) in ports.items() if direction == "output"]
    rows = [line.split() for line in (workdir / "outputs.txt").read_text().splitlines()]
    outputs = {name: np.array([int(row[i], 16) if "x" not in row[i] else -1 for row in rows[1:vectors + 1]],
                              dtype=np.int64) for i, name in enumerate(out_names)}
    for large in ("activity.vcd", "activity.vvp"):  # tens of MB; the per-net figures are what is kept
        (workdir / large).unlink()
    return ActivityResult(workload.description, cycles, nets, outputs, inputs)


def check_outputs(unit: str, result: ActivityResult) -> int | None:
    """Raise unless the netlist's outputs equal npu.rtl.reference's (npu.hw.numerics) on every
    simulated operand set; the number of vectors compared (None: the unit has no reference)."""
    from npu.rtl.reference import REFERENCES, mismatches

    if unit not in REFERENCES or set(result.outputs) != {"y"}:
        return None
    inputs = np.stack([result.inputs[name] for name in ("a", "b") if name in result.inputs], axis=1)
    outputs = result.outputs["y"]
    bad = mismatches(unit, inputs.astype(np.uint64), outputs.astype(np.uint64))
    if len(bad) or (outputs < 0).any():
        raise SynthesisError(f"the gate-level netlist of {unit} differs from npu.hw.numerics on {len(bad)} of "
                             f"{len(outputs)} vectors (e.g. inputs {inputs[bad[0]] if len(bad) else '-'})")
    return len(outputs)


def write_activity(result: ActivityResult, out: Path) -> Path:
    return write_json(out, {"workload": result.workload, "cycles": result.cycles,
                            "checked_vectors": result.checked,
                            "nets": [asdict(net) for net in result.nets]})
