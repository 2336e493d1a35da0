"""NPU hardware configurations: one frozen dataclass per machine, loaded from config/npu/*.yaml.

A configuration fixes the sizes every other stage reasons about: the matrix unit (an MLEN x MLEN
systolic array fed BLEN activation rows per tile op), the vector unit (VLEN fp32 lanes), the four
type-decoupled SRAMs, the DRAM behind the DMA engine, and the number formats of each memory.

`load_npu_config("dnpu-cloud")` reads config/npu/dnpu-cloud.yaml; `npu_config_from_dict` does
the same for a dict the pipeline already holds. Both check every key against the schema
npu/schemas/npu.schema.yaml (unknown or missing keys, types, ranges) and then call
`NPUConfig.validate()`, which rejects combinations the hardware cannot build. Every error names
the file and the key, e.g. ``dnpu-cloud.yaml: vlen: 96 must divide mlen=128``. The preset's
`technology:` file (default config/tech/asap7-7nm.yaml) is loaded with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npu.config import DEFAULT_CONFIG_DIR, ConfigError, read_yaml, validate_mapping
from npu.hw.numerics import FORMATS
from npu.hw.technology import Technology, load_technology
from npu.isa.table import ACC_INDEX_BITS

CONFIG_DIR = DEFAULT_CONFIG_DIR / "npu"

DRAM_KINDS = ("hbm2", "hbm3", "lpddr5", "ddr5")

# Which formats each memory can hold. The DMA engine dequantizes weights to bf16 on the way into
# matrix SRAM, so weights may be any block-scaled (MX) format or bf16 itself. Per-group INT
# formats need per-group scales the DMA does not handle, so they are KV-cache formats only.
WEIGHT_FORMATS = ("mxint8", "mxint4", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp4", "bf16")
ACTIVATION_FORMATS = ("bf16", "fp32")
VECTOR_FORMATS = ("bf16", "fp32")
ACCUMULATOR_FORMATS = ("fp32",)
KV_CACHE_FORMATS = tuple(FORMATS)

MATRIX_SRAM_ELEMENT_BITS = 16  # weight tiles are held as bf16 after DMA dequantization
SCALAR_WORD_BITS = 32  # FP-scalar SRAM holds fp32 words, INT-scalar SRAM int32 words


class NPUConfigError(ConfigError):
    """A configuration file or dict that does not describe a buildable machine."""


@dataclass(frozen=True)
class MemoryConfig:
    """One on-chip SRAM: capacity, access width (bits per port per cycle) and port count."""

    size_bytes: int
    width_bits: int
    ports: int = 1

    @property
    def bytes_per_cycle(self) -> int:
        """Peak bytes moved per clock over all ports."""
        return self.width_bits // 8 * self.ports

    @property
    def rows(self) -> int:
        """Number of width_bits-wide words: the depth the address decoder must cover."""
        return self.size_bytes * 8 // self.width_bits


@dataclass(frozen=True)
class DramConfig:
    """Off-chip memory behind the DMA engine.

    bandwidth_gbps is the aggregate peak over all channels in GB/s (10^9 bytes per second),
    capacity_gib the total capacity in GiB (2^30 bytes).
    """

    kind: str
    channels: int
    bandwidth_gbps: float
    capacity_gib: float

    @property
    def bytes_per_s(self) -> float:
        return self.bandwidth_gbps * 1e9

    @property
    def capacity_bytes(self) -> int:
        return int(self.capacity_gib * 2**30)


@dataclass(frozen=True)
class FormatConfig:
    """Number format (a key of npu.hw.numerics.FORMATS) of each kind of data.

    weights: in DRAM (dequantized to bf16 by the DMA); activations: in DRAM; vector: elements of
    vector SRAM; accumulator: matrix-unit accumulation; kv_cache: K/V entries in DRAM.
    """

    weights: str
    activations: str
    vector: str
    accumulator: str
    kv_cache: str


@dataclass(frozen=True)
class NPUConfig:
    """A complete dnpu machine. Construct through load_npu_config / npu_config_from_dict."""

    name: str
    clock_ghz: float
    mlen: int
    blen: int
    vlen: int
    mx_block: int
    dllm_instructions: bool
    vector_sram: MemoryConfig
    matrix_sram: MemoryConfig
    fp_sram: MemoryConfig
    int_sram: MemoryConfig
    dram: DramConfig
    formats: FormatConfig
    description: str = ""
    # BLEN x MLEN fp32 accumulators of the matrix unit (`acc` operand of mm*/mwb): tile ops on one
    # weight tile into different accumulators load the tile once (weight reuse across row blocks)
    accumulators: int = 1
    # the front end issues a scalar instruction that touches no SRAM in the same cycle as the
    # DMA, matrix or vector instruction before it (two-wide in-order issue, e.g. the address
    # update after a vector op), when its operands are ready by then
    paired_issue: bool = False
    # cycle counts and energies (config/tech/<name>.yaml) the cost model times this machine with
    technology: Technology = field(default_factory=load_technology, repr=False)
    source: str = field(default="<dict>", compare=False, repr=False)

    # ---- derived figures -------------------------------------------------------------------

    @property
    def clock_hz(self) -> float:
        return self.clock_ghz * 1e9

    @property
    def peak_macs_per_cycle(self) -> int:
        """The MLEN x MLEN array retires MLEN^2 MACs per cycle once a tile op is in flight."""
        return self.mlen * self.mlen

    @property
    def peak_macs_per_s(self) -> float:
        return self.peak_macs_per_cycle * self.clock_hz

    @property
    def peak_flops_per_s(self) -> float:
        """Matrix-unit peak, counting a MAC as two floating-point operations."""
        return 2 * self.peak_macs_per_s

    @property
    def peak_vector_ops_per_s(self) -> float:
        """One element-wise fp32 operation per lane per cycle."""
        return self.vlen * self.clock_hz

    @property
    def peak_dram_bytes_per_s(self) -> float:
        return self.dram.bytes_per_s

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bytes_per_s / self.clock_hz

    @property
    def machine_balance_macs_per_byte(self) -> float:
        """Arithmetic intensity (MAC per DRAM byte) above which the matrix unit, not DRAM, limits."""
        return self.peak_macs_per_s / self.peak_dram_bytes_per_s

    @property
    def vector_element_bytes(self) -> int:
        return FORMATS[self.formats.vector].bits // 8

    @property
    def weight_tile_bytes(self) -> int:
        """One MLEN x MLEN bf16 weight tile in matrix SRAM."""
        return self.mlen * self.mlen * MATRIX_SRAM_ELEMENT_BITS // 8

    @property
    def activation_tile_bytes(self) -> int:
        """One BLEN x MLEN activation tile in vector SRAM."""
        return self.blen * self.mlen * self.vector_element_bytes

    @property
    def vector_sram_rows(self) -> int:
        """Rows of VLEN elements that vector SRAM holds."""
        return self.vector_sram.size_bytes // (self.vlen * self.vector_element_bytes)

    @property
    def weight_bits_per_element(self) -> float:
        """Average DRAM bits per weight, the shared 8-bit MX scale included."""
        fmt = FORMATS[self.formats.weights]
        return fmt.bits + (8 / self.mx_block if fmt.block_scaled else 0)

    @property
    def total_sram_bytes(self) -> int:
        return sum(m.size_bytes for m in (self.vector_sram, self.matrix_sram, self.fp_sram, self.int_sram))

    # ---- checks ----------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise NPUConfigError naming the file and key of the first rule this machine breaks."""

        def fail(key: str, message: str) -> None:
            raise NPUConfigError(f"{self.source}: {key}: {message}")

        if not isinstance(self.name, str) or not self.name:
            fail("name", "must be a non-empty string")
        if not self.clock_ghz > 0:
            fail("clock_ghz", f"{self.clock_ghz} must be positive")
        for key in ("mlen", "blen", "vlen", "mx_block"):
            value = getattr(self, key)
            if not _is_power_of_two(value):
                fail(key, f"{value} must be a power of two (tiles are addressed by bit fields)")
        if self.mlen % self.vlen:
            fail("vlen", f"{self.vlen} must divide mlen={self.mlen} (a tile row is whole vector rows)")
        if self.blen > self.mlen:
            fail("blen", f"{self.blen} must not exceed mlen={self.mlen}")
        if not isinstance(self.accumulators, int) or not 1 <= self.accumulators <= 1 << ACC_INDEX_BITS:
            fail("accumulators", f"{self.accumulators} must be 1..{1 << ACC_INDEX_BITS} (the ISA's `acc` field)")
        if self.vlen % self.mx_block:
            fail("mx_block", f"{self.mx_block} must divide vlen={self.vlen} (an MX block never spans rows)")

        fmt_rules = {
            "weights": WEIGHT_FORMATS,
            "activations": ACTIVATION_FORMATS,
            "vector": VECTOR_FORMATS,
            "accumulator": ACCUMULATOR_FORMATS,
            "kv_cache": KV_CACHE_FORMATS,
        }
        for key, allowed in fmt_rules.items():
            value = getattr(self.formats, key)
            if value not in FORMATS:
                fail(f"formats.{key}", f"unknown format {value!r}; known: {', '.join(FORMATS)}")
            if value not in allowed:
                fail(f"formats.{key}", f"{value!r} is not allowed here; choose one of {', '.join(allowed)}")

        memories = {
            "vector_sram": self.vector_sram,
            "matrix_sram": self.matrix_sram,
            "fp_sram": self.fp_sram,
            "int_sram": self.int_sram,
        }
        for key, mem in memories.items():
            if not _is_power_of_two(mem.size_bytes):
                fail(f"{key}.size_bytes", f"{mem.size_bytes} must be a power of two (address decoding)")
            if not _is_power_of_two(mem.width_bits) or mem.width_bits < 8:
                fail(f"{key}.width_bits", f"{mem.width_bits} must be a power of two of at least 8")
            if mem.ports < 1:
                fail(f"{key}.ports", f"{mem.ports} must be at least 1")
            if mem.width_bits > mem.size_bytes * 8:
                fail(f"{key}.width_bits", f"{mem.width_bits} is wider than the whole memory")

        vector_row_bits = self.vlen * FORMATS[self.formats.vector].bits
        # Wider words move whole rows side by side (a banked SRAM): the ports' cycles are bytes /
        # width for every access (npu.sim.cost.latency.port_cycles), vector ops still take one row.
        if self.vector_sram.width_bits % vector_row_bits:
            fail(
                "vector_sram.width_bits",
                f"{self.vector_sram.width_bits} must be a multiple of vlen x element bits = {vector_row_bits} "
                f"(whole rows of {self.vlen} {self.formats.vector} elements per access)",
            )
        matrix_row_bits = self.mlen * MATRIX_SRAM_ELEMENT_BITS
        if self.matrix_sram.width_bits % matrix_row_bits or self.matrix_sram.width_bits > self.mlen * matrix_row_bits:
            fail(
                "matrix_sram.width_bits",
                f"{self.matrix_sram.width_bits} must be a multiple of mlen x 16 = {matrix_row_bits} "
                f"(whole bf16 tile rows per access feed the array), at most a tile",
            )
        for key in ("fp_sram", "int_sram"):
            if memories[key].width_bits % SCALAR_WORD_BITS:
                fail(f"{key}.width_bits", f"{memories[key].width_bits} must be a multiple of 32 (word size)")

        if 2 * self.weight_tile_bytes > self.matrix_sram.size_bytes:
            fail(
                "matrix_sram.size_bytes",
                f"{self.matrix_sram.size_bytes} cannot hold two (double-buffered) {self.mlen}x{self.mlen} "
                f"bf16 weight tiles = {2 * self.weight_tile_bytes} bytes",
            )
        if 2 * self.activation_tile_bytes > self.vector_sram.size_bytes:
            fail(
                "vector_sram.size_bytes",
                f"{self.vector_sram.size_bytes} cannot hold two (double-buffered) {self.blen}x{self.mlen} "
                f"{self.formats.vector} activation tiles = {2 * self.activation_tile_bytes} bytes",
            )

        if self.dram.kind not in DRAM_KINDS:
            fail("dram.kind", f"unknown DRAM kind {self.dram.kind!r}; known: {', '.join(DRAM_KINDS)}")
        if self.dram.channels < 1:
            fail("dram.channels", f"{self.dram.channels} must be at least 1")
        if not self.dram.bandwidth_gbps > 0:
            fail("dram.bandwidth_gbps", f"{self.dram.bandwidth_gbps} must be positive")
        if not self.dram.capacity_gib > 0:
            fail("dram.capacity_gib", f"{self.dram.capacity_gib} must be positive")

    def to_dict(self) -> dict[str, Any]:
        """The YAML layout of this configuration (npu_config_from_dict(c.to_dict()) == c)."""
        d = dataclasses.asdict(self)
        del d["source"]
        d["technology"] = self.technology.name
        return d


