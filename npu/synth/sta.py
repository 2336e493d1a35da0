"""OpenSTA (`sta`, Debian 2.0.17) on a synthesized netlist: worst slack, the critical path,
fmax and power, with the README's silent failures turned into named errors.

OpenSTA exits 0 when it could not read the library (it black-boxes every cell), when a cell of
the netlist is not in the library, when nothing is timed ("No paths found.") and when power is
zero; each of these raises here (BlackBoxError, UnconstrainedDesignError / NoPathsError,
ZeroPowerError) before any table is written.

Constraints: one clock `clk` on the wrapper's clock port with the target period, input and
output delays 0 (the wrapper registers every port, so they time only flop-to-port wires).
Timing ignores wires (no placement: no parasitics) and clock skew (ideal clock).
Power "default activity": every net toggles 0.1 times per clock cycle with duty 0.5
(`set_power_activity -global -activity 0.1 -duty 0.5`), not propagated. OpenSTA 2.0.17's own
propagation from the inputs (`-input`) crashes (SIGSEGV) on the deep compound units (fp32_exp's
netlist) and compounds through XOR-rich logic (fp32_mul: 8.7 mW at 1 GHz), so a uniform rate is
the stated assumption. Activity-based power replaces it with per-net activities measured in
gate-level simulation (npu.synth.activity), set on every pin of each net.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from npu.synth.errors import (BlackBoxError, NoPathsError, SynthesisError, ToolFailedError, UnconstrainedDesignError,
                              ZeroPowerError)
from npu.synth.tools import find_tool, run_tool

DEFAULT_ACTIVITY = 0.1  # toggles per clock cycle on every net ("default activity")
DEFAULT_DUTY = 0.5
UNIT_INSTANCE = "unit"  # the unit's instance in the wrapper (npu.synth.yosys.wrapper_verilog)

_BLACK_BOX = re.compile(r"(module \S+ not found|creating black box|cell \S+ not found|unknown cell|not linked|"
                        r"no liberty cell)", re.I)


@dataclass(frozen=True)
class NetActivity:
    """A net's measured switching: toggles per clock cycle and the fraction of time it is 1."""

    net: str        # hierarchical net name as OpenSTA names it (e.g. unit/_0123_, a_q[3])
    activity: float
    duty: float


@dataclass(frozen=True)
class PowerReport:
    internal_w: float
    switching_w: float
    leakage_w: float

    @property
    def total_w(self) -> float:
        return self.internal_w + self.switching_w + self.leakage_w


@dataclass(frozen=True)
class TimingReport:
    period_ps: float
    worst_slack_ps: float
    startpoint: str           # the register or port where the critical path starts
    endpoint: str
    path_start: str           # the unit's input (or internal register) on that path
    path_end: str             # the unit's output (or internal register)
    logic_levels: int         # combinational cells on the critical path
    unit_power: PowerReport | None    # the unit instance alone, default activity (None: see power_error)
    design_power: PowerReport | None  # wrapper registers included, default activity
    measured_power: PowerReport | None  # the unit with the measured (workload) activity
    path_report: str
    seconds: float
    power_error: str = ""     # why no power was computed (OpenSTA crashed in report_power), else ""

    @property
    def critical_path_ps(self) -> float:
        return self.period_ps - self.worst_slack_ps

    @property
    def fmax_ghz(self) -> float:
        """1 / (period - worst slack)."""
        return 1000.0 / self.critical_path_ps


def _power_rows(text: str) -> list[tuple[list[float], str]]:
    rows = []
    for line in text.splitlines():
        fields = line.split()
        try:
            numbers = [float(value) for value in fields[:4]]
        except ValueError:
            continue
        if len(fields) >= 5 and len(numbers) == 4:
            rows.append((numbers, fields[4]))
    return rows


def _parse_total_power(text: str) -> PowerReport:
    for line in text.splitlines():
        if line.startswith("Total") and len(line.split()) >= 5:
            internal, switching, leakage = (float(value) for value in line.split()[1:4])
            return PowerReport(internal, switching, leakage)
    raise SynthesisError("OpenSTA printed no 'Total' power line")


