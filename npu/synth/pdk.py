"""Where the ASAP7 standard-cell PDK is and which of its Liberty files make a corner.

The path comes from the pipeline config (`synth.pdk`), else $DNPU_PDK, else
`../shared/pdk/asap7` beside the checkout. A missing folder or file is a `PdkNotFoundError`
naming the path. Library: ASAP7 7.5-track RVT NLDM (L. T. Clark et al., "ASAP7: A 7-nm finFET
predictive process design kit", Microelectronics Journal 53, 2016), as copied into shared/pdk
(see its README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from npu.synth.errors import PdkNotFoundError

CHECKOUT = Path(__file__).resolve().parents[2]
PDK_ENVIRONMENT = "DNPU_PDK"


def shared_folder(name: str) -> Path:
    """`shared/pdk/<name>` beside the checkout (../shared), or beside the nearest parent folder
    that has one (a git worktree sits one level deeper than the main checkout); the plain
    ../shared path when none has it, so that the error names where it was expected."""
    for folder in CHECKOUT.parents:
        candidate = folder / "shared" / "pdk" / name
        if candidate.is_dir():
            return candidate
    return CHECKOUT.parent / "shared" / "pdk" / name

# The five RVT cell groups and the date stamp of each group's files.
CELL_GROUPS = {"AO": "211120", "INVBUF": "220122", "OA": "211120", "SEQ": "220123", "SIMPLE": "211120"}
# Corner -> (supply voltage in V, as the README states), the same in every group's file name.
CORNERS = {"TT": 0.70, "SS": 0.63, "FF": 0.77}

# Cells the flow must not use, as name patterns (fnmatch). As OpenROAD-flow-scripts' ASAP7
# platform (flow/platforms/asap7/config.mk, DONT_USE_CELLS): the fractional-drive cells (*x1p*,
# *xp*, hard to route), scan flops (SDF*) and clock gates (ICG*). Unlike it, the plain flops
# DFFH* stay usable (this flow has no separate flop library), and the only asynchronous flop,
# DFFASRHQNx1 (set and reset; its upstream Verilog model had a bug), is excluded: RTL resets
# are synchronous, and an asynchronous reset then fails `dfflibmap` by name.
DONT_USE_PATTERNS = ("*x1p*_ASAP7*", "*xp*_ASAP7*", "SDF*", "ICG*", "DFFASRHQNx1_ASAP7*")


@dataclass(frozen=True)
class Pdk:
    """An ASAP7 standard-cell folder: `liberty_files(corner)` lists a corner's gzipped groups."""

    root: Path

    def liberty_files(self, corner: str) -> list[Path]:
        if corner not in CORNERS:
            raise ValueError(f"unknown corner {corner!r}; known: {', '.join(CORNERS)}")
        files = [self.root / f"asap7sc7p5t_{group}_RVT_{corner}_nldm_{stamp}.lib.gz"
                 for group, stamp in CELL_GROUPS.items()]
        for path in files:
            if not path.is_file():
                raise PdkNotFoundError(f"ASAP7 PDK: Liberty file {path} is missing (corner {corner}, "
                                       f"PDK folder {self.root})")
        return files

    @property
    def cell_models(self) -> Path:
        """Functional Verilog models of the cells (gate-level simulation)."""
        return self.root / "verilog"


def find_pdk(path: str | Path | None = None) -> Pdk:
    """The PDK at `path` (config `synth.pdk`; relative paths are taken from the working
    directory), else $DNPU_PDK, else ../shared/pdk/asap7 beside the checkout (`shared_folder`)."""
    if path is None or str(path) == "":
        path = os.environ.get(PDK_ENVIRONMENT) or shared_folder("asap7")
        origin = f"${PDK_ENVIRONMENT}" if os.environ.get(PDK_ENVIRONMENT) else "the default location"
    else:
        origin = "synth.pdk"
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise PdkNotFoundError(f"ASAP7 PDK folder {root} does not exist (from {origin}; set config key "
                               f"synth.pdk or ${PDK_ENVIRONMENT} to the folder with the asap7sc7p5t_*.lib.gz files)")
    return Pdk(root)

