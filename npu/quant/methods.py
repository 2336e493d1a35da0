"""The registry of KV-cache methods and `make_cache_factory`, the one way to build their caches.

A method name fixes the algorithm and the storage layout (so that accuracy tables compare like
with like); options tune it. `make_cache_factory(method, bits, decode=..., **options)` returns
the `cache_factory(model_config, batch, seq_len)` that `generate` expects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Callable

from npu.models.decoding import DecodeConfig
from npu.models.transformer import KVCache, ModelConfig
from npu.quant import quantizers
from npu.quant.baos import BaosKVCache, BaosOptions
from npu.quant.kv_cache import (
    Bf16KVCache,
    BlockLayout,
    HadamardKVCache,
    KiviKVCache,
    MXKVCache,
    StaticSmoothKVCache,
    TokenIntKVCache,
)
from npu.quant.smoothing import StaticSmoothing

CacheFactory = Callable[[ModelConfig, int, int], KVCache]


@dataclass(frozen=True)
class KVMethod:
    """One registered method: its cache class, fixed keyword arguments, and storage layout.

    storage: the per-token layout its bits live in ('int', 'mxint', 'mxfp'), 'kivi' for KIVI's
    mixed layout, or 'bf16'. Methods that share a storage layout have the same bytes per token.
    """

    name: str
    description: str
    cache: type
    storage: str
    fixed: tuple[tuple[str, object], ...] = ()
    options: tuple[str, ...] = ()  # keyword options a caller may pass

    def supports(self, bits: int) -> bool:
        if self.storage == "bf16":
            return bits == 16
        layout = "int" if self.storage == "kivi" else self.storage
        try:
            quantizers.check_bits(layout, bits)
        except ValueError:
            return False
        return True


_BAOS_OPTIONS = tuple(f.name for f in fields(BaosOptions) if f.name != "storage") + ("window",)

METHODS: dict[str, KVMethod] = {
    m.name: m
    for m in (
        KVMethod("bf16", "16-bit baseline: K/V stored as bf16", Bf16KVCache, "bf16", options=("window",)),
        KVMethod("int", "per-token asymmetric INT (group 32 channels)", TokenIntKVCache, "int", options=("group", "window")),
        KVMethod("kivi", "KIVI: keys per channel, values per token, group 32, current block in bf16",
                 KiviKVCache, "kivi", options=("group", "window")),
        KVMethod("mxint", "plain MXINT (E8M0 scale per 32 channels)", MXKVCache, "mxint",
                 (("mx_layout", "mxint"),), options=("group", "window", "mx_scale")),
        KVMethod("mxfp", "plain MXFP (E4M3 at 8 bits, E2M1 at 4)", MXKVCache, "mxfp",
                 (("mx_layout", "mxfp"),), options=("group", "window", "mx_scale")),
        KVMethod("static-int", "offline key smoothing (SmoothAttention), per-token INT", StaticSmoothKVCache,
                 "int", (("storage", "int"),), options=("smoothing", "group", "window")),
        KVMethod("static-mxint", "offline key smoothing (SmoothAttention), MXINT", StaticSmoothKVCache,
                 "mxint", (("storage", "mxint"),), options=("smoothing", "group", "window")),
        KVMethod("hadamard-int", "Hadamard rotation per head (QuaRot), per-token INT", HadamardKVCache,
                 "int", (("storage", "int"),), options=("group", "window")),
        KVMethod("hadamard-mxint", "Hadamard rotation per head (QuaRot), MXINT", HadamardKVCache,
                 "mxint", (("storage", "mxint"),), options=("group", "window")),
        KVMethod("baos-int", "BAOS, per-token INT after smoothing (fp factors, no shift)", BaosKVCache, "int",
                 (("storage", "int"), ("scale", "fp"), ("shift", False)), options=_BAOS_OPTIONS),
        KVMethod("baos-mxint", "BAOS, MXINT after smoothing (the hardware variant)", BaosKVCache, "mxint",
                 (("storage", "mxint"),), options=_BAOS_OPTIONS),
        KVMethod("baos-mxfp", "BAOS, MXFP after smoothing", BaosKVCache, "mxfp",
                 (("storage", "mxfp"),), options=_BAOS_OPTIONS),
    )
}


def get_method(name: str) -> KVMethod:
    if name not in METHODS:
        raise ValueError(f"unknown KV-cache method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def _cache_kwargs(method: KVMethod, bits: int, options: dict) -> dict:
    options = dict(options)
    unknown = sorted(set(options) - set(method.options))
    if unknown:
        raise ValueError(
            f"KV-cache method {method.name!r} does not take option(s) {unknown}; "
            f"it takes: {list(method.options) or 'none'}"
        )
    if not method.supports(bits):
        layout = "int" if method.storage == "kivi" else method.storage
        if method.storage == "bf16":
            raise quantizers.UnsupportedBitsError(f"KV-cache method 'bf16' stores 16 bits, not {bits}")
        quantizers.check_bits(layout, bits)  # raises the layout's own message
    fixed = dict(method.fixed)
    if method.cache is BaosKVCache:
        window = options.pop("window", "block")
        options = replace(BaosOptions(**fixed), **options)
        return {"bits": bits, "options": options, "window": window}
    if method.cache is StaticSmoothKVCache:
        smoothing = options.get("smoothing")
        if smoothing is None:
            raise ValueError(f"KV-cache method {method.name!r} needs smoothing= (StaticSmoothing or its JSON path)")
        if isinstance(smoothing, (str, Path)):
            options = dict(options, smoothing=StaticSmoothing.load(smoothing))
    kwargs = fixed | options
    if method.storage != "bf16":
        kwargs["bits"] = bits
    return kwargs


def make_cache_factory(
    method: str, bits: int, *, decode: DecodeConfig | BlockLayout | None = None, **options
) -> CacheFactory:
    """cache_factory(model_config, batch, seq_len) for `generate`; errors name what is wrong.

    decode: the decoding recipe (or its BlockLayout), needed by methods that track the current
    block (KIVI's window, BAOS). None models a single full forward with no current block.
    """
    spec = get_method(method)
    kwargs = _cache_kwargs(spec, bits, options)
    layout = BlockLayout.from_decode(decode) if isinstance(decode, DecodeConfig) else decode
    if layout is not None and not isinstance(layout, BlockLayout):
        raise ValueError(f"make_cache_factory: decode must be a DecodeConfig or BlockLayout, got {type(decode).__name__}")
    return partial(_build, spec.cache, layout, kwargs)


def _build(cache_class: type, layout: BlockLayout | None, kwargs: dict, model_config: ModelConfig,
           batch: int, seq_len: int) -> KVCache:
    return cache_class(model_config, batch, seq_len, layout, **kwargs)
