"""Physical address -> (channel, rank, bank group, bank, row, column) mapping.

A scheme is written most-significant field first, Ramulator-style: "RoBaRaCoCh" means, from the
top bits down, Row, Bank, Rank, Column, Channel; the lowest bits are the byte offset inside one
burst and are dropped. Fields: Ro (row), Co (column, counted in bursts), Ch (channel),
Ra (rank), Bg (bank group) and Ba (bank). Without a separate Bg field, Ba holds the bank group
in its *low* bits, so consecutive bank numbers alternate bank groups (which lets back-to-back
accesses use the shorter tCCD_S / tRRD_S).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu.sim.dram.timing import DramOrganization

ROW_MAJOR = "RoBaRaCoCh"  # a whole row stays in one bank: best row-buffer locality
BANK_INTERLEAVED = "RoCoBaRaCh"  # consecutive bursts of a channel walk across banks and ranks
BANKGROUP_INTERLEAVED = "RoBaRaCoBgCh"  # consecutive bursts alternate bank groups, rows stay open

_FIELD_NAMES = ("Ro", "Co", "Ch", "Ra", "Bg", "Ba")


@dataclass(frozen=True)
class DecodedAddress:
    channel: int
    rank: int
    bankgroup: int
    bank: int  # bank inside its bank group
    row: int
    column: int


def _parse(scheme: str) -> list[str]:
    if len(scheme) % 2:
        raise ValueError(f"address mapping {scheme!r}: expected two-letter fields like 'RoBaRaCoCh'")
    fields = [scheme[i : i + 2] for i in range(0, len(scheme), 2)]
    for field in fields:
        if field not in _FIELD_NAMES:
            raise ValueError(
                f"address mapping {scheme!r}: unknown field {field!r}; fields are {_FIELD_NAMES}"
            )
    if len(set(fields)) != len(fields):
        raise ValueError(f"address mapping {scheme!r}: a field appears twice")
    missing = {"Ro", "Co", "Ch", "Ra", "Ba"} - set(fields)
    if missing:
        raise ValueError(f"address mapping {scheme!r}: missing fields {sorted(missing)}")
    return fields


class AddressMapping:
    """Decodes byte addresses for one organisation with one scheme (scalar or numpy arrays)."""

    def __init__(self, scheme: str, org: DramOrganization):
        self.scheme = scheme
        self.org = org
        fields = _parse(scheme)
        separate_bankgroup = "Bg" in fields
        sizes = {
            "Ro": org.rows,
            "Co": org.columns,
            "Ch": org.channels,
            "Ra": org.ranks,
            "Bg": org.bankgroups,
            "Ba": org.banks_per_group if separate_bankgroup else org.banks_per_rank,
        }
        self.separate_bankgroup = separate_bankgroup
        # (field, shift, mask) from the least significant field up.
        self.layout: list[tuple[str, int, int]] = []
        shift = (org.burst_bytes - 1).bit_length()
        for field in reversed(fields):
            size = sizes[field]
            self.layout.append((field, shift, size - 1))
            shift += (size - 1).bit_length()
        self.shifts = {field: (shift_, mask) for field, shift_, mask in self.layout}

    def _split_bank(self, fields: dict) -> tuple:
        if self.separate_bankgroup:
            return fields["Bg"], fields["Ba"]
        flat = fields["Ba"]
        return flat % self.org.bankgroups, flat // self.org.bankgroups

    def decode(self, addr: int) -> DecodedAddress:
        """Where byte `addr` lives. Raises ValueError outside [0, capacity)."""
        if not 0 <= addr < self.org.capacity_bytes:
            raise ValueError(
                f"address {addr:#x} is outside the {self.org.capacity_bytes:#x}-byte memory"
            )
        fields = {field: (addr >> shift) & mask for field, shift, mask in self.layout}
        bankgroup, bank = self._split_bank(fields)
        return DecodedAddress(
            fields["Ch"], fields["Ra"], bankgroup, bank, fields["Ro"], fields["Co"]
        )

    def decode_array(self, addrs: np.ndarray) -> dict[str, np.ndarray]:
        """Vectorised `decode`: a dict of int64 arrays channel/rank/bankgroup/bank/row/column."""
        addrs = np.asarray(addrs, dtype=np.int64)
        if addrs.size and (addrs.min() < 0 or addrs.max() >= self.org.capacity_bytes):
            raise ValueError(
                f"addresses must lie in [0, {self.org.capacity_bytes:#x}); got "
                f"[{int(addrs.min()):#x}, {int(addrs.max()):#x}]"
            )
        fields = {field: (addrs >> shift) & mask for field, shift, mask in self.layout}
        bankgroup, bank = self._split_bank(fields)
        return {
            "channel": fields["Ch"],
            "rank": fields["Ra"],
            "bankgroup": bankgroup,
            "bank": bank,
            "row": fields["Ro"],
            "column": fields["Co"],
        }
