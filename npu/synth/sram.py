"""SRAM of each preset from the ASAP7 SRAM bank macros (shared/pdk/asap7_sram): area, energy per
access and timing read from the banks' Liberty files, tiled to each memory's size and width.

Banks: srambank_{R}x4x{W}_6t122 holds R x 4 words of W bits (4:1 column mux), one port, one
access per clock (The-OpenROAD-Project/asap7_sram_0p0, see the folder's README). Units inside:
time ns, capacitance pF, energy per transition pJ (1 V x 1 mA x 1 ns).

- Energy per access: the clock pin's internal_power tables for the access (`when : "!write"`:
  read; `"write"`: write), the VDD-related ones, rise plus fall (the tables do not depend on
  the input slew). The VSS-related tables (read about 1.4x the VDD figure in the 256x4x64 bank)
  are listed beside them, not added.
- Timing: clock-to-output of the data bus at the fastest input slew and smallest load of the
  table, and the largest setup time of any input there. The files' minimum_period is 0.
- Leakage: cell_leakage_power is 0 in these files; not modelled here (stated in every row).

Tiling (`tile_memory`): the widest bank width dividing the memory's word (64 where it can),
banks side by side to make a word, the deepest bank (R = 256 rows, 1024 words) stacked to make
the capacity; a memory with P ports is P copies (the banks have one port). One access of a word
reads or writes one row of banks. No wiring, bank-select or output-mux overhead is added: area
and energy are the banks' alone, a lower bound.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass
from pathlib import Path

from npu.synth.errors import PdkNotFoundError, SynthesisError
from npu.synth.pdk import PDK_ENVIRONMENT, shared_folder

SRAM_ENVIRONMENT = "DNPU_SRAM_PDK"
_BANK = re.compile(r"srambank_(\d+)x(\d+)x(\d+)_6t122\.lib\.gz$")


@dataclass(frozen=True)
class SramBank:
    name: str
    rows: int
    mux: int
    width_bits: int
    area_um2: float
    read_pj: float        # VDD-related energy of one read access
    write_pj: float
    read_vss_pj: float    # the VSS-related tables, for comparison
    write_vss_pj: float
    clk_to_q_ps: float
    setup_ps: float
    leakage_nw: float     # as the file gives it (0)

    @property
    def words(self) -> int:
        return self.rows * self.mux

    @property
    def bits(self) -> int:
        return self.words * self.width_bits


def find_sram_pdk(path: str | Path | None = None) -> Path:
    """The asap7_sram folder: `path`, else $DNPU_SRAM_PDK, else ../shared/pdk/asap7_sram."""
    import os

    root = Path(path or os.environ.get(SRAM_ENVIRONMENT) or shared_folder("asap7_sram")).resolve()
    if not (root / "lib").is_dir():
        raise PdkNotFoundError(f"ASAP7 SRAM folder {root} has no lib/ (set config synth.sram_pdk or "
                               f"${SRAM_ENVIRONMENT}; the standard cells use ${PDK_ENVIRONMENT})")
    return root


def _first_value(block: str) -> float:
    match = re.search(r'values\s*\(\s*\\?\s*"([^"]*)"', block)
    if match is None:
        raise SynthesisError("SRAM Liberty: a table without values")
    return float(match.group(1).split(",")[0])


def _groups(text: str, header: str) -> list[str]:
    """The text of every group whose opening line matches `header` (a regex), braces balanced."""
    found = []
    for match in re.finditer(header, text):
        depth, i = 0, text.index("{", match.start())
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                found.append(text[match.start():j + 1])
                break
    return found


def read_bank(path: Path) -> SramBank:
    text = gzip.decompress(path.read_bytes()).decode()
    rows, mux, width = (int(value) for value in _BANK.search(path.name).groups())
    area = float(re.search(r"^\s*area\s*:\s*([0-9.]+)", text, re.M).group(1))
    leakage = float(re.search(r"cell_leakage_power\s*:\s*([0-9.eE+-]+)", text).group(1))
    clk = _groups(text, r"pin \(clk\) \{")[0]
    energy = {}
    for group in _groups(clk, r"internal_power \(\) \{"):
        when = re.search(r'when\s*:\s*"([^"]*)"', group).group(1)
        rail = re.search(r"related_pg_pin\s*:\s*(\w+)", group).group(1)
        total = sum(_first_value(table) for table in _groups(group, r"(rise|fall)_power \([^)]*\) \{"))
        energy[(when, rail)] = total
    dataout = _groups(text, r"bus \(dataout\) \{")[0]
    clk_to_q = max(_first_value(table) for table in _groups(dataout, r"cell_(rise|fall) \([^)]*\) \{"))
    setups = [_first_value(table) for timing in _groups(text, r"timing \(\) \{")
              if "setup_rising" in timing for table in _groups(timing, r"(rise|fall)_constraint \([^)]*\) \{")]
    return SramBank(path.name.removesuffix(".lib.gz"), rows, mux, width, area, energy[("!write", "VDD")],
                    energy[("write", "VDD")], energy[("!write", "VSS")], energy[("write", "VSS")],
                    clk_to_q * 1000, max(setups) * 1000, leakage)


def read_banks(root: Path) -> list[SramBank]:
    files = sorted((root / "lib").glob("srambank_*_6t122.lib.gz"))
    if not files:
        raise PdkNotFoundError(f"ASAP7 SRAM folder {root}/lib has no srambank_*_6t122.lib.gz files")
    return [read_bank(path) for path in files]


def tile_memory(name: str, size_bytes: int, width_bits: int, ports: int, banks: list[SramBank],
                leakage_mw_per_mib: float | None = None) -> dict:
    """One table row: the banks that make a memory of `size_bytes` with `width_bits` words."""
    widths = sorted({bank.width_bits for bank in banks if width_bits % bank.width_bits == 0}, reverse=True)
    if not widths:
        raise SynthesisError(f"{name}: no ASAP7 SRAM bank width divides its {width_bits}-bit word")
    candidates = [bank for bank in banks if bank.width_bits == widths[0]]
    bank = max(candidates, key=lambda item: (item.rows, -item.area_um2 / item.bits))
    across = width_bits // bank.width_bits
    words = math.ceil(size_bytes * 8 / width_bits)
    deep = math.ceil(words / bank.words)
    count = across * deep * ports
    word_bytes = width_bits / 8
    return {
        "memory": name, "size_bytes": size_bytes, "width_bits": width_bits, "ports": ports,
        "bank": bank.name, "banks": count, "banks_per_word": across, "banks_deep": deep,
        "area_um2": count * bank.area_um2, "area_mm2": count * bank.area_um2 * 1e-6,
        "read_pj_per_access": across * bank.read_pj, "write_pj_per_access": across * bank.write_pj,
        "read_pj_per_byte": across * bank.read_pj / word_bytes, "write_pj_per_byte": across * bank.write_pj / word_bytes,
        "read_vss_pj_per_access": across * bank.read_vss_pj,
        "clk_to_q_ps": bank.clk_to_q_ps, "setup_ps": bank.setup_ps,
        "leakage_mw": ("-" if leakage_mw_per_mib is None
                       else count * bank.bits / (8 * 2**20) * leakage_mw_per_mib),
        "leakage": ("not modelled (the ASAP7 SRAM Liberty gives 0)" if leakage_mw_per_mib is None else
                    f"estimate {leakage_mw_per_mib:.4g} mW/MiB of banks: 2 x {BITCELL_REFERENCE_CELL} leakage per "
                    f"bitcell (ASAP7 RVT TT; bit-line and periphery leakage not counted: a lower bound)"),
        "overhead": "none added (banks only; wiring, bank select and output mux not modelled)",
    }


def preset_memories(config) -> list[tuple[str, int, int, int]]:
    """(name, size, width, ports) of an NPU preset's four SRAMs."""
    memories = []
    for name in ("vector_sram", "matrix_sram", "fp_sram", "int_sram"):
        memory = getattr(config, name)
        memories.append((name, memory.size_bytes, memory.width_bits, getattr(memory, "ports", 1)))
    return memories


