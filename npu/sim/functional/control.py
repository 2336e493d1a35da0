"""Control-unit handlers: halt, nop, wait, jumps and branches, zero-overhead hardware loops."""

from __future__ import annotations

from dataclasses import dataclass

from npu.isa.encoding import Instruction
from npu.isa.table import MAX_LOOP_DEPTH
from npu.sim.functional.handlers import HALT, Handler, HandlerBuilder, InstructionFault, Machine



@dataclass
class Loop:
    """One active hardware loop: the body [start, end) runs `remaining` more times."""

    start: int
    end: int
    remaining: int


def build_halt(sim: Machine, pc: int, ins: Instruction) -> Handler:
    return lambda: HALT


def build_nop(sim: Machine, pc: int, ins: Instruction) -> Handler:
    following = pc + 1
    return lambda: following


def build_wait(sim: Machine, pc: int, ins: Instruction) -> Handler:
    following, mask, sync = pc + 1, ins.operands["units"], sim.sync

    def wait() -> int:
        sync.wait(mask)
        return following
    return wait


def build_jump(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """`j`: the target must lie in the program and must not leave the innermost loop body."""
    target, size, loops = pc + ins.operands["target"], len(sim.program), sim.active_loops

    def jump() -> int:
        if not 0 <= target <= size:
            raise InstructionFault(f"branch target {target} is outside the program [0, {size}]")
        if loops and not loops[-1].start <= target <= loops[-1].end:
            raise InstructionFault(f"branch to {target} leaves the hardware loop body "
                                   f"[{loops[-1].start}, {loops[-1].end})")
        return target
    return jump


_BRANCH_CONDITIONS = {"beq": int.__eq__, "bne": int.__ne__, "blt": int.__lt__, "bge": int.__ge__}


def build_branch(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """beq / bne / blt / bge: a jump taken when the signed comparison of rs1 and rs2 holds."""
    jump, following, regs = build_jump(sim, pc, ins), pc + 1, sim.int_regs
    a, b, compare = ins.operands["rs1"], ins.operands["rs2"], _BRANCH_CONDITIONS[ins.mnemonic]

    def branch() -> int:
        return jump() if compare(regs[a], regs[b]) else following
    return branch


def build_loop(sim: Machine, pc: int, ins: Instruction) -> Handler:
    """loop (count in a register) / loopi (count immediate): pushes the body on the loop stack."""
    ops, regs, loops, size = ins.operands, sim.int_regs, sim.active_loops, len(sim.program)
    following = pc + 1
    end = following + ops["end"]
    fixed_count = ops["count"] if ins.mnemonic == "loopi" else None
    count_reg = ops["count"]

    def loop() -> int:
        count = fixed_count if fixed_count is not None else regs[count_reg]
        if count < 0:
            raise InstructionFault(f"loop count r{count_reg} = {count} is negative")
        if ops["end"] < 1 or end > size:
            raise InstructionFault(f"loop body [{following}, {end}) is empty or runs past the program end {size}")
        if loops and end > loops[-1].end:
            raise InstructionFault(f"loop body [{following}, {end}) is not nested inside the enclosing loop "
                                   f"[{loops[-1].start}, {loops[-1].end})")
        if count == 0:
            return end
        if len(loops) >= MAX_LOOP_DEPTH:
            raise InstructionFault(f"hardware loops nested deeper than {MAX_LOOP_DEPTH}")
        loops.append(Loop(following, end, count))
        return following
    return loop


HANDLERS: dict[str, HandlerBuilder] = {
    "halt": build_halt, "nop": build_nop, "wait": build_wait, "j": build_jump,
    **dict.fromkeys(_BRANCH_CONDITIONS, build_branch),
    "loop": build_loop, "loopi": build_loop,
}
