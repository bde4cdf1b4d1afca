"""Raw header values by name, for the few headers labels need on an initial
INVITE (the native scan covers the ones correlation needs)."""
from __future__ import annotations


def header_values(message: bytes, header_len: int, names: frozenset) -> dict:
    """lower-case name -> list of values, for the names asked (folded lines joined)."""
    found: dict = {}
    if not names:
        return found
    raw = message[:header_len]
    if raw.isascii():
        # most INVITEs carry none of the names: a byte search settles that
        # (only ASCII text lower-cases to an ASCII name; names are tokens)
        low = raw.lower()
        if not any(name.encode() in low for name in names):
            return found
    head = raw.decode("utf-8", "replace")
    current = None
    for line in head.split("\n")[1:]:
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t" and current is not None:
            found[current][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            current = None
            continue
        key = name.strip().lower()
        if key in names:
            found.setdefault(key, []).append(value.strip())
            current = key
        else:
            current = None
    return found
