"""The native SDP scan (ext/sip/ws_sdp.c, `_engine.scan_sdp`) behind parse_sdp().

Expected values come from the SDP text each test writes (RFC 4566/8866 forms),
and, for generated bodies, from parse_sdp_text(): sdp.py's Python parser,
unchanged, which the scan must reproduce exactly.
"""
from __future__ import annotations

import random

from warpsniff._engine import parse_sip, scan_sdp
from warpsniff.sip.calls import CallTracker
from warpsniff.sip.sdp import MediaDescription, SessionDescription, parse_sdp, parse_sdp_text


def scan(text) -> SessionDescription:
    """The native scan of an SDP text written with CRLF line ends."""
    body = text if isinstance(text, bytes) else ("\r\n".join(text) + "\r\n").encode()
    return scan_sdp(body, SessionDescription, MediaDescription)


HEAD = ["v=0", "o=alice 2890844526 2890844526 IN IP4 198.51.100.1", "s=-", "t=0 0"]


def test_session_and_media_connection():
    sdp = scan(HEAD[:3] + ["c=IN IP4 198.51.100.1/127", "t=0 0",
                           "m=audio 49170 RTP/AVP 0", "m=video 51372 RTP/AVP 99", "c=IN IP4 203.0.113.7"])
    assert sdp.connection == "198.51.100.1"            # the TTL after '/' is not part of the address
    audio, video = sdp.media
    assert audio.connection is None and video.connection == "203.0.113.7"
    assert (audio.kind, audio.port, audio.proto, audio.formats) == ("audio", 49170, "RTP/AVP", [0])
    assert (video.kind, video.port, video.formats) == ("video", 51372, [99])
    assert sdp.direction == "sendrecv" and audio.direction is None
    assert sdp.truncated == 0


def test_several_media_lines_rtpmap_and_dynamic_payload_types():
    sdp = scan(HEAD + ["c=IN IP4 192.0.2.10",
                       "m=audio 5004 RTP/AVP 0 8 96 101",
                       "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 opus/48000/2", "a=rtpmap:101 telephone-event/8000",
                       "a=fmtp:101 0-16", "a=ptime:20",
                       "m=image 5006 udptl t38",
                       "m=video 5008 RTP/SAVP 97 98", "a=rtpmap:97 H264/90000", "a=rtpmap:98 VP8/90000"])
    audio, image, video = sdp.media
    assert audio.formats == [0, 8, 96, 101]
    # channels after the clock are not part of it; 8 has no rtpmap line
    assert audio.rtpmap == {0: ("PCMU", 8000), 96: ("opus", 48000), 101: ("telephone-event", 8000)}
    assert audio.ptime == 20 and audio.is_rtp
    assert (image.proto, image.formats, image.is_rtp) == ("udptl", ["t38"], False)
    assert video.rtpmap == {97: ("H264", 90000), 98: ("VP8", 90000)} and video.ptime is None


def test_rtcp_attribute_with_and_without_address_and_rtcp_mux():
    sdp = scan(HEAD + ["c=IN IP4 192.0.2.10",
                       "m=audio 49170 RTP/AVP 0", "a=rtcp:53020",
                       "m=audio 49180 RTP/AVP 0", "a=rtcp:53021 IN IP4 126.16.64.4",
                       "m=audio 49190 RTP/AVP 0", "a=rtcp-mux"])
    a, b, c = sdp.media
    assert (a.rtcp_port, a.rtcp_mux) == (53020, False)
    assert (b.rtcp_port, b.rtcp_mux) == (53021, False)
    assert (c.rtcp_port, c.rtcp_mux) == (None, True)


