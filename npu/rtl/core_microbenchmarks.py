"""Microbenchmarks of the control core's cycles per instruction class (assembly texts).

Each program repeats one instruction class in a zero-overhead loop; tests/test_rtl_core.py and
benchmarks/rtl_core_cycles.py run them on the RTL core and on the cycle simulator
(npu/sim/cycle) and explain every difference by the cycle simulator's front-end stalls.
"""

from __future__ import annotations

REPEAT = 50

MICROBENCHMARKS: dict[str, str] = {
    "alu, independent": f"loopi {REPEAT}, e\nadd r1, r2, r3\nadd r4, r2, r3\nxor r5, r2, r3\ne: halt",
    "alu, dependent chain": f"loopi {REPEAT}, e\naddi r1, r1, 1\naddi r1, r1, 1\nmul r1, r1, r1\ne: halt",
    "lw, result used next": f"loopi {REPEAT}, e\nlw r1, 3(r0)\nadd r2, r1, r1\ne: halt",
    "sw": f"loopi {REPEAT}, e\nsw r1, 3(r0)\nsw r2, 4(r0)\ne: halt",
    "flw / fsw": f"loopi {REPEAT}, e\nflw f1, 3(r0)\nfsw f2, 4(r0)\ne: halt",
    "fadd, dependent chain": f"flui f2, 1.0\nloopi {REPEAT}, e\nfadd f1, f1, f2\ne: halt",
    "fmul, dependent chain": f"flui f1, 1.0\nflui f2, 1.5\nloopi {REPEAT}, e\nfmul f1, f1, f2\ne: halt",
    "fexp / frecip / frsqrt": f"flui f1, 0.5\nloopi {REPEAT}, e\nfexp f2, f1\nfrecip f3, f1\nfrsqrt f4, f1\ne: halt",
    "flt then branch": f"loopi {REPEAT}, e\nflt r1, f1, f2\nbeq r1, r0, e\ne: halt",
    "fcvt / fmv": f"loopi {REPEAT}, e\nfcvt.f.i f1, r2\nfmv.i.f r3, f1\nfcvt.i.f r4, f1\ne: halt",
    "address registers": f"loopi {REPEAT}, e\naaddi a1, a1, 64\namac a2, a1, r1, r2\naset a3, r1, r2\ne: halt",
    "branch taken (countdown)": f"addi r1, r0, {REPEAT}\nl: addi r1, r1, -1\nbne r1, r0, l\nhalt",
    "branch not taken": f"addi r3, r0, 1\nloopi {REPEAT}, e\nbeq r1, r3, e\nbne r0, r0, e\nnop\ne: halt",
    "j over one instruction": f"loopi {REPEAT}, e\nj n\nnop\nn: nop\ne: halt",
    "hardware loops, 4 deep": "loopi 3, e1\nloopi 3, e2\nloopi 3, e3\nloopi 3, e4\nnop\ne4: nop\ne3: nop\ne2: nop\ne1: halt",
}
