"""Functional-simulator speed: instructions per second on loop-heavy programs.

Usage: python benchmarks/funcsim_speed.py [--preset dnpu-edge] [--iterations 20000]
Prints one line per program: executed instructions, wall time, instructions per second.
"""

from __future__ import annotations

import argparse
import time

from npu.hw.config import load_npu_config
from npu.isa.assembler import assemble
from npu.sim.functional import FunctionalSimulator

PROGRAMS = {
    # scalar loop: address arithmetic and a branch-free counter, as in kernel prologues
    "scalar-loop": """
        addi r1, r0, {n}
        loop r1, done
        addi r2, r2, 3
        add  r3, r3, r2
        slli r4, r3, 1
        xor  r5, r4, r3
    done:
        halt
    """,
    # vector loop: the softmax inner loop over vocabulary chunks (sub-max, exp, sum) with argmax
    "vector-loop": """
        flui f0, -inf
        addi r1, r0, {n}
        loop r1, done
        vargmax f0, r6, r2, r2
        vsubs r3, r2, f1
        vexp  r3, r3
        vsum  f2, r3
        addi  r2, r2, 64
        andi  r2, r2, 4095
    done:
        wait vector
        halt
    """,
}


def measure(preset: str, name: str, iterations: int, check_sync: bool) -> tuple[int, float]:
    sim = FunctionalSimulator(load_npu_config(preset), dram_size=1 << 16, check_sync=check_sync)
    sim.load(assemble(PROGRAMS[name].format(n=iterations)))
    start = time.perf_counter()
    stats = sim.run(max_instructions=100 * iterations)
    return stats.instructions, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dnpu-edge")
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    for name in PROGRAMS:
        for check_sync in (True, False):
            count, seconds = measure(args.preset, name, args.iterations, check_sync)
            print(f"{name:12s} sync-checks={'on ' if check_sync else 'off'} {count:9d} instructions "
                  f"{seconds:7.3f} s {count / seconds:12,.0f} instructions/s")


if __name__ == "__main__":
    main()
