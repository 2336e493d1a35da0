"""Design points of the sweep: the `dse:` grid of config/config.yaml over a base NPU preset.

A design point changes a few numbers of a base preset (config/npu/<base>.yaml) and keeps the
rest: the array size MLEN, the tile-op rows BLEN, the vector lanes VLEN, the vector- and
matrix-SRAM capacities, the DRAM channel count (bandwidth scales per channel) and the weight
and KV-cache formats. An empty grid list means "the base preset's value". Widths follow the
sizes the way the presets are built (config/npu/dnpu-cloud.yaml explains each):
- matrix SRAM word = the base's tile rows per access x MLEN bf16 (so a tile crosses a port in
  the same number of cycles);
- vector SRAM word = the base's rows per access x VLEN elements; FP and INT SRAM words = VLEN
  32-bit words (one vector per access);
- VLEN, when not given, keeps the base's VLEN/MLEN ratio (the presets have VLEN = MLEN);
- DRAM bandwidth = the base's bandwidth per channel x channels.

`design_points` returns every combination as a `DesignPoint` holding the derived preset (the
YAML layout of config/npu/*.yaml). `check_point` validates it with the project's loader
(npu.hw.config.npu_config_from_dict: schema and NPUConfig.validate), so a combination the
hardware cannot build is reported by name (e.g. ``vlen: 128 must divide mlen=64``) as the
point's infeasible reason rather than crashing the sweep.

Point ids are readable and stable: the parameters that vary in the grid, in a fixed order, plus
an 8-hex digest of the whole derived preset (so two bases or an edited base never share an id):
``m128-b16-v128-vs32-ms32-ch16-mxfp8_e4m3-kvbf16-1a2b3c4d``. Adding values to the grid adds
ids and leaves the existing ones (and their results) untouched.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npu.config import ConfigError, preset_path, read_yaml

# The grid's dimensions, in the order of the id, with the id prefix of each.
GRID_KEYS: dict[str, str] = {
    "mlen": "m", "blen": "b", "vlen": "v", "vector_sram_mib": "vs", "matrix_sram_mib": "ms",
    "dram_channels": "ch", "weights": "", "kv_cache": "kv",
}
MIB = 1 << 20


class DesignSpaceError(ConfigError):
    """A `dse:` section that names something that does not exist (base preset, grid key)."""


@dataclass(frozen=True)
class DesignPoint:
    """One design point: its id, the grid parameters it was made from, and the derived preset."""

    id: str
    parameters: dict[str, Any]
    preset: dict[str, Any] = field(repr=False)

    def row(self) -> dict[str, Any]:
        """The parameter columns of points.tsv."""
        return {"point": self.id, **self.parameters}


def base_preset(name: str, config_dir: str | Path | None = None) -> dict[str, Any]:
    """The base preset's YAML mapping (config/npu/<name>.yaml), checked to load."""
    from npu.hw.config import load_npu_config

    path = preset_path("npu", name, config_dir)
    load_npu_config(path, config_dir)  # a broken base fails here, naming its file and key
    return read_yaml(path)


def base_parameters(base: dict[str, Any]) -> dict[str, Any]:
    """The grid parameters of the base preset itself."""
    return {
        "mlen": base["mlen"], "blen": base["blen"], "vlen": base["vlen"],
        "vector_sram_mib": base["vector_sram"]["size_bytes"] / MIB,
        "matrix_sram_mib": base["matrix_sram"]["size_bytes"] / MIB,
        "dram_channels": base["dram"]["channels"],
        "weights": base["formats"]["weights"], "kv_cache": base["formats"]["kv_cache"],
    }


