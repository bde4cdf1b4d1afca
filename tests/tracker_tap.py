"""What warpsniff's call tracker is handed: replays a capture with a tap on
the tracker (CallTracker.taps), so a test can compare the messages warpsniff
parsed with an oracle's, message by message."""
from __future__ import annotations

from typing import Callable

import warpsniff.pipeline as pipeline_module
from warpsniff.replay import ReplayResult, replay
from warpsniff.sip.calls import CallTracker


def replay_tapped(path, tap: Callable) -> ReplayResult:
    """Replays `path`; tap(headers, ts, src, dst) sees every message the tracker gets, in order."""

    class Tapped(CallTracker):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.taps.append(tap)

    original = pipeline_module.CallTracker
    pipeline_module.CallTracker = Tapped
    try:
        result = replay([str(path)])
    finally:
        pipeline_module.CallTracker = original
    assert result.errors == [], result.errors
    return result