def _unit_port(net: str) -> str:
    """`b_q[2]` (the wrapper's register of input b) -> `b[2]`; `y_d[30]` -> `y[30]`."""
    return re.sub(r"_[qd](\[|$)", r"\1", net)


def _path_ends(report: str) -> tuple[str, str, str, str, int]:
    start = re.search(r"^Startpoint:\s*(\S+)", report, re.M)
    end = re.search(r"^Endpoint:\s*(\S+)", report, re.M)
    if start is None or end is None:
        raise NoPathsError("OpenSTA's path report has no Startpoint/Endpoint")
    nets = re.findall(r"^\s*\d+\s+(\S+) \(net\)", report, re.M)
    inside = [i for i, net in enumerate(nets) if net.startswith(f"{UNIT_INSTANCE}/")]
    if inside:
        first, last = inside[0], inside[-1]
        path_start = _unit_port(nets[first - 1]) if first > 0 else start.group(1)
        path_end = _unit_port(nets[last + 1]) if last + 1 < len(nets) else end.group(1)
    else:
        path_start, path_end = start.group(1), end.group(1)
    # Pin lines of the data path: the launch flop's clock and output, one output per cell, the capture D.
    pins = len(re.findall(r"^\s+[-\d.]+\s+[-\d.]+ [v^] \S+/\S+ \(", report.split("data arrival time")[0], re.M))
    return start.group(1), end.group(1), path_start, path_end, max(pins - 3, 0)


def sta_script(liberty: Path, netlist: Path, top: str, period_ps: float, files: dict[str, Path],
               activities: list[NetActivity] | None = None, clock_port: str = "clk") -> str:
    """Timing once, then power with the default activity and (given `activities`) the measured one.

    Activities are set pin by pin with `sta::set_power_pin_activity`: Debian's OpenSTA 2.0.17
    `set_power_activity -pins` is broken (it stores the pins in `ports`, reads `pins`, and calls
    a `get_pins_error` it does not define), and a `-global` activity would override any pin's.
    Every pin at 0.1 gives the same power as `set_power_activity -global -activity 0.1`.
    """
    lines = [f"read_liberty {liberty}", f"read_verilog {netlist}", f"link_design {top}",
             f"create_clock -name clk -period {period_ps:g} [get_ports {clock_port}]",
             f"set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports {clock_port}]]",
             "set_output_delay 0 -clock clk [all_outputs]",
             f"report_checks -path_delay max -digits 3 -fields {{net}} > {files['path']}",
             "report_worst_slack -digits 3",
             "proc dnpu_net_activity {net activity duty} {\n"
             "  foreach pin [get_pins -of_objects [get_nets $net]] { sta::set_power_pin_activity $pin $activity $duty }\n}",
             f"foreach pin [get_pins -hierarchical *] {{ sta::set_power_pin_activity $pin {DEFAULT_ACTIVITY} {DEFAULT_DUTY} }}",
             f"foreach port [delete_from_list [all_inputs] [get_ports {clock_port}]] "
             f"{{ sta::set_power_input_port_activity $port {DEFAULT_ACTIVITY} {DEFAULT_DUTY} }}",
             f"report_power -digits 9 > {files['design_default']}",
             f"report_power -instances [get_cells -hierarchical *] -digits 9 > {files['instances_default']}"]
    if activities:
        lines += [f"dnpu_net_activity {{{item.net}}} {item.activity:.6g} {item.duty:.6g}" for item in activities]
        lines += [f"report_power -digits 9 > {files['design_measured']}",
                  f"report_power -instances [get_cells -hierarchical *] -digits 9 > {files['instances_measured']}"]
    return "\n".join(lines) + "\n"


