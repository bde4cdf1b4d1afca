"""What warpsniff's call tracker is handed: replays a capture with a tap on
CallTracker.message, so a test can compare the messages warpsniff parsed with
an oracle's, message by message."""
from __future__ import annotations

from typing import Callable

from warpsniff.replay import ReplayResult, replay
from warpsniff.sip import calls as calls_module


def replay_tapped(path, tap: Callable) -> ReplayResult:
    """Replays `path`; tap(headers, ts, src, dst) sees every message the tracker gets, in order."""
    original = calls_module.CallTracker.message

    def tapped(self, h, payload, ts, src, dst):
        tap(h, ts, src, dst)
        return original(self, h, payload, ts, src, dst)

    calls_module.CallTracker.message = tapped
    try:
        result = replay([str(path)])
    finally:
        calls_module.CallTracker.message = original
    assert result.errors == [], result.errors
    return result
