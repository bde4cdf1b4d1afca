"""Raw header values by name, for the few headers labels need on an initial
INVITE (the native scan covers the ones correlation needs)."""
from __future__ import annotations


def header_values(message: bytes, header_len: int, names: frozenset) -> dict:
    """lower-case name -> list of values, for the names asked (folded lines joined)."""
    found: dict = {}
    if not names:
        return found
    head = message[:header_len].decode("utf-8", "replace")
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