# ---- loading ---------------------------------------------------------------------------------

_SECTIONS = {"vector_sram": MemoryConfig, "matrix_sram": MemoryConfig, "fp_sram": MemoryConfig,
             "int_sram": MemoryConfig, "dram": DramConfig, "formats": FormatConfig}


def _with_floats(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """A YAML `16` for a float field becomes 16.0, as the dataclass says."""
    floats = {f.name for f in dataclasses.fields(cls) if f.type == "float"}
    return {key: float(value) if key in floats else value for key, value in values.items()}


def npu_config_from_dict(d: Any, source: str = "<dict>", config_dir: str | Path | None = None) -> NPUConfig:
    """Build and validate an NPUConfig from its YAML layout (schema npu/schemas/npu.schema.yaml,
    then NPUConfig.validate()); errors name `source` and the key. The technology file it names
    is read from `<config_dir>/tech/` (default: the repository's config/)."""
    try:
        values = validate_mapping(d, "npu", source)
    except ConfigError as err:
        raise NPUConfigError(str(err)) from None
    try:
        technology = load_technology(values.pop("technology"), config_dir)
    except ConfigError as err:
        raise NPUConfigError(f"{source}: technology: {err}") from None
    for key, cls in _SECTIONS.items():
        values[key] = cls(**_with_floats(cls, values[key]))
    config = NPUConfig(**_with_floats(NPUConfig, values), technology=technology, source=source)
    config.validate()
    return config


def load_npu_config(path_or_name: str | Path, config_dir: str | Path | None = None) -> NPUConfig:
    """Load a preset by name ("dnpu-cloud" -> <config_dir>/npu/dnpu-cloud.yaml, default the
    repository's config/) or a YAML file by path; a file in a `<dir>/npu/` folder reads the
    technology file it names from `<dir>/tech/`."""
    presets = _presets_dir(config_dir)
    path = Path(path_or_name)
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        path = presets / f"{path_or_name}.yaml"
        if not path.is_file():
            raise NPUConfigError(
                f"no NPU preset named {str(path_or_name)!r}; presets: {', '.join(list_presets(config_dir))}"
            )
    if not path.is_file():
        raise NPUConfigError(f"{path}: no such NPU configuration file")
    if config_dir is None and path.resolve().parent.name == "npu":
        config_dir = path.resolve().parent.parent  # a preset in <config_dir>/npu/ names files of its own config_dir
    try:
        d = read_yaml(path)  # a syntax error names the file, line and column
    except ConfigError as err:
        raise NPUConfigError(str(err)) from None
    return npu_config_from_dict(d, source=path.name, config_dir=config_dir)


def list_presets(config_dir: str | Path | None = None) -> list[str]:
    """Names of the YAML presets in <config_dir>/npu/."""
    return sorted(p.stem for p in _presets_dir(config_dir).glob("*.yaml"))


def _presets_dir(config_dir: str | Path | None) -> Path:
    return CONFIG_DIR if config_dir is None else Path(config_dir) / "npu"


def _is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n > 0 and n & (n - 1) == 0


def with_technology(config: NPUConfig, technology: str | Path | None) -> NPUConfig:
    """`config` with the technology table at `technology` (e.g. the one calibrated from this
    run's synthesis, config `synth.calibrated_energy`) in place of the file its preset names;
    None: `config` unchanged. Latencies and energies both come from the table given."""
    if technology is None:
        return config
    from npu.hw.technology import read_technology_table

    try:
        table = read_technology_table(technology)
    except ConfigError as err:
        raise NPUConfigError(f"{config.name}: --technology: {err}") from None
    return dataclasses.replace(config, technology=table)
