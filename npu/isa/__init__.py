"""The dnpu instruction set: one table (table.py) from which everything else is generated."""

from npu.isa.assembler import AssemblyError, Program, assemble, disassemble, disassemble_word, format_instruction
from npu.isa.encoding import EncodingError, Instruction, decode, encode
from npu.isa.table import BY_MNEMONIC, INSTRUCTIONS, InstructionSpec, opcode_constants

__all__ = ["AssemblyError", "BY_MNEMONIC", "EncodingError", "INSTRUCTIONS", "Instruction", "InstructionSpec",
           "Program", "assemble", "decode", "disassemble", "disassemble_word", "encode", "format_instruction",
           "opcode_constants"]
