"""cocotb test module run inside the simulator by npu.rtl.matrix.run_matrix_program: drives a
program of weight loads, tile-op rows and write-backs (commands.npy, tiles.npy, rows.npy in
$DNPU_RTL_WORK) through matrix_unit in order, one beat per cycle at most, each beat waiting for
its ready; records the write-back rows and the cycle of every handshake and accumulator write.
Not imported outside cocotb."""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

LOAD, TILE_OP, WRITE_BACK = 0, 1, 2


def _pack(values, bits: int) -> int:
    """Little-endian concatenation: values[0] in the lowest `bits` bits."""
    word = 0
    for i, value in enumerate(values):
        word |= int(value) << (bits * i)
    return word


def _unpack(word: int, count: int, bits: int) -> list[int]:
    mask = (1 << bits) - 1
    return [(word >> (bits * i)) & mask for i in range(count)]


def _beats(commands: np.ndarray, tiles: np.ndarray, rows: np.ndarray, wrows: int, vec_bits: int):
    """(command index, beat number, port, fields) for every beat, in program order, with None
    for each idle cycle a command asks for before its first beat or after each beat."""
    for index, (kind, flag, acc, data, gap, beat_gap) in enumerate(commands.tolist()):
        yield from [None] * gap
        if kind == LOAD:
            tile = tiles[data]
            for beat in range(tile.shape[0] // wrows):
                block = tile[beat * wrows:(beat + 1) * wrows].reshape(-1)
                yield index, beat, "w", {"w_transpose": flag, "w_rows": _pack(block, 16)}
                yield from [None] * beat_gap
        elif kind == TILE_OP:
            for b, row in enumerate(rows[data]):
                yield index, b, "a", {"a_accumulate": flag, "a_acc": acc, "a_row": _pack(row, vec_bits)}
                yield from [None] * beat_gap
        else:
            yield index, 0, "wb", {"wb_acc": acc}
            yield from [None] * beat_gap


@cocotb.test()
async def run_program(dut) -> None:
    """Reset, then issue every beat of the program in order and watch the outputs each cycle."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    commands = np.load(work / "commands.npy")
    tiles, rows = np.load(work / "tiles.npy"), np.load(work / "rows.npy")
    mlen, blen, _, vec_bits, wrows = (int(v) for v in np.load(work / "params.npy"))
    writeback_count = int((commands[:, 0] == WRITE_BACK).sum())

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    valids = {"w": dut.w_valid, "a": dut.a_valid, "wb": dut.wb_valid}
    readies = {"w": dut.w_ready, "a": dut.a_ready, "wb": dut.wb_ready}
    for valid in valids.values():
        valid.value = 0
    dut.w_transpose.value = dut.a_accumulate.value = dut.a_acc.value = dut.wb_acc.value = 0
    dut.w_rows.value = dut.a_row.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    beats = np.full((len(commands), 2), -1, dtype=np.int64)
    writebacks = np.zeros((writeback_count, blen, mlen), dtype=np.uint64)
    writeback_cycles = np.full((writeback_count, blen), -1, dtype=np.int64)
    write_cycles, column_writes = [], []
    rows_seen = 0
    pending = _beats(commands, tiles, rows, wrows, vec_bits)
    beat = next(pending, StopIteration)
    drain = 0
    # Enough for any program: every beat waits at most for the array to drain.
    limit = 100 + (4 * mlen + 4 * blen + 8) * (len(commands) + 1) * (mlen + blen) + int(commands[:, 4:].sum()) * 4
    for cycle in range(limit):
        await FallingEdge(dut.clk)  # the middle of cycle `cycle`: registered outputs are settled
        if int(dut.wb_out_valid.value):
            which, b = divmod(rows_seen, blen)
            if int(dut.wb_out_index.value) != b:
                raise AssertionError(f"cycle {cycle}: write-back row index {int(dut.wb_out_index.value)}, expected {b}")
            writebacks[which, b] = _unpack(int(dut.wb_out_row.value), mlen, vec_bits)
            writeback_cycles[which, b] = cycle
            rows_seen += 1
        written = int(dut.col_write.value)
        if written:
            write_cycles.append(cycle)
            column_writes.append([(written >> n) & 1 for n in range(mlen)])
        for valid in valids.values():
            valid.value = 0
        if beat is StopIteration:
            drain += 1
            if rows_seen == writeback_count * blen and drain > 2 * mlen + blen + 4:
                break
            continue
        if beat is not None:
            index, number, port, fields = beat
            for name, value in fields.items():
                getattr(dut, name).value = value
            valids[port].value = 1
            await Timer(1, unit="ns")  # let ready settle (wb_ready depends on wb_acc)
            if not int(readies[port].value):
                continue  # the beat waits; try again next cycle
            if number == 0:
                beats[index, 0] = cycle
            beats[index, 1] = cycle
        beat = next(pending, StopIteration)
    else:
        raise AssertionError(f"the program did not finish in {limit} cycles (a ready never came?)")

    np.save(work / "writebacks.npy", writebacks)
    np.save(work / "beats.npy", beats)
    np.save(work / "writeback_cycles.npy", writeback_cycles)
    np.save(work / "write_cycles.npy", np.array(write_cycles, dtype=np.int64))
    np.save(work / "column_writes.npy", np.array(column_writes, dtype=bool).reshape(-1, mlen))
