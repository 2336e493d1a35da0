"""Program files: assembly sources (`.s`) and binaries (`.bin`, little-endian 32-bit words, the
format `npu compile` writes), read and written with errors that name the file.

`npu asm`, `npu disasm` and `npu run` are thin calls into here (and npu.runtime.tools).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu.errors import UserError
from npu.io import atomic_write_bytes
from npu.isa.assembler import Program, assemble, disassemble
from npu.isa.encoding import EncodingError

SOURCE_SUFFIXES = (".s", ".asm")
BINARY_SUFFIXES = (".bin",)


class ProgramFileError(UserError, ValueError):
    """A program file that is missing, empty, not whole 32-bit words, or of an unknown kind."""


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ProgramFileError(f"{path}: no such file")
    if not path.is_file():
        raise ProgramFileError(f"{path}: not a file")
    return path.read_bytes()


def read_binary(path: str | Path) -> np.ndarray:
    """The uint32 words of a program binary."""
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise ProgramFileError(f"{path}: empty program binary (no instruction words)")
    if len(data) % 4:
        raise ProgramFileError(f"{path}: {len(data)} bytes is not a whole number of 32-bit instruction words "
                               f"(truncated? the last word has {len(data) % 4} of its 4 bytes)")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def read_source(path: str | Path) -> str:
    """The text of an assembly source; a binary handed in by mistake is named as such."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProgramFileError(f"{path}: byte {exc.start} is not UTF-8 text; is this a binary? "
                               f"(assembly sources end in {', '.join(SOURCE_SUFFIXES)})") from None


def assemble_file(path: str | Path) -> Program:
    """Assemble a source file; AssemblyError carries `<path>:<line>:<column>`."""
    path = Path(path)
    return assemble(read_source(path), source=str(path))


def load_program(path: str | Path) -> Program:
    """A `.s` source (assembled) or a `.bin` binary, by its suffix."""
    path = Path(path)
    if path.suffix in SOURCE_SUFFIXES:
        return assemble_file(path)
    if path.suffix in BINARY_SUFFIXES:
        return Program(read_binary(path), source=str(path))
    raise ProgramFileError(f"{path}: unknown program file kind {path.suffix or '(no suffix)'!r}; "
                           f"expected an assembly source ({', '.join(SOURCE_SUFFIXES)}) or a binary "
                           f"({', '.join(BINARY_SUFFIXES)})")


def write_binary(path: str | Path, program: Program) -> Path:
    """Write the words atomically (no partial file on any error)."""
    return atomic_write_bytes(path, np.asarray(program.words, dtype="<u4").tobytes())


def assemble_to_file(source: str | Path, out: str | Path) -> Program:
    """`npu asm`: assemble `source`, then (only if that succeeded) write `out`."""
    program = assemble_file(source)
    write_binary(out, program)
    return program


def disassemble_file(path: str | Path) -> str:
    """`npu disasm`: the listing of a binary; an illegal word names the file and its index."""
    path = Path(path)
    words = read_binary(path)
    try:
        return disassemble(words)
    except EncodingError as exc:
        raise EncodingError(f"{path}: {exc}") from None
