"""Operator regions of a program: which instructions implement which operator.

A program marks the start of each operator with a label `op_<name>` (the name of the step
operator, e.g. `op_blocks.0.attn.q_proj`); the region runs to the next such label. An operator
whose code is entered more than once (a row-tiled layer, the sampling epilogue inside the LM
head's column loop) labels its later entries `op_<name>..<k>`. The compiler writes these labels
(npu.compiler.asm.Asm.operator); the analytical model and the cross-checks read them.
"""

from __future__ import annotations

PREFIX = "op_"
_REPEAT = ".."


def operator_label(name: str, entry: int = 0) -> str:
    """The label of the `entry`-th start (0 = first) of operator `name`'s code."""
    return f"{PREFIX}{name}" if entry == 0 else f"{PREFIX}{name}{_REPEAT}{entry}"


def operator_of_label(label: str) -> str | None:
    """The operator a label starts (None for other labels)."""
    if not label.startswith(PREFIX):
        return None
    return label[len(PREFIX):].split(_REPEAT)[0]