def test_hold_by_direction_and_by_unspecified_address():
    by_direction = scan(HEAD + ["a=sendonly", "c=IN IP4 192.0.2.10", "m=audio 49170 RTP/AVP 0",
                                "m=audio 49172 RTP/AVP 0", "a=inactive", "m=audio 49174 RTP/AVP 0", "a=recvonly"])
    assert by_direction.direction == "sendonly"
    assert [m.direction for m in by_direction.media] == [None, "inactive", "recvonly"]
    assert [by_direction.media_direction(m) for m in by_direction.media] == ["sendonly", "inactive", "recvonly"]
    by_address = scan(HEAD + ["c=IN IP4 0.0.0.0", "m=audio 49170 RTP/AVP 0"])
    assert by_address.connection == "0.0.0.0" and by_address.direction == "sendrecv"


def test_ipv6_connection_is_normalised():
    sdp = scan(HEAD + ["c=IN IP6 2001:DB8:0:0:0:0:0:1", "m=audio 49170 RTP/AVP 0",
                       "m=audio 49172 RTP/AVP 0", "c=IN IP6 ::ffff:192.0.2.1",
                       "m=audio 49174 RTP/AVP 0", "c=IN IP6 192.0.2.1"])
    assert sdp.connection == "2001:db8::1"
    assert sdp.media[1].connection == "::ffff:192.0.2.1"
    assert sdp.media[2].connection is None      # an IPv4 address is not an IP6 address


def test_malformed_lines():
    sdp = scan(HEAD + ["c=IN IP4 192.0.2.300",      # not an address: the session has none
                       "garbage", "=", "m", "c=", "a=",
                       "m=audio RTP/AVP 0",           # two fields: not a media description
                       "a=rtpmap:0 PCMU/8000",        # so this has none to belong to
                       "m=audio x1 RTP/AVP 0",        # no port
                       "c=IN IP4 203.0.113.9",        # after a rejected m= line: session level
                       "m=audio 49170 RTP/AVP 0 abc 007",
                       "a=rtpmap:x PCMU/8000", "a=rtpmap:0 PCMU", "a=rtpmap:7 /8000", "a=rtpmap:8 PCMA/8k",
                       "a=ptime:twenty", "a=rtcp:", "a=rtcp:abc", "  a=rtcp-mux  "])
    assert sdp.connection == "203.0.113.9"
    (m,) = sdp.media
    assert m.formats == [0, "abc", 7]
    assert m.rtpmap == {7: ("", 8000)}
    assert (m.ptime, m.rtcp_port, m.rtcp_mux) == (None, None, True)
    assert scan(b"o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n") is None   # SDP starts with v=
    assert scan(b"") is None and scan(b"\r\n  \r\n") is None


def test_absurd_ports_and_numbers():
    sdp = scan(HEAD + ["m=audio 99999 RTP/AVP 0", "m=audio 0 RTP/AVP 0", "m=audio 5004/2 RTP/AVP 0"])
    assert [m.port for m in sdp.media] == [99999, 0, 5004]
    # forms only Python's int() reads are left to the Python parser, which reads them
    for text in ("m=audio +5004 RTP/AVP 0", "m=audio 50_04 RTP/AVP 0", "m=audio 123456789012 RTP/AVP 0",
                 "m=audio 5004 RTP/AVP 0 1234567890123"):
        assert scan(HEAD + [text]) is False
    assert parse_sdp(("\r\n".join(HEAD + ["m=audio 123456789012 RTP/AVP 0"])).encode()).media[0].port == 123456789012
    assert parse_sdp(("\r\n".join(HEAD + ["m=audio +5004 RTP/AVP 0"])).encode()).media[0].port == 5004


def test_non_ascii_and_control_bytes_go_to_the_python_parser():
    body = ("\r\n".join(HEAD + ["s=caf\u00e9", "c=IN IP4 192.0.2.1", "m=audio 49170 RTP/AVP 0"]) + "\r\n").encode()
    assert scan(body) is False
    assert parse_sdp(body).connection == "192.0.2.1" and parse_sdp(body).media[0].port == 49170
    assert scan(b"v=0\r\nc=IN IP4 192.0.2.1\x0bm=audio 1 RTP/AVP 0\r\n") is False   # \v breaks lines in Python
    # a NUL inside the address: no address (the Python parser used to raise ValueError here)
    assert parse_sdp(b"v=0\r\nc=IN IP4 192.0.2.1\x00\r\nm=audio 1 RTP/AVP 0\r\n").connection is None


