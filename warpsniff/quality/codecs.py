"""The codec table: names, static payload types and E-model impairments.

The facts live in codecs.json beside this file; a user's file with the same
shape overrides entries by name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DEFAULT_TABLE = Path(__file__).with_name("codecs.json")


@dataclass(frozen=True)
class Impairment:
    ie: float   # equipment impairment factor
    bpl: float  # packet-loss robustness factor


@dataclass(frozen=True)
class Codec:
    name: str
    clock: Optional[int]
    static_pt: Optional[int]
    plc: Optional[Impairment]
    no_plc: Optional[Impairment]


class CodecTable:
    def __init__(self, entries: dict):
        self.by_name: dict[str, Codec] = {}
        self.by_static_pt: dict[int, Codec] = {}
        for name, e in entries.items():
            if name.startswith("_"):
                continue
            codec = Codec(
                name=name,
                clock=e.get("clock"),
                static_pt=e.get("static_pt"),
                plc=Impairment(**e["plc"]) if "plc" in e else None,
                no_plc=Impairment(**e["no_plc"]) if "no_plc" in e else None,
            )
            self.by_name[name.lower()] = codec
            if codec.static_pt is not None:
                self.by_static_pt[codec.static_pt] = codec

    @classmethod
    def load(cls, override: Optional[str] = None) -> "CodecTable":
        entries = json.loads(DEFAULT_TABLE.read_text())
        if override:
            try:
                user = json.loads(Path(override).read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"{override}: cannot read codec table: {exc}") from None
            if not isinstance(user, dict):
                raise ValueError(f"{override}: codec table must be a JSON object")
            entries.update(user)
        return cls(entries)

    def lookup(self, payload_type: int, encoding: Optional[str] = None) -> Optional[Codec]:
        """By SDP encoding name when known, else by static payload type."""
        if encoding:
            codec = self.by_name.get(encoding.lower())
            if codec is not None:
                return codec
            return Codec(encoding, None, None, None, None)
        return self.by_static_pt.get(payload_type) if payload_type < 96 else None
