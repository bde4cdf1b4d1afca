"""Calls from SIP dialogs: attempts, PDD, final codes, durations, media.

One `Call` per INVITE attempt (RFC 3261 sections 13-15 for the dialog
rules; the KPI definitions follow ../docs/calls.md). The tracker sees every
SIP message once, in capture order, and tells the engine which media
destinations belong to which call (SDP binding), so RTP statistics are per
call without any per-packet Python.

The state machine is native: `Call` and `CallTracker` are declared in
ext/sip/dialogs.pxd and implemented in ext/sip/dialogs.pyx (part of
warpsniff._engine), so SIP over UDP goes from the engine's signalling batch
through it without a Python object per message. This module holds what
configures and counts it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from warpsniff._engine import (  # noqa: F401  (the calls API, re-exported)
    CHALLENGES,
    KEYS_PER_GENERATION,
    MAX_FORKS,
    OTHER_TRANSACTIONS,
    PROVISIONAL_PDD,
    REASON_BY_CODE,
    RECENT_CALLS,
    TIMER_SLACK_S,
    UNSPECIFIED_V4,
    V4_MAPPED,
    Call,
    CallTracker,
    addr16,
    ip_text,
    termination_reason,
)


@dataclass
class CallConfig:
    invite_timeout: float = 32.0       # no response at all (RFC 3261 Timer B)
    ring_timeout: float = 180.0        # provisional but no final (Timer C)
    rtp_timeout: float = 60.0          # answered, no BYE, no RTP for this long
    sip_only_timeout: float = 3600.0   # answered, no BYE, and no RTP ever seen (a SIP-only tap)
    max_duration: float = 4 * 3600.0   # answered calls end after this regardless
    bye_linger: float = 32.0           # wait this long for the BYE's response
    max_calls: int = 100_000           # dialogs tracked at once; oldest evicted
    correlation_header: Optional[str] = None   # B2BUA legs sharing this header's value
    call_id_pattern: Optional[str] = None      # regex; group 1 = the leg-independent id
    nat_aliases: dict = field(default_factory=dict)  # SDP address -> address seen on the wire


@dataclass
class CallStats:
    messages: int = 0
    requests: int = 0
    responses: int = 0
    retransmissions: int = 0
    parse_errors: int = 0
    keepalives: int = 0
    evicted: int = 0
    orphan_responses: int = 0
    vq_reports: int = 0
    reinvites: int = 0
    sdp_truncated: int = 0   # SDP bodies with more m= lines/formats/rtpmaps than the native scan keeps
    by_method: dict = field(default_factory=dict)
