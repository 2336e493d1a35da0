"""Microbenchmarks of npu_top's queued units (assembly texts for the reduced machine of
npu.rtl.top.reduced_config: VLEN = MLEN = 8, BLEN 2): DMA shapes, vector and matrix instruction
classes, and queue overlap. tests/test_rtl_top.py runs each on the RTL and on the cycle simulator
(bandwidth DRAM backend) and docs/rtl.md tabulates and explains the differences."""

from __future__ import annotations


def _dma(mnemonic: str, rows: int, cols: int, dstride: int, fmt: str, repeat: int = 1) -> str:
    return (f"addi r2, r0, {rows}\naddi r3, r0, {cols}\naddi r4, r0, {dstride}\naddi r5, r0, {cols}\n"
            f"aset a1, r0, r0\nloopi {repeat}, e\n{mnemonic} a1, r0, r2, r3, r4, r5, {fmt}\ne: halt\n")


def _vector_loop(body: str, repeat: int = 16) -> str:
    return (f"addi r1, r0, 0\naddi r2, r0, 128\naddi r3, r0, 256\nflui f1, 1.5\nloopi {repeat}, e\n{body}\n"
            "addi r1, r1, 8\naddi r3, r3, 8\ne: halt\n")


MICROBENCHMARKS: dict[str, str] = {
    "dld.v bf16, 1 x 8": _dma("dld.v", 1, 8, 16, "bf16"),
    "dld.v bf16, 8 x 64": _dma("dld.v", 8, 64, 128, "bf16"),
    "dld.v mxint4, 8 x 64": _dma("dld.v", 8, 64, 40, "mxint4"),
    "dld.m bf16, 8 x 64": _dma("dld.m", 8, 64, 128, "bf16"),
    "dst.v bf16, 8 x 64": _dma("dst.v", 8, 64, 128, "bf16"),
    "dst.v mxint8, 8 x 64": _dma("dst.v", 8, 64, 72, "mxint8"),
    "dld.f fp32, 4 x 32": _dma("dld.f", 4, 32, 128, "fp32"),
    "vadd x 16 rows": _vector_loop("vadd r3, r1, r2"),
    "vexp x 16 rows": _vector_loop("vexp r3, r1"),
    "vadds x 16 rows": _vector_loop("vadds r3, r1, f1"),
    "vsum chain x 16": _vector_loop("vsum f2, r1"),
    "vldf x 16": _vector_loop("vldf r3, r1"),
    "mm x 8 (one accumulator)": "addi r1, r0, 0\naddi r2, r0, 8\nloopi 8, e\nmm r1, r2, r0, 0\ne: halt\n",
    "mm x 8 then mwb": "addi r1, r0, 0\naddi r2, r0, 8\naddi r3, r0, 512\nloopi 8, e\nmm r1, r2, r0, 1\n"
                       "e: mwb r3, r2, 1\nhalt\n",
    "overlap: dld.v 8 x 64 beside 16 vadd": (
        "addi r2, r0, 8\naddi r3, r0, 64\naddi r4, r0, 128\naset a1, r0, r0\naddi r6, r0, 512\n"
        "dld.v a1, r6, r2, r3, r4, r3, bf16\naddi r1, r0, 0\naddi r7, r0, 256\nloopi 16, e\n"
        "vadd r7, r1, r1\naddi r7, r7, 8\ne: halt\n"),
    "overlap: dld.m beside mm": (
        "addi r2, r0, 4\naddi r3, r0, 64\naddi r4, r0, 128\naset a1, r0, r0\naddi r6, r0, 256\n"
        "dld.m a1, r6, r2, r3, r4, r3, bf16\naddi r1, r0, 0\naddi r5, r0, 8\nloopi 4, e\n"
        "mm r1, r5, r0, 0\ne: halt\n"),
}