def derive_preset(base: dict[str, Any], parameters: dict[str, Any], name: str) -> dict[str, Any]:
    """The base preset with the point's parameters (module docstring: how widths follow sizes)."""
    preset = copy.deepcopy(base)
    mlen, vlen = parameters["mlen"], parameters["vlen"]
    tile_rows = base["matrix_sram"]["width_bits"] // (base["mlen"] * 16)
    vector_rows = base["vector_sram"]["width_bits"] // (base["vlen"] * _vector_bits(base))
    preset.update(name=name, mlen=mlen, blen=parameters["blen"], vlen=vlen,
                  description=f"design point {name} of the sweep over {base['name']}")
    preset["matrix_sram"]["size_bytes"] = _bytes(parameters["matrix_sram_mib"])
    preset["matrix_sram"]["width_bits"] = tile_rows * mlen * 16
    preset["vector_sram"]["size_bytes"] = _bytes(parameters["vector_sram_mib"])
    preset["vector_sram"]["width_bits"] = vector_rows * vlen * _vector_bits(base)
    for memory in ("fp_sram", "int_sram"):
        preset[memory]["width_bits"] = vlen * 32
    per_channel = base["dram"]["bandwidth_gbps"] / base["dram"]["channels"]
    preset["dram"]["channels"] = parameters["dram_channels"]
    preset["dram"]["bandwidth_gbps"] = round(per_channel * parameters["dram_channels"], 6)
    preset["formats"]["weights"] = parameters["weights"]
    preset["formats"]["kv_cache"] = parameters["kv_cache"]
    return preset


def point_id(parameters: dict[str, Any], preset: dict[str, Any]) -> str:
    """Readable parameters plus a digest of the whole derived preset (module docstring)."""
    parts = [f"{prefix}{_short(parameters[key])}" for key, prefix in GRID_KEYS.items()]
    content = {key: value for key, value in preset.items() if key not in ("name", "description")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return "-".join(parts + [digest])


def design_points(grid: dict[str, list], base: dict[str, Any]) -> list[DesignPoint]:
    """Every combination of the grid's values (an empty list: the base's value) as a point, in
    grid order; duplicates (the same derived preset twice) are kept once."""
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise DesignSpaceError(f"dse.grid: unknown key(s) {', '.join(unknown)} (expected: {', '.join(GRID_KEYS)})")
    own = base_parameters(base)
    axes = {key: list(grid.get(key) or []) or [None] for key in GRID_KEYS}
    points: dict[str, DesignPoint] = {}
    for values in itertools.product(*axes.values()):
        parameters = dict(zip(axes, values))
        for key, value in parameters.items():
            if value is None and key != "vlen":
                parameters[key] = own[key]
        if parameters["vlen"] is None:  # keep the base's lanes-per-column ratio
            parameters["vlen"] = max(1, own["vlen"] * parameters["mlen"] // own["mlen"])
        preset = derive_preset(base, parameters, name="point")
        identifier = point_id(parameters, preset)
        preset["name"] = identifier
        points.setdefault(identifier, DesignPoint(identifier, parameters, preset))
    return list(points.values())


def check_point(point: DesignPoint, config_dir: str | Path | None = None) -> str | None:
    """None when the point's preset is a buildable machine, else the loader's reason (named key)."""
    from npu.hw.config import npu_config_from_dict

    try:
        npu_config_from_dict(point.preset, source=point.id, config_dir=config_dir)
    except ConfigError as error:
        return " ".join(str(error).split())
    return None


def cycle_sampled(point_identifier: str, every: int, listed: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether the cycle simulator checks this point: listed by id, or one in `every` points by
    the id's digest (stable when the grid grows; `every` 0: none)."""
    if point_identifier in listed:
        return True
    if every <= 0:
        return False
    return int(hashlib.sha256(point_identifier.encode()).hexdigest()[:8], 16) % every == 0


def _vector_bits(preset: dict[str, Any]) -> int:
    from npu.hw.numerics import FORMATS

    return FORMATS[preset["formats"]["vector"]].bits


def _bytes(mib: float) -> int:
    value = mib * MIB
    if value != int(value):
        raise DesignSpaceError(f"dse.grid: {mib} MiB is not a whole number of bytes")
    return int(value)


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