# SRAM leakage: the ASAP7 SRAM Liberty files give 0. Estimate from the ASAP7 standard-cell
# library of the same PDK: a 6T bitcell holds two cross-coupled minimum inverters, so its leakage
# is taken as twice the state-independent leakage of INVxp33 (the library's smallest inverter;
# 17.06 pW at TT, 0.7 V, 25 C). The access transistors' leakage into the bit lines and the
# periphery's are not counted: a lower-bound estimate, labelled as such wherever it is used.
BITCELL_INVERTERS = 2
BITCELL_REFERENCE_CELL = "INVxp33_ASAP7_75t_R"


def inverter_leakage_pw(liberty: str | Path, cell: str = BITCELL_REFERENCE_CELL) -> float:
    """The state-independent (no `when`) VDD leakage of `cell` in a Liberty file, in pW (the
    ASAP7 standard cells' leakage unit)."""
    text = Path(liberty).read_text()
    start = text.find(f"cell ({cell})")
    if start < 0:
        raise SynthesisError(f"{liberty}: no cell {cell} (the SRAM leakage estimate's reference inverter)")
    end = text.find("cell (", start + 6)
    for group in _groups(text[start:end if end > 0 else len(text)], r"leakage_power \(\) \{"):
        if "when" not in group and re.search(r"related_pg_pin\s*:\s*VDD", group):
            return float(re.search(r"value\s*:\s*([0-9.eE+-]+)", group).group(1))
    raise SynthesisError(f"{liberty}: cell {cell} has no state-independent VDD leakage")


def sram_leakage_mw_per_mib(liberty: str | Path) -> float:
    """Estimated SRAM leakage per MiB (mW): 2^23 bitcells x 2 x the reference inverter's leakage."""
    return 8 * 2**20 * BITCELL_INVERTERS * inverter_leakage_pw(liberty) * 1e-9


def sram_power_columns(row: dict, clock_ghz: float) -> dict:
    """The memory's power at the preset's clock with every port reading one word each cycle (its
    peak read power: pJ per access x ports x GHz = mW), and that plus its leakage estimate."""
    if not clock_ghz > 0:
        raise ValueError(f"SRAM power of {row['memory']}: clock {clock_ghz} GHz must be positive")
    dynamic = float(row["read_pj_per_access"]) * int(row["ports"]) * clock_ghz
    leakage = row.get("leakage_mw", "-")
    return {"clock_ghz": clock_ghz, "read_power_mw": dynamic,
            "power_mw": dynamic + float(leakage) if leakage != "-" else "-",
            "power": "every port reads one word per cycle at the clock (peak), + leakage"}