def _powers(design_file: Path, instances_file: Path, what: str) -> tuple[PowerReport, PowerReport]:
    """(design, unit) power from a design report and a report of every instance. The unit's
    power is the sum of the leaf cells under its instance (OpenSTA 2.0.17 reports a hierarchical
    instance as 0, and the unit may hold kept submodules, npu.synth.units)."""
    design = _parse_total_power(design_file.read_text() if design_file.is_file() else "")
    rows = _power_rows(instances_file.read_text()) if instances_file.is_file() else []
    inside = [values for values, name in rows if name.startswith(f"{UNIT_INSTANCE}/")]
    if not inside:
        raise BlackBoxError(f"{what}: the netlist has no cells inside an instance {UNIT_INSTANCE!r} of the unit")
    unit = PowerReport(*(sum(values[i] for values in inside) for i in range(3)))
    for label, power in (("design", design), (f"instance {UNIT_INSTANCE}", unit)):
        if not power.total_w > 0 or not power.leakage_w > 0:
            raise ZeroPowerError(f"{what}: zero power for the {label} (total {power.total_w} W, leakage "
                                 f"{power.leakage_w} W): the library's power tables were not applied")
    return design, unit


def analyze(liberty: Path, netlist: Path, top: str, period_ps: float, workdir: Path, name: str = "",
            activities: list[NetActivity] | None = None, clock_port: str = "clk") -> TimingReport:
    """Time and power the wrapper `top` of `netlist` at `period_ps`; raises on every silent failure."""
    if not period_ps > 0:
        raise ValueError(f"clock period {period_ps} ps must be positive")
    sta = find_tool("sta")
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"_{name}" if name else ""
    files = {key: workdir / f"{key}{tag}.txt" for key in ("path", "design_default", "instances_default",
                                                          "design_measured", "instances_measured")}
    for stale in files.values():
        stale.unlink(missing_ok=True)
    script = workdir / f"sta{tag}.tcl"
    script.write_text(sta_script(liberty, netlist, top, period_ps, files, activities, clock_port))
    power_error = ""
    try:
        output, seconds = run_tool([sta, "-no_init", "-exit", str(script)], workdir / f"sta{tag}.log",
                                   f"OpenSTA on {netlist}")
    except ToolFailedError as error:
        # OpenSTA 2.0.17 dies with SIGSEGV in report_power on some netlists (npu_core's). When the
        # timing was already reported, keep it and say why there is no power; anything else fails.
        log = workdir / f"sta{tag}.log"
        output = log.read_text() if log.is_file() else ""
        crashed = "status -11" in str(error) or "status 139" in str(error)
        timed = files["path"].is_file() and "worst slack" in output
        if not (crashed and timed):
            raise
        power_error = "OpenSTA 2.0.17 crashed (SIGSEGV) in report_power on this netlist"
        seconds = float("nan")
    what = f"OpenSTA on {netlist} ({liberty.name})"
    black_lines = [line.strip() for line in output.splitlines() if _BLACK_BOX.search(line)]
    if black_lines:
        raise BlackBoxError(f"{what}: cells not linked to the library: {'; '.join(black_lines[:5])}")
    errors = [line.strip() for line in output.splitlines() if line.startswith("Error")]
    errors.sort(key=lambda line: "no network has been linked" in line)  # the cause first, its echoes last
    if any(clock_port in line and ("not found" in line or "get_ports" in line) for line in errors) or \
            re.search(rf"port '?{clock_port}'? not found", output):
        raise UnconstrainedDesignError(f"{what}: the design has no clock port {clock_port!r}, so nothing is constrained")
    if errors:
        raise SynthesisError(f"{what}: {errors[0]}")
    report = files["path"].read_text() if files["path"].is_file() else ""
    if "No paths" in report or "No paths" in output or not report.strip():
        raise UnconstrainedDesignError(f"{what}: OpenSTA found no timing path (\"No paths found\"): the design has "
                                       f"no register-to-register path for clock {clock_port!r}")
    slack = re.search(r"worst slack\s+(-?[0-9.]+)", output)
    if slack is None:
        raise NoPathsError(f"{what}: no worst slack reported")
    if power_error:
        design_power = unit_power = measured = None
    else:
        design_power, unit_power = _powers(files["design_default"], files["instances_default"], what)
        measured = _powers(files["design_measured"], files["instances_measured"], what)[1] if activities else None
    startpoint, endpoint, path_start, path_end, levels = _path_ends(report)
    return TimingReport(period_ps, float(slack.group(1)), startpoint, endpoint, path_start, path_end, levels,
                        unit_power, design_power, measured, report, seconds, power_error)
