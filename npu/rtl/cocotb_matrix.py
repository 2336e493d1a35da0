"""cocotb test module run inside the simulator by npu.rtl.matrix.run_matrix_program: drives a
program of weight loads, tile-op rows and write-backs (commands.npy, tiles.npy, rows.npy in
$DNPU_RTL_WORK) through matrix_unit, each of its three ports in program order with at most one
beat per cycle, the ports side by side as an in-order issue stage with a queue per unit would
(_may_start), each beat waiting for its ready; records the write-back rows and the cycle of
every handshake and accumulator write. Not imported outside cocotb."""

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


def _beats(kind: int, flag: int, acc: int, data: int, tiles: np.ndarray, rows: np.ndarray, wrows: int,
           vec_bits: int) -> list[dict[str, int]]:
    """The port fields of every beat of one command."""
    if kind == LOAD:
        tile = tiles[data]
        return [{"w_transpose": flag, "w_rows": _pack(tile[i * wrows:(i + 1) * wrows].reshape(-1), 16)}
                for i in range(tile.shape[0] // wrows)]
    if kind == TILE_OP:
        return [{"a_accumulate": flag, "a_acc": acc, "a_row": _pack(row, vec_bits)} for row in rows[data]]
    return [{"wb_acc": acc}]


PORT = {LOAD: "w", TILE_OP: "a", WRITE_BACK: "wb"}


def _may_start(index: int, kinds: list[int], first: np.ndarray, done: np.ndarray, cycle: int) -> bool:
    """In-order issue with one queue per port: command `index` may present its first beat in
    `cycle` once the commands before it that it depends on have got far enough: a tile op after
    every earlier weight load has finished (in an earlier cycle: it computes with that tile) and
    every earlier write-back has started; a weight load once every earlier tile op has started
    (in this cycle at the latest: an op takes the tile current when its first row moves, before a
    load finishing in that cycle switches tiles); a write-back after every earlier tile op has
    finished (the unit then holds it back until those rows are in the accumulator)."""
    kind = kinds[index]
    for earlier in range(index):
        other = kinds[earlier]
        if other == kind:
            continue  # the port's own queue keeps these in order
        if kind == TILE_OP and other == LOAD and not 0 <= done[earlier] < cycle:
            return False
        if kind == TILE_OP and other == WRITE_BACK and not 0 <= first[earlier] < cycle:
            return False
        if kind == LOAD and other == TILE_OP and not 0 <= first[earlier] <= cycle:
            return False
        if kind == WRITE_BACK and other == TILE_OP and not 0 <= done[earlier] < cycle:
            return False
    return True


@cocotb.test()
async def run_program(dut) -> None:
    """Reset, then issue the program's beats (each port in program order, the ports side by side
    under the dependencies of _may_start) and watch the outputs each cycle."""
    work = Path(os.environ["DNPU_RTL_WORK"])
    commands = np.load(work / "commands.npy")
    tiles, rows = np.load(work / "tiles.npy"), np.load(work / "rows.npy")
    mlen, blen, _, vec_bits, wrows = (int(v) for v in np.load(work / "params.npy"))
    writeback_count = int((commands[:, 0] == WRITE_BACK).sum())
    kinds = [int(kind) for kind in commands[:, 0]]

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    # Ports in the order they are decided within a cycle: tile-op rows first (a_ready depends on
    # registers only, so a row presented when it is 1 moves), so a load may start beside an op.
    valids = {"a": dut.a_valid, "wb": dut.wb_valid, "w": dut.w_valid}
    readies = {"w": dut.w_ready, "a": dut.a_ready, "wb": dut.wb_ready}
    for valid in valids.values():
        valid.value = 0
    dut.w_transpose.value = dut.a_accumulate.value = dut.a_acc.value = dut.wb_acc.value = 0
    dut.w_rows.value = dut.a_row.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    first = np.full(len(commands), -1, dtype=np.int64)  # cycle of each command's first / last beat
    last = np.full(len(commands), -1, dtype=np.int64)
    done = np.full(len(commands), -1, dtype=np.int64)  # = last once the final beat has moved
    writebacks = np.zeros((writeback_count, blen, mlen), dtype=np.uint64)
    writeback_cycles = np.full((writeback_count, blen), -1, dtype=np.int64)
    write_cycles, column_writes = [], []
    rows_seen = 0
    # Per port: the queue of its commands and the state of the one at its head.
    queues = {port: [i for i, kind in enumerate(kinds) if PORT[kind] == port] for port in valids}
    state = {port: None for port in valids}  # (command, beats, next beat, idle cycles left)
    drain = 0
    # Enough for any program: every beat waits at most for the array to drain.
    limit = 100 + (4 * mlen + 4 * blen + 8) * (len(commands) + 1) * (mlen + blen) + int(commands[:, 4:].sum()) * 4
    for cycle in range(limit):
        await FallingEdge(dut.clk)  # the middle of cycle `cycle`: registered outputs are settled
        if int(dut.wb_out_valid.value):
            which, b = divmod(rows_seen, blen)
            if int(dut.wb_out_index.value) != b:
                raise AssertionError(f"cycle {cycle}: write-back row index {int(dut.wb_out_index.value)}, "
                                     f"expected {b}")
            writebacks[which, b] = _unpack(int(dut.wb_out_row.value), mlen, vec_bits)
            writeback_cycles[which, b] = cycle
            rows_seen += 1
        written = int(dut.col_write.value)
        if written:
            write_cycles.append(cycle)
            column_writes.append([(written >> n) & 1 for n in range(mlen)])
        presented = []
        for port, valid in valids.items():
            valid.value = 0
            if state[port] is None and queues[port] and _may_start(queues[port][0], kinds, first, done, cycle):
                index = queues[port].pop(0)
                kind, flag, acc, data, gap, _ = (int(v) for v in commands[index])
                state[port] = [index, _beats(kind, flag, acc, data, tiles, rows, wrows, vec_bits), 0, gap]
            if state[port] is None:
                continue
            if state[port][3] > 0:  # an idle cycle the program asked for
                state[port][3] -= 1
                continue
            index, beats, number, _ = state[port]
            for name, value in beats[number].items():
                getattr(dut, name).value = value
            valid.value = 1
            presented.append(port)
            if port == "a" and number == 0 and int(dut.a_ready.value):
                first[index] = cycle  # it moves at this cycle's edge
        if presented:
            await Timer(1, unit="ns")  # let ready settle (wb_ready depends on wb_acc)
        for port in presented:
            if not int(readies[port].value):
                continue  # the beat waits; it is presented again next cycle
            index, beats, number, _ = state[port]
            if number == 0:
                first[index] = cycle
            last[index] = cycle
            if number + 1 == len(beats):
                done[index] = cycle
                state[port] = None
            else:
                state[port][2] = number + 1
                state[port][3] = int(commands[index, 5])  # idle cycles after each beat
        if all(state[port] is None and not queues[port] for port in valids):
            drain += 1
            if rows_seen == writeback_count * blen and drain > 2 * mlen + blen + 4:
                break
    else:
        raise AssertionError(f"the program did not finish in {limit} cycles (a ready never came?)")

    np.save(work / "writebacks.npy", writebacks)
    np.save(work / "beats.npy", np.stack([first, last], axis=1))
    np.save(work / "writeback_cycles.npy", writeback_cycles)
    np.save(work / "write_cycles.npy", np.array(write_cycles, dtype=np.int64))
    np.save(work / "column_writes.npy", np.array(column_writes, dtype=bool).reshape(-1, mlen))
    np.save(work / "cycles.npy", np.array(cycle + 1, dtype=np.int64))
