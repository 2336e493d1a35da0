"""Assembler and disassembler for the dnpu ISA, generated from the instruction table.

Syntax (one instruction per line):

    # comment (also ';')
    .const VLEN 64             # named constant, usable wherever an immediate is
    loop:  addi r1, r1, -1     # label, then an instruction
           bne  r1, r0, loop   # branch targets are labels (or pc-relative numbers)
           flui f0, -inf       # bf16 constants: decimal float, or 0x bit pattern
           lw   r2, 4(r3)      # scalar SRAM access: offset(base)
           wait dma|vector

Every error raises `AssemblyError` carrying the line, the column and the source line.
`disassemble(words)` prints text that assembles back to the very same words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from npu.errors import UserError
from npu.isa.encoding import EncodingError, Instruction, decode, encode_spec
from npu.isa.table import BY_MNEMONIC, SYNC_UNITS, InstructionSpec, Kind, OperandField

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_LABEL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:")
_INT_LITERAL = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9][0-9_]*)\Z")
_REGISTER = re.compile(r"([rfa])([0-9]+)\Z")


class AssemblyError(UserError):
    """Malformed assembly, located by source name, line and column."""

    def __init__(self, message: str, line: int, column: int, source_line: str, source: str = "<asm>"):
        self.message, self.line, self.column = message, line, column
        self.source_line, self.source = source_line, source
        caret = " " * max(column - 1, 0) + "^"
        super().__init__(f"{source}:{line}:{column}: {message}\n    {source_line}\n    {caret}")


@dataclass
class Program:
    """Assembled machine code plus what is needed to point back at the source."""

    words: np.ndarray                    # uint32, one per instruction
    labels: dict[str, int] = field(default_factory=dict)
    source_lines: list[int] = field(default_factory=list)  # 1-based line per instruction
    source: str = "<asm>"

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class _Statement:
    pc: int
    line: int
    column: int          # where the mnemonic starts
    mnemonic: str
    operand_text: str
    operand_column: int  # where the operand text starts
    text: str            # the whole source line


def _template_regex(spec: InstructionSpec) -> re.Pattern[str]:
    pattern = r"\s*"
    for piece in re.split(r"(\{\w+\})", spec.syntax):
        if piece.startswith("{"):
            pattern += rf"(?P<{piece[1:-1]}>[^\s,()]+)"
        else:
            for char in piece:
                pattern += r"\s*" if char == " " else rf"\s*{re.escape(char)}\s*"
    return re.compile(pattern + r"\s*\Z")


_TEMPLATES = {spec.mnemonic: _template_regex(spec) for spec in BY_MNEMONIC.values()}


def _parse_int(text: str) -> int | None:
    if _INT_LITERAL.match(text):
        return int(text.replace("_", ""), 0)
    return None


def _bf16_bits(value: float) -> int | None:
    """The 16-bit pattern of `value` if it is exactly a bf16 number, else None."""
    bits = int(np.array([value], dtype=np.float32).view(np.uint32)[0])
    if math.isnan(value) or bits & 0xFFFF or float(np.float32(value)) != value:
        return None
    return bits >> 16


def bf16_text(bits: int) -> str:
    value = float(np.array([bits << 16], dtype=np.uint32).view(np.float32)[0])
    return f"{bits:#06x}" if math.isnan(value) else repr(value)


class _Assembler:
    def __init__(self, text: str, source: str, constants: dict[str, int | float] | None):
        self.source = source
        self.lines = text.splitlines()
        self.constants: dict[str, int | float] = dict(constants or {})
        self.labels: dict[str, int] = {}
        self.statements: list[_Statement] = []

    def error(self, message: str, line: int, column: int) -> AssemblyError:
        return AssemblyError(message, line, column, self.lines[line - 1], self.source)

    # --- pass 1: labels, constants, statements -------------------------------------------
    def collect(self) -> None:
        label_lines: dict[str, int] = {}
        for number, raw in enumerate(self.lines, start=1):
            code = re.split(r"[#;]", raw, maxsplit=1)[0]
            position = 0
            while (match := _LABEL.match(code, position)) is not None:
                name = match.group(1)
                column = match.start(1) + 1
                self._check_new_name(name, number, column, label_lines)
                self.labels[name] = len(self.statements)
                label_lines[name] = number
                position = match.end()
            rest = code[position:]
            stripped = rest.strip()
            if not stripped:
                continue
            column = position + len(rest) - len(rest.lstrip()) + 1
            head, gap, tail = re.match(r"(\S+)(\s*)(.*)", stripped).groups()
            operand_column = column + len(head) + len(gap)
            if head.startswith("."):
                self._directive(head, tail, number, column, operand_column, label_lines)
                continue
            self.statements.append(_Statement(len(self.statements), number, column, head.lower(),
                                              tail, operand_column, raw))

    def _check_new_name(self, name: str, line: int, column: int, label_lines: dict[str, int]) -> None:
        if _REGISTER.match(name) or name == "zero":
            raise self.error(f"{name!r} is a register name and cannot be a label or constant", line, column)
        if name in label_lines:
            raise self.error(f"duplicate label {name!r} (first defined on line {label_lines[name]})", line, column)
        if name in self.constants:
            raise self.error(f"{name!r} is already defined as a constant", line, column)

    def _directive(self, head: str, tail: str, line: int, column: int, operand_column: int,
                   label_lines: dict[str, int]) -> None:
        if head != ".const":
            raise self.error(f"unknown directive {head!r} (known: .const)", line, column)
        parts = tail.split()
        if len(parts) != 2 or not _NAME.match(parts[0]):
            raise self.error(".const takes a name and a value: .const NAME 42", line, operand_column)
        name, text = parts
        self._check_new_name(name, line, operand_column, label_lines)
        value = self._number(text, line, operand_column + tail.index(text, len(name)), allow_float=True)
        self.constants[name] = value

    def _number(self, text: str, line: int, column: int, allow_float: bool = False) -> int | float:
        negate = text.startswith("-")
        body = text[1:] if negate else text
        literal = _parse_int(text)
        if literal is not None:
            return literal
        if body in self.constants:
            value = self.constants[body]
            return -value if negate else value
        if allow_float:
            try:
                return float(text)
            except ValueError:
                pass
        raise self.error(f"expected a number or constant, got {text!r}", line, column)

    # --- pass 2: operands ------------------------------------------------------------------
    def assemble(self) -> Program:
        self.collect()
        words = []
        for statement in self.statements:
            words.append(self._encode(statement))
        return Program(np.array(words, dtype=np.uint32), dict(self.labels),
                       [s.line for s in self.statements], self.source)

    def _encode(self, st: _Statement) -> int:
        spec = BY_MNEMONIC.get(st.mnemonic)
        if spec is None:
            raise self.error(f"unknown mnemonic {st.mnemonic!r}", st.line, st.column)
        match = _TEMPLATES[spec.mnemonic].match(st.operand_text)
        if match is None:
            expected = spec.syntax.replace("{", "").replace("}", "") or "no operands"
            given = [p for p in st.operand_text.split(",") if p.strip()] if st.operand_text else []
            wanted = len(spec.syntax.split(",")) if spec.syntax else 0
            detail = f"expected {wanted} operand(s), got {len(given)}; " if len(given) != wanted else ""
            raise self.error(f"{detail}{spec.mnemonic} takes: {spec.mnemonic} {expected}".rstrip(),
                             st.line, st.operand_column)
        values = {}
        for operand in spec.fields:
            text = match.group(operand.name)
            column = st.operand_column + match.start(operand.name)
            values[operand.name] = self._operand(spec, operand, text, st, column)
        try:
            return encode_spec(spec, values)
        except EncodingError as err:  # unreachable when operand checks are complete
            raise self.error(str(err), st.line, st.operand_column) from None

    def _operand(self, spec: InstructionSpec, operand: OperandField, text: str, st: _Statement,
                 column: int) -> int:
        kind = operand.kind
        if kind in (Kind.INT_REG, Kind.FP_REG, Kind.ADDR_REG):
            prefix = {Kind.INT_REG: "r", Kind.FP_REG: "f", Kind.ADDR_REG: "a"}[kind]
            low, high = operand.value_range()
            name = "r0" if text == "zero" and kind is Kind.INT_REG else text.lower()
            reg = _REGISTER.match(name)
            if reg is None or reg.group(1) != prefix or not low <= int(reg.group(2)) <= high:
                raise self.error(f"{spec.mnemonic} operand {operand.name} must be {kind.value}, got {text!r}",
                                 st.line, column)
            return int(reg.group(2))
        if kind is Kind.ENUM:
            if text.lower() not in operand.choices:
                raise self.error(f"{spec.mnemonic} operand {operand.name} must be one of "
                                 f"{', '.join(operand.choices)}; got {text!r}", st.line, column)
            return operand.choices.index(text.lower())
        if kind is Kind.UNIT_MASK:
            if text.lower() == "all":
                return (1 << len(SYNC_UNITS)) - 1
            if (literal := _parse_int(text)) is not None and 0 <= literal < 1 << len(SYNC_UNITS):
                return literal
            mask = 0
            for name in text.lower().split("|"):
                if name not in SYNC_UNITS:
                    raise self.error(f"wait takes units from {'|'.join(SYNC_UNITS)} or 'all'; got {name!r}",
                                     st.line, column)
                mask |= 1 << SYNC_UNITS.index(name)
            return mask
        if kind is Kind.BF16:
            return self._bf16(text, st, column)
        if kind in (Kind.BRANCH, Kind.LOOP_END) and text in self.labels:
            target = self.labels[text]
            value = target - st.pc if kind is Kind.BRANCH else target - (st.pc + 1)
            if kind is Kind.LOOP_END and value < 1:
                raise self.error(f"loop end label {text!r} must come after at least one body instruction",
                                 st.line, column)
        else:
            if kind in (Kind.BRANCH, Kind.LOOP_END) and _NAME.match(text) and text not in self.constants:
                raise self.error(f"undefined label {text!r}", st.line, column)
            value = self._number(text, st.line, column)
            if not isinstance(value, int):
                raise self.error(f"{spec.mnemonic} operand {operand.name} must be an integer, got {text!r}",
                                 st.line, column)
        low, high = operand.value_range()
        if not low <= value <= high:
            raise self.error(f"{spec.mnemonic} operand {operand.name} = {value} is out of range {low}..{high}",
                             st.line, column)
        return value

    def _bf16(self, text: str, st: _Statement, column: int) -> int:
        if text.lower().startswith(("0x", "-0x", "+0x")):
            bits = _parse_int(text)
            if bits is None or not 0 <= bits <= 0xFFFF:
                raise self.error(f"bf16 bit pattern {text!r} must be 0x0000..0xffff", st.line, column)
            return bits
        value = self._number(text, st.line, column, allow_float=True)
        bits = _bf16_bits(float(value))
        if bits is None:
            nearest = float(np.float32(value))
            raise self.error(f"{text!r} is not exactly a bf16 number (fp32 value {nearest!r}); use a bf16 value "
                             f"or load full fp32 bits with lui/ori + fmv.f.i", st.line, column)
        return bits


def assemble(text: str, source: str = "<asm>", constants: dict[str, int | float] | None = None) -> Program:
    """Assemble `text`; `constants` pre-defines names as if by `.const`."""
    return _Assembler(text, source, constants).assemble()


def format_instruction(instruction: Instruction, pc: int | None = None,
                       labels_by_pc: dict[int, str] | None = None) -> str:
    """Assembly text of one instruction; targets print as labels when `labels_by_pc` names them."""
    spec = instruction.spec
    pieces: dict[str, str] = {}
    for operand in spec.fields:
        value = instruction.operands[operand.name]
        kind = operand.kind
        if kind is Kind.INT_REG:
            text = f"r{value}"
        elif kind is Kind.FP_REG:
            text = f"f{value}"
        elif kind is Kind.ADDR_REG:
            text = f"a{value}"
        elif kind is Kind.ENUM:
            text = operand.choices[value]
        elif kind is Kind.UNIT_MASK:
            names = [name for bit, name in enumerate(SYNC_UNITS) if value >> bit & 1]
            text = "|".join(names) if names else "0"
        elif kind is Kind.BF16:
            text = bf16_text(value)
        elif kind in (Kind.BRANCH, Kind.LOOP_END) and pc is not None and labels_by_pc \
                and not (kind is Kind.LOOP_END and value < 1):
            target = pc + value if kind is Kind.BRANCH else pc + 1 + value
            text = labels_by_pc.get(target, str(value))
        else:
            text = str(value)
        pieces[operand.name] = text
    operands = spec.syntax.format(**pieces)
    return f"{spec.mnemonic} {operands}" if operands else spec.mnemonic


def disassemble_word(word: int) -> str:
    """Text of one word, or a note that it is illegal."""
    try:
        return format_instruction(decode(word))
    except EncodingError as err:
        return f"<illegal: {err}>"


def disassemble(words: np.ndarray | list[int]) -> str:
    """Whole-program listing with generated labels L<pc>; reassembles to the same words.

    An illegal word raises EncodingError naming its index (the pc) and the word in hex."""
    instructions = []
    for pc, word in enumerate(words):
        try:
            instructions.append(decode(int(word)))
        except EncodingError as err:
            raise EncodingError(f"word {pc} (byte offset {4 * pc}): {err}") from None
    targets: set[int] = set()
    for pc, instruction in enumerate(instructions):
        for operand in instruction.spec.fields:
            value = instruction.operands[operand.name]
            if operand.kind is Kind.BRANCH:
                targets.add(pc + value)
            elif operand.kind is Kind.LOOP_END and value >= 1:
                targets.add(pc + 1 + value)
    labels = {pc: f"L{pc}" for pc in sorted(targets) if 0 <= pc <= len(instructions)}
    lines = []
    for pc, instruction in enumerate(instructions):
        if pc in labels:
            lines.append(f"{labels[pc]}:")
        lines.append(f"    {format_instruction(instruction, pc, labels)}")
    if len(instructions) in labels:
        lines.append(f"{labels[len(instructions)]}:")
    return "\n".join(lines) + "\n"