def test_huge_body_is_bounded_and_counted():
    lines = HEAD + ["c=IN IP4 192.0.2.1"]
    for i in range(5000):
        lines += [f"m=audio {1000 + i} RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000", "c=IN IP4 192.0.2.2"]
    body = ("\r\n".join(lines) + "\r\n").encode()
    assert len(body) > 100_000
    sdp = scan(body)
    assert len(sdp.media) == 32                       # WS_SDP_MAX_MEDIA
    assert sdp.truncated == 5000 - 32
    assert [m.port for m in sdp.media] == list(range(1000, 1032))
    assert all(m.connection == "192.0.2.2" and m.rtpmap == {0: ("PCMU", 8000)} for m in sdp.media)
    # the session's own lines are unaffected by the media left out
    assert sdp.connection == "192.0.2.1"
    many_formats = scan(HEAD + ["m=audio 1 RTP/AVP " + " ".join(str(i % 128) for i in range(300))])
    assert many_formats.media[0].formats == [i % 128 for i in range(256)] and many_formats.truncated == 44
    garbage = scan(b"v=0\r\n" + b"a=rtpmap:0 PCMU/8000 x\r\n" * 40000)
    assert garbage.media == [] and garbage.truncated == 0


class _Engine:
    """Records bindings instead of keeping RTP state."""

    def __init__(self):
        self.bound = []

    def bind(self, a16, port, call_ref, pts, since_ns=0):
        self.bound.append(port)
        return True

    def unbind(self, *args):
        pass


