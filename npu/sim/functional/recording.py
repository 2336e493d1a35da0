"""Operands the functional simulator's vector and matrix units see, recorded while a compiled
program runs: the workload the synthesis flow's gate-level simulation replays to measure the
switching activity of the arithmetic units and the matrix PE on a real model step
(npu.synth.activity; the synthesis layer reads the recorded file, it does not import this).

`record_operands()` is a context manager: inside it the element-wise vector operations
(vadd/vsub/vmul and the scalar forms, vexp, vrecip, vrsqrt, vsilu) and the matrix unit's
multiply-accumulate record their inputs, up to `limit` operand sets per unit, before computing
exactly what they computed before. Handlers built inside the block use the recording operations,
so the simulator (or stepper) must build its programs inside it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from npu.hw import numerics
from npu.sim.functional import vector

# vector mnemonic -> (unit, how its operands map to the unit's inputs a / b)
_BINARY = {"vadd": "fp32_add", "vsub": "fp32_add", "vmul": "fp32_mul"}
_SCALAR = {"vadds": "fp32_add", "vsubs": "fp32_add", "vmuls": "fp32_mul"}
_UNARY = {"vexp": "fp32_exp", "vrecip": "fp32_recip", "vrsqrt": "fp32_rsqrt", "vsilu": "fp32_silu"}


def _bits(values) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float32)).reshape(-1).view(np.uint32).astype(np.uint64)


@dataclass
class OperandRecord:
    """Recorded operand streams: unit -> input port -> bit patterns, one entry per operation."""

    limit: int = 4096
    streams: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, unit: str, **ports: np.ndarray) -> None:
        have = self.counts.get(unit, 0)
        room = self.limit - have
        if room <= 0:
            return
        n = min(room, len(next(iter(ports.values()))))
        store = self.streams.setdefault(unit, {})
        for name, values in ports.items():
            store.setdefault(name, []).append(np.asarray(values, dtype=np.uint64)[:n])
        self.counts[unit] = have + n

    def arrays(self) -> dict[str, np.ndarray]:
        """`<unit>.<port>` -> uint64 array (the npz layout npu.synth.activity reads)."""
        return {f"{unit}.{port}": np.concatenate(chunks) for unit, ports in self.streams.items()
                for port, chunks in ports.items()}


def _matrix_pe_stream(record: OperandRecord, act: np.ndarray, weight: np.ndarray) -> None:
    """One PE's inputs for a tile op: PE (k, 0) with k = K // 2 (a PE with K // 2 rows above it)
    sees activation column k row after row, its weight w[k][0] (loaded when the op starts) and
    the partial sums of rows 0..k-1, summed in order as the array does."""
    a = numerics.round_to_format(np.asarray(act, dtype=np.float32), "bf16")
    w = numerics.round_to_format(np.asarray(weight, dtype=np.float32), "bf16")
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] < 2:
        return
    k = a.shape[1] // 2
    partial = a[:, 0] * w[0, 0]
    for j in range(1, k):
        partial = (partial + a[:, j] * w[j, 0]).astype(np.float32)
    rows = a.shape[0]
    load = np.zeros(rows, dtype=np.uint64)
    load[0] = 1
    record.add("matrix_pe", w_load0=load, w_load1=np.zeros(rows, dtype=np.uint64),
               w_data=np.full(rows, _bits(w[k, 0])[0] >> 16, dtype=np.uint64), act_in=_bits(a[:, k]) >> 16,
               sel_in=np.zeros(rows, dtype=np.uint64), psum_in=_bits(partial))


@contextlib.contextmanager
def record_operands(limit: int = 4096) -> Iterator[OperandRecord]:
    """Record the vector and matrix operands of everything run inside the block."""
    record = OperandRecord(limit)
    saved_binary, saved_scalar, saved_unary = (dict(table) for table in (
        vector._BINARY_OPERATIONS, vector._SCALAR_OPERATIONS, vector._UNARY_OPERATIONS))
    saved_matmul = numerics.hw_matmul_accumulate

    def binary(unit: str, negate: bool, operation: Callable) -> Callable:
        def recorded(x, y):
            x32, y32 = np.broadcast_arrays(np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32))
            record.add(unit, a=_bits(x32), b=_bits(-y32 if negate else y32))
            return operation(x, y)
        return recorded

    def unary(unit: str, operation: Callable) -> Callable:
        def recorded(x):
            record.add(unit, a=_bits(x))
            return operation(x)
        return recorded

    def matmul(acc, act, weight):
        _matrix_pe_stream(record, act, weight)
        return saved_matmul(acc, act, weight)

    try:
        for table, saved, mapping in ((vector._BINARY_OPERATIONS, saved_binary, _BINARY),
                                      (vector._SCALAR_OPERATIONS, saved_scalar, _SCALAR)):
            for mnemonic, unit in mapping.items():
                if mnemonic in table:
                    table[mnemonic] = binary(unit, mnemonic.startswith("vsub"), saved[mnemonic])
        for mnemonic, unit in _UNARY.items():
            vector._UNARY_OPERATIONS[mnemonic] = unary(unit, saved_unary[mnemonic])
        numerics.hw_matmul_accumulate = matmul
        yield record
    finally:
        vector._BINARY_OPERATIONS.clear()
        vector._BINARY_OPERATIONS.update(saved_binary)
        vector._SCALAR_OPERATIONS.clear()
        vector._SCALAR_OPERATIONS.update(saved_scalar)
        vector._UNARY_OPERATIONS.clear()
        vector._UNARY_OPERATIONS.update(saved_unary)
        numerics.hw_matmul_accumulate = saved_matmul