def _invite(body: bytes) -> bytes:
    head = ("INVITE sip:bob@example.com SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
            "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
            "Call-ID: c1@example.com\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def test_tracker_binds_kept_media_and_counts_truncated_bodies():
    lines = HEAD + ["c=IN IP4 192.0.2.1"] + [f"m=audio {2000 + 2 * i} RTP/AVP 0" for i in range(40)]
    msg = _invite(("\r\n".join(lines) + "\r\n").encode())
    engine = _Engine()
    tracker = CallTracker(engine)
    tracker.message(parse_sip(msg), msg, 1.0, (bytes(16), 5060), (bytes(16), 5060))
    assert engine.bound == [2000 + 2 * i for i in range(32)]
    assert tracker.stats.sdp_truncated == 1


# -- agreement with the Python parser on generated bodies -------------------

_C_VALUES = ["IN IP4 192.0.2.1", "IN IP4 192.0.2.1/127", "IN IP4 192.0.2.1/127/3", "IN IP4 0.0.0.0",
             "IN IP4 01.2.3.4", "IN IP4 256.1.1.1", "IN IP4 1.2.3", "IN IP4 1.2.3.4.5", "IN IP6 2001:db8::1",
             "IN IP6 2001:DB8:0:0:0:0:0:1", "IN IP6 ::ffff:1.2.3.4", "IN IP6 ::1/64", "IN IP6 1.2.3.4",
             "IN FOO 1.2.3.4", "OUT IP4 1.2.3.4", "IN IP4", "IN  IP4\t10.0.0.1 ", "in ip4 1.2.3.4",
             "IN IP6 ::", "IN IP6 fe80::1%eth0", "IN IP4 " + "1" * 70, ""]
_M_VALUES = ["audio 49170 RTP/AVP 0 8 97", "video 0 RTP/AVP 31", "audio 49170/2 RTP/AVP 0", "audio abc RTP/AVP 0",
             "audio RTP/AVP", "image 49172 udptl t38", "audio 99999 RTP/SAVP 0", "audio +5 RTP/AVP 0",
             "audio 1_0 RTP/AVP", "audio -1 RTP/AVP 0", "audio 5 RTP/AVP 0 abc 007 08", "audio /5 RTP/AVP 0",
             "audio 12345678901 RTP/AVP 0", "audio\t7078 RTP/AVP\t0  101", "application 9 TCP/DTLS/SCTP webrtc",
             "audio 5 rtp/avp 0", "audio 5 RTP/AVP", "audio 0x10 RTP/AVP 0", "audio 5 RTP/AVP 1234567890"]
_A_VALUES = ["rtpmap:0 PCMU/8000", "rtpmap:97 opus/48000/2", "rtpmap:97  opus/48000", "rtpmap:97 opus /48000",
             "rtpmap:97\topus/48000", "rtpmap:x PCMU/8000", "rtpmap:0 PCMU", "rtpmap:0 PCMU/", "rtpmap:0 /8000",
             "rtpmap:8 PCMA/8000 ", "rtpmap:", "rtpmap", "rtpmap:0 PCMU/8000/1/2", "rtpmap:0 PCMU/80x0",
             "rtpmap:101 telephone-event/8000", "rtpmap:13 CN/8000", "rtpmap:0 PC MU/8000", "rtpmap: 0 PCMU/8000",
             "rtpmap:0 PCMU/12345678901", "ptime:20", "ptime: 20 ", "ptime:x", "ptime:", "ptime:20.5",
             "rtcp:53020", "rtcp:53020 IN IP4 126.16.64.4", "rtcp:", "rtcp: 5", "rtcp:x", "rtcp-mux",
             "rtcp-mux:1", "rtcp-muxx", "sendrecv", "sendonly", "recvonly", "inactive", "sendonly:1", "SENDONLY",
             "fmtp:101 0-16", "", "x", "maxptime:40"]
_OTHER_LINES = ["o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0", "b=AS:64", "", " ", "garbage", "=x", "m", "c=",
                "a", "k=prompt", "z=0 0", "M=audio 1 RTP/AVP 0", "i=m=audio"]
_BREAKS = ["\r\n", "\r\n", "\r\n", "\n", "\r", "\n\r", "\r\n\r\n"]
# bytes the scan leaves to Python, and a few it must treat as text
_NOISE = ["\x0b", "\x0c", "\x00", "\x1c", "\x85", "\u00e9", "\u2028", "\x7f", "~", "/", ":", " ", "\t", "9"]


def _line(rng: random.Random) -> str:
    pad = lambda: rng.choice(["", "", "", " ", "\t", "  "])  # noqa: E731
    kind = rng.random()
    if kind < 0.15:
        return pad() + "c=" + rng.choice(_C_VALUES) + pad()
    if kind < 0.3:
        return pad() + "m=" + rng.choice(_M_VALUES) + pad()
    if kind < 0.8:
        return pad() + "a=" + rng.choice(_A_VALUES) + pad()
    return rng.choice(_OTHER_LINES)


def _body(rng: random.Random) -> bytes:
    start = rng.choice(["v=0", "v=0", "v=0", "  v=0", "\r\nv=0", "v=1", "x=0", "v"])
    parts = [start]
    for _ in range(rng.randrange(0, 30)):
        parts.append(rng.choice(_BREAKS))
        parts.append(_line(rng))
    text = "".join(parts)
    if rng.random() < 0.2:   # a byte of noise somewhere
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice(_NOISE) + text[at:]
    return text.encode("utf-8")


def test_native_scan_agrees_with_the_python_parser():
    rng = random.Random(20261127)
    native = 0
    for i in range(20000):
        body = _body(rng)
        want = parse_sdp_text(body)
        got = scan_sdp(body, SessionDescription, MediaDescription)
        if got is False:
            assert parse_sdp(body) == want, body
            continue
        native += 1
        assert got == want, body
        if got is not None:
            # same dataclasses, same field values and types (bool stays bool, ints stay ints)
            assert repr(got) == repr(want), body
            assert all(type(m) is MediaDescription for m in got.media)
    assert native > 10000   # most bodies take the native path (the vocabulary holds many it leaves alone)


def test_generated_bodies_through_parse_sdp():
    rng = random.Random(7)
    for _ in range(3000):
        body = _body(rng)
        assert parse_sdp(body) == parse_sdp_text(body), body
