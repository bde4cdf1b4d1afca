"""SIP over WebSocket (RFC 7118, RFC 6455 framing) on captures the tests build.

Every frame below is encoded here from RFC 6455 section 5.2 (FIN, RSV, opcode,
7/16/64-bit length, client masking key), sent over a TCP connection on port
8080 (no SIP port: the engine must follow the connection because of its
upgrade), and the expected CDR values are the times the segments were written
at and the codes the responses carried. The last test checks that tshark
reads such a capture as the test wrote it, and that warpsniff agrees.
"""
from __future__ import annotations

import random
import struct
import zlib

import pytest

from warpsniff.replay import replay
from warpsniff.report import call_to_dict

from sipgen import Capture, Dialog, Msg, TcpConn, response, sdp, ts
from tracker_tap import replay_tapped

CLIENT = ("192.0.2.10", 50500)          # the browser
SERVER = ("198.51.100.20", 8080)        # the SIP WebSocket server
A_MEDIA = ("192.0.2.10", 4000)
B_MEDIA = ("198.51.100.20", 5000)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

UPGRADE_GET = (
    "GET /sip HTTP/1.1\r\n"
    "Host: ws.example.com:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "{extensions}"
    "Sec-WebSocket-Protocol: {protocol}\r\n"
    "\r\n"
)
SWITCHING = (
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "{extensions}"
    "Sec-WebSocket-Protocol: sip\r\n"
    "\r\n"
)


# --------------------------------------------------------------------------
# RFC 6455 section 5.2, written out


def ws_frame(payload: bytes, opcode: int = OP_TEXT, *, fin: bool = True, mask: bytes | None = None,
             rsv1: bool = False, rsv: int = 0) -> bytes:
    """One frame; `mask` (4 bytes) for a client frame. The length takes the
    shortest of the 7-, 16- and 64-bit forms, as section 5.2 requires."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n <= 125:
        head = struct.pack("!BB", b0, mbit | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


_keys = random.Random(7118)


def client_frame(payload: bytes, opcode: int = OP_TEXT, **kw) -> bytes:
    """A client frame: always masked, with a fresh key (section 5.3)."""
    return ws_frame(payload, opcode, mask=bytes(_keys.randrange(256) for _ in range(4)), **kw)


def server_frame(payload: bytes, opcode: int = OP_TEXT, **kw) -> bytes:
    return ws_frame(payload, opcode, **kw)


def length_form(frame: bytes) -> int:
    """7, 16 or 64: which length encoding the frame uses."""
    return {126: 16, 127: 64}.get(frame[1] & 0x7F, 7)


# --------------------------------------------------------------------------
# captures


class WsConn:
    """A TCP connection on which the client opened a SIP WebSocket."""

    def __init__(self, cap: Capture, *, protocol: str = "sip", extensions: str = "", accepted: str = "",
                 t: float = 0.0):
        self.conn = TcpConn(cap, CLIENT, SERVER)
        self.conn.handshake(t)
        ext = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        self.conn.send(t + 0.002, True, UPGRADE_GET.format(protocol=protocol, extensions=ext).encode())
        acc = f"Sec-WebSocket-Extensions: {accepted}\r\n" if accepted else ""
        self.conn.send(t + 0.003, False, SWITCHING.format(extensions=acc).encode())

    def up(self, t: float, data: bytes) -> None:
        """Client -> server bytes in one segment."""
        self.conn.send(t, True, data)

    def down(self, t: float, data: bytes) -> None:
        self.conn.send(t, False, data)


def dialog(call_id: str) -> Dialog:
    return Dialog(call_id, caller=CLIENT, callee=SERVER, transport="WS")


def ack(d: Dialog, to_tag: str) -> Msg:
    return d.request("ACK", 1, to_tag=to_tag)


def run(tmp_path, cap: Capture, name: str = "ws.pcap"):
    r = replay([str(cap.write(tmp_path / name))])
    assert r.errors == [], r.errors
    return r


def handed_to_tracker(path) -> list:
    """(time in us, Call-ID, CSeq, method or code) of every message warpsniff
    hands its call tracker, in order; a message its scanner refused appears
    as its status name."""
    seen = []

    def tap(h, ts_, src, dst):
        ok = h.status_name == "ok"
        seen.append((round(ts_ * 1e6), h.call_id, h.cseq, h.method if h.is_request else h.code) if ok
                    else h.status_name)

    replay_tapped(path, tap)
    return seen


def only_cdr(r) -> dict:
    assert len(r.calls) == 1, [c.call_id for c in r.calls]
    return call_to_dict(r.calls[0], r.streams_of(r.calls[0]))


def check(line: dict, **expected) -> None:
    bad = []
    for key, want in expected.items():
        got = line[key]
        ok = abs(got - want) <= 1e-3 if isinstance(want, float) and got is not None else got == want
        if not ok:
            bad.append(f"{key}: expected {want!r}, got {got!r}")
    assert not bad, "; ".join(bad)


def ws_counters(r) -> dict:
    return {k[len("tcp_websocket_"):]: v for k, v in r.sip.items() if k.startswith("tcp_websocket_")}


# --------------------------------------------------------------------------
# a whole call


def whole_call() -> Capture:
    """INVITE/100/180/200/ACK/BYE/200 over one WebSocket connection (seven
    messages, two upgraded directions), 40 RTP packets to the caller."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-call-1@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    invite_frame = client_frame(bytes(inv))
    assert length_form(invite_frame) == 16
    ws.up(0.100, invite_frame)
    ws.down(0.110, server_frame(bytes(response(inv, 100))))
    ws.down(0.350, server_frame(bytes(response(inv, 180, to_tag="srv"))))
    ws.down(1.500, server_frame(bytes(response(inv, 200, to_tag="srv", body=sdp(*B_MEDIA)))))
    ws.up(1.520, client_frame(bytes(ack(d, "srv"))))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x51, 1.6, 40)
    bye = d.request("BYE", 2, to_tag="srv")
    ws.up(6.000, client_frame(bytes(bye)))
    ws.down(6.020, server_frame(bytes(response(bye, 200))))
    return cap


def test_call_over_websocket_gives_the_cdr(tmp_path):
    """Masked client frames and unmasked server frames: PDD to the 180, the
    answer, the BYE and who sent it; the offer's SDP (inside a masked frame)
    binds the caller's media."""
    r = run(tmp_path, whole_call())
    line = only_cdr(r)
    check(line, call_id="ws-call-1@192.0.2.10", invite_ts=ts(0.100), pdd_ms=250.0, pdd_end="ringing",
          answer_ts=ts(1.500), end_ts=ts(6.000), duration_s=4.5, final_code=200, reason="normal",
          ended_by="caller", bye_code=200)
    assert [(s["dst"], s["packets"]) for s in line["streams"]] == [("192.0.2.10:4000", 40)]
    assert r.sip["requests"] == 3 and r.sip["responses"] == 4 and r.sip["parse_errors"] == 0
    assert ws_counters(r) == dict(upgrades=2, joined=0, not_sip=0, messages=7, control_frames=0, errors=0,
                                  oversize=0)


def test_websocket_counters_are_exported(tmp_path):
    from warpsniff.metrics.collector import SnifferCollector
    from warpsniff.pipeline import Pipeline
    from warpsniff.replay import EngineOptions

    pipeline = Pipeline(EngineOptions())
    pipeline.run_reader(str(whole_call().write(tmp_path / "ws.pcap")))
    pipeline.finish()
    family = next(f for f in SnifferCollector(pipeline).collect() if f.name == "warpsniff_websocket")
    got = {s.labels["event"]: s.value for s in family.samples if s.name == "warpsniff_websocket_total"}
    assert got == dict(upgrades=2, joined=0, not_sip=0, messages=7, control_frames=0, errors=0, oversize=0)


def test_websocket_messages_need_no_content_length(tmp_path):
    """RFC 7118: the WebSocket message delimits the SIP message, so a message
    without Content-Length is whole (over plain TCP it would wait for more)."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-no-cl@192.0.2.10")
    inv = d.invite(1)
    inv.content_length = None
    ws.up(0.100, client_frame(bytes(inv)))
    busy = response(inv, 486, to_tag="srv")
    busy.content_length = None
    ws.down(0.400, server_frame(bytes(busy)))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), final_code=486, reason="busy", end_ts=ts(0.400))


def test_sdp_behind_the_mask_binds_media_at_once(tmp_path):
    """A call to the browser: its answer's SDP travels in a masked frame, and
    the server's RTP to the address it names starts 1 ms later (long before
    the next capture second): that stream is the call's."""
    cap = Capture()
    ws = WsConn(cap)
    d = Dialog("ws-to-browser@198.51.100.20", caller=SERVER, callee=CLIENT, transport="WS")
    inv = d.invite(1, body=sdp(*B_MEDIA))
    ws.down(0.100, server_frame(bytes(inv)))
    ws.up(0.200, client_frame(bytes(response(inv, 180, to_tag="browser"))))
    ws.up(0.500, client_frame(bytes(response(inv, 200, to_tag="browser", body=sdp(*A_MEDIA)))))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0xB0, 0.501, 40)
    ws.down(0.520, server_frame(bytes(d.request("ACK", 1, to_tag="browser"))))
    r = run(tmp_path, cap)
    line = only_cdr(r)
    check(line, invite_ts=ts(0.100), pdd_ms=100.0, answer_ts=ts(0.500), final_code=200)
    assert [(s["dst"], s["packets"]) for s in line["streams"]] == [("192.0.2.10:4000", 40)]


# --------------------------------------------------------------------------
# framing


def test_fragmented_message_with_ping_and_pong_between_fragments(tmp_path):
    """An INVITE in a text frame without FIN plus continuation frames of at
    most 125 bytes (7-bit lengths), with a ping and a pong between fragments
    (section 5.4 allows control frames there), and a close at the end: one
    INVITE, complete at the segment of its last fragment."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-frag@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    raw = bytes(inv)
    pieces = [raw[i:i + 120] for i in range(0, len(raw), 120)]
    assert len(pieces) >= 4
    t = 0.100
    for i, piece in enumerate(pieces):
        opcode = OP_TEXT if i == 0 else OP_CONT
        frame = client_frame(piece, opcode, fin=i == len(pieces) - 1)
        assert length_form(frame) == 7
        ws.up(t, frame)
        if i == 1:
            ws.up(t + 0.001, client_frame(b"are you there", OP_PING))
            ws.down(t + 0.002, server_frame(b"are you there", OP_PONG))
        t += 0.010
    t_last = t - 0.010
    ws.down(0.700, server_frame(bytes(response(inv, 486, to_tag="srv"))))
    ws.up(0.800, client_frame(struct.pack("!H", 1000), OP_CLOSE))
    ws.down(0.801, server_frame(struct.pack("!H", 1000), OP_CLOSE))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(t_last), final_code=486, reason="busy", end_ts=ts(0.700))
    counters = ws_counters(r)
    assert counters["messages"] == 2 and counters["control_frames"] == 4 and counters["errors"] == 0


def test_frame_split_over_three_segments_and_two_frames_in_one(tmp_path):
    """An INVITE frame cut inside its extended length and inside its payload
    (three segments), then the 180 and the 200 as two frames in one segment."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-split@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    frame = client_frame(bytes(inv))
    cut1, cut2 = 3, len(frame) // 2            # 3: inside the 16-bit length
    ws.up(0.100, frame[:cut1])
    ws.up(0.105, frame[cut1:cut2])
    ws.up(0.110, frame[cut2:])                  # the INVITE is complete here
    two = (server_frame(bytes(response(inv, 180, to_tag="srv")))
           + server_frame(bytes(response(inv, 200, to_tag="srv", body=sdp(*B_MEDIA)))))
    ws.down(0.900, two)
    ws.up(0.920, client_frame(bytes(ack(d, "srv"))))
    bye = d.request("BYE", 2, from_callee=True, to_tag="srv")
    ws.down(3.000, server_frame(bytes(bye)))
    ws.up(3.010, client_frame(bytes(response(bye, 200))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.110), pdd_ms=790.0, pdd_end="ringing", answer_ts=ts(0.900),
          end_ts=ts(3.000), duration_s=2.1, ended_by="callee", bye_code=200, final_code=200)
    assert ws_counters(r)["messages"] == 6


def test_16_and_64_bit_lengths(tmp_path):
    """An INVITE of over 64 KiB (its SDP puts c=/m= after 70 KB of attributes)
    needs the 64-bit length; the binding it makes proves all of it was read."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-big@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA, pad_attrs=1100))
    big = client_frame(bytes(inv))
    assert len(inv.encode()) > 0xFFFF and length_form(big) == 64
    for i in range(0, len(big), 1400):          # MSS-sized segments
        ws.up(0.100 + i / 1400 * 0.0001, big[i:i + 1400])
    t_last = 0.100 + (len(big) - 1) // 1400 * 1400 / 1400 * 0.0001
    ok = server_frame(bytes(response(inv, 200, to_tag="srv", body=sdp(*B_MEDIA))))
    assert length_form(ok) == 16
    ws.down(0.500, ok)
    ws.up(0.510, client_frame(bytes(ack(d, "srv"))))
    cap.rtp_flow(B_MEDIA, A_MEDIA, 0x64, 0.6, 30)
    r = run(tmp_path, cap)
    line = only_cdr(r)
    check(line, invite_ts=ts(round(t_last, 6)), answer_ts=ts(0.500), final_code=200, pdd_end="answer")
    assert [(s["dst"], s["packets"]) for s in line["streams"]] == [("192.0.2.10:4000", 30)]


@pytest.mark.parametrize("seed", range(4))
def test_any_fragmentation_and_segmentation_gives_the_same_messages(tmp_path, seed):
    """Forty messages, each cut into 1-4 fragments with pings and pongs
    between some, the whole byte stream cut into segments at random places:
    every message comes out once, whole, in order."""
    rng = random.Random(seed)
    stream = b""
    sent = []
    for i in range(40):
        call_id = f"ws-prop-{seed}-{i}@192.0.2.10"
        msg = bytes(Msg("OPTIONS sip:srv@198.51.100.20 SIP/2.0", [
            ("Via", f"SIP/2.0/WS 192.0.2.10:50500;branch=z9hG4bK-{seed}-{i}"),
            ("From", f"<sip:alice@192.0.2.10>;tag={i}"), ("To", "<sip:srv@198.51.100.20>"),
            ("Call-ID", call_id), ("CSeq", f"{i + 1} OPTIONS"), ("Content-Type", "text/plain")],
            b"p" * rng.choice([0, 10, 1000, 70_000])))
        sent.append(call_id)
        cuts = sorted(rng.sample(range(1, len(msg)), rng.randrange(0, 4)))
        pieces = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
        for k, piece in enumerate(pieces):
            stream += client_frame(piece, OP_TEXT if k == 0 else OP_CONT, fin=k == len(pieces) - 1)
            if rng.random() < 0.3:
                stream += client_frame(b"k", rng.choice([OP_PING, OP_PONG]))
    cap = Capture()
    ws = WsConn(cap)
    t, pos = 0.1, 0
    while pos < len(stream):
        size = rng.choice([1, 2, 7, 100, 1400, 1400, 9000])
        ws.up(t, stream[pos:pos + size])
        pos += size
        t += 0.0001
    seen = handed_to_tracker(cap.write(tmp_path / "prop.pcap"))
    assert [m[1] if isinstance(m, tuple) else m for m in seen] == sent


def deflate_sync(z, data: bytes) -> bytes:
    """RFC 7692 section 7.2.1: a sync-flushed message without its 00 00 ff ff tail."""
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_final(data: bytes) -> bytes:
    """Section 7.2.3.3's other form: a whole DEFLATE stream (BFINAL set),
    then the empty stored block, less the same four octets."""
    z = zlib.compressobj(wbits=-15)
    return (z.compress(data) + z.flush(zlib.Z_FINISH) + b"\x00\x00\x00\xff\xff")[:-4]


def test_permessage_deflate(tmp_path):
    """RFC 7692: with permessage-deflate accepted by the 101, messages are
    compressed (RSV1 on their first frame). The client resets its window every
    message (client_no_context_takeover); the server keeps it, so its second
    sync-flushed message refers back into its first; a message ending its
    stream with BFINAL makes the next one start a new stream."""
    cap = Capture()
    ws = WsConn(cap, extensions="permessage-deflate; client_max_window_bits",
                accepted="permessage-deflate; client_no_context_takeover")
    server_z = zlib.compressobj(wbits=-15)
    d = dialog("ws-deflate@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    ws.up(0.100, client_frame(deflate_final(bytes(inv)), rsv1=True))
    ws.down(0.300, server_frame(deflate_final(bytes(response(inv, 180, to_tag="srv"))), rsv1=True))
    ok = bytes(response(inv, 200, to_tag="srv"))
    ws.down(0.900, server_frame(deflate_sync(server_z, ok), rsv1=True))
    ws.up(0.910, client_frame(deflate_sync(zlib.compressobj(wbits=-15), bytes(ack(d, "srv"))), rsv1=True))
    bye = d.request("BYE", 2, to_tag="srv")
    # two fragments: RSV1 on the first only
    packed = deflate_sync(zlib.compressobj(wbits=-15), bytes(bye))
    ws.up(4.000, client_frame(packed[:20], fin=False, rsv1=True) + client_frame(packed[20:], OP_CONT))
    bye_ok = bytes(response(bye, 200))
    second = deflate_sync(server_z, bye_ok)
    assert len(second) < len(deflate_final(bye_ok))        # it does use the kept window
    ws.down(4.020, server_frame(second, rsv1=True))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), pdd_ms=200.0, answer_ts=ts(0.900), end_ts=ts(4.000),
          duration_s=3.1, bye_code=200, final_code=200)
    assert ws_counters(r)["messages"] == 6 and ws_counters(r)["errors"] == 0


# --------------------------------------------------------------------------
# handshake, or none seen


def test_handshake_cut_by_a_segment_boundary_is_followed(tmp_path):
    """A browser's long GET (cookies) puts the subprotocol in a second segment:
    the first segment alone starts the tracking."""
    cap = Capture()
    conn = TcpConn(cap, CLIENT, SERVER)
    conn.handshake(0.0)
    head = UPGRADE_GET.format(protocol="sip", extensions="Cookie: " + "c" * 1500 + "\r\n").encode()
    cut = head.index(b"Cookie") + 100
    assert b"Sec-WebSocket-Protocol" not in head[:cut]
    conn.send(0.010, True, head[:cut])
    conn.send(0.011, True, head[cut:])
    conn.send(0.020, False, SWITCHING.format(extensions="").encode())
    d = dialog("ws-cookie@192.0.2.10")
    inv = d.invite(1)
    conn.send(0.100, True, client_frame(bytes(inv)))
    conn.send(0.300, False, server_frame(bytes(response(inv, 480, to_tag="srv"))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), final_code=480, reason="no_answer")


def test_websocket_without_the_sip_subprotocol_is_ignored(tmp_path):
    """A WebSocket that does not offer "sip" (a chat) is not followed, whether
    the engine can tell from the first segment or only Python from the whole
    head: none of its bytes reach the SIP scanner as junk."""
    cap = Capture()
    head = UPGRADE_GET.format(protocol="chat", extensions="").encode()
    chat = client_frame(b'{"say": "INVITE sip:bob@example.com SIP/2.0"}')
    # whole head in one segment: the engine does not follow the connection
    one = TcpConn(cap, CLIENT, SERVER)
    one.handshake(0.0)
    one.send(0.01, True, head)
    one.send(0.02, False, SWITCHING.format(extensions="").replace("sip", "chat").encode())
    one.send(0.03, True, chat)
    one.send(0.04, False, server_frame(b'{"ok": true}'))
    # head cut in two segments: the engine follows, Python reads the head and ignores it
    other = TcpConn(cap, (CLIENT[0], CLIENT[1] + 1), SERVER)
    other.handshake(1.0)
    cut = head.index(b"Sec-WebSocket-Key")    # after Upgrade: websocket, before the subprotocol
    other.send(1.01, True, head[:cut])
    other.send(1.011, True, head[cut:])
    other.send(1.02, False, SWITCHING.format(extensions="").replace("sip", "chat").encode())
    other.send(1.03, True, chat)
    other.send(1.04, False, server_frame(b'{"ok": true}'))
    r = run(tmp_path, cap)
    assert r.calls == [] and r.sip["messages"] == 0 and r.sip["parse_errors"] == 0
    assert ws_counters(r)["not_sip"] == 1 and ws_counters(r)["upgrades"] == 0


def test_connection_upgraded_before_the_capture_is_joined(tmp_path):
    """No SYN, no handshake: the capture starts inside a WebSocket for SIP, as
    when warpsniff starts while browsers are connected. Each direction is
    recognised by a first frame that holds a SIP message (masked: the client),
    and the call is complete."""
    cap = Capture()
    conn = TcpConn(cap, CLIENT, SERVER, isn_a=5_000_000, isn_b=9_000_000)   # mid-connection
    d = dialog("ws-joined@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA))
    conn.send(0.100, True, client_frame(bytes(inv)))
    conn.send(0.300, False, server_frame(bytes(response(inv, 180, to_tag="srv"))))
    conn.send(0.800, False, server_frame(bytes(response(inv, 200, to_tag="srv", body=sdp(*B_MEDIA)))))
    conn.send(0.810, True, client_frame(b"ping", OP_PING) + client_frame(bytes(ack(d, "srv"))))
    bye = d.request("BYE", 2, to_tag="srv")
    conn.send(2.000, True, client_frame(bytes(bye)))
    conn.send(2.010, False, server_frame(bytes(response(bye, 200))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), pdd_ms=200.0, answer_ts=ts(0.800), end_ts=ts(2.000),
          duration_s=1.2, final_code=200, ended_by="caller", bye_code=200)
    counters = ws_counters(r)
    assert counters["joined"] == 2 and counters["upgrades"] == 0 and counters["messages"] == 6
    assert r.sip["parse_errors"] == 0


def test_joined_connection_whose_other_direction_starts_inside_a_frame(tmp_path):
    """Joined mid-stream: the server's first captured bytes are the tail of a
    frame (its head was before the capture). Once the client's masked frame
    has shown the connection is WebSocket, the server's direction skips to its
    first frame that holds a SIP message, without a parse error."""
    cap = Capture()
    conn = TcpConn(cap, CLIENT, SERVER, isn_a=5_000_000, isn_b=9_000_000)
    d = dialog("ws-joined-2@192.0.2.10")
    inv = d.invite(1)
    conn.send(0.100, True, client_frame(bytes(inv)))
    earlier = server_frame(bytes(response(dialog("before@x").invite(1), 200, to_tag="old")))
    conn.send(0.150, False, earlier[len(earlier) // 2:])   # the tail of a frame sent before
    conn.send(0.300, False, server_frame(bytes(response(inv, 404, to_tag="srv"))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), final_code=404, end_ts=ts(0.300))
    assert ws_counters(r)["joined"] == 2 and r.sip["parse_errors"] == 0


# --------------------------------------------------------------------------
# what is not SIP over WebSocket


GARBAGE = {
    "rsv-bits": bytes([0xF1, 0x85]) + b"\x00" * 9,           # RSV2/RSV3 without an extension
    "reserved-opcode": bytes([0x83, 0x83]) + b"\x01\x02\x03\x04abc",
    "unmasked-client-frame": server_frame(b"INVITE sip:x SIP/2.0\r\n\r\n"),
    "orphan-continuation": client_frame(b"abc", OP_CONT),
    "long-ping": client_frame(b"p" * 126, OP_PING),
    "http-text": b"this is not a frame at all\r\n\r\n",
}


@pytest.mark.parametrize("together", [False, True], ids=["own-segment", "same-segment"])
@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_after_the_handshake_is_counted_and_skipped(tmp_path, kind, together):
    """A protocol error is counted once, and decoding resumes at the next
    frame that starts a SIP message, in the next segment or in the same one."""
    cap = Capture()
    ws = WsConn(cap)
    d = dialog(f"ws-after-{kind}@192.0.2.10")
    inv = d.invite(1)
    if together:
        ws.up(0.100, GARBAGE[kind] + client_frame(bytes(inv)))
    else:
        ws.up(0.050, GARBAGE[kind])
        ws.up(0.100, client_frame(bytes(inv)))
    ws.down(0.400, server_frame(bytes(response(inv, 603, to_tag="srv"))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(0.100), final_code=603, end_ts=ts(0.400))
    assert ws_counters(r)["errors"] == 1
    assert r.sip["parse_errors"] == 0


def test_random_bytes_never_crash(tmp_path):
    """Random segments after the handshake, in both directions: no crash,
    every problem counted as a WebSocket error or an oversized message."""
    rng = random.Random(6455)
    cap = Capture()
    ws = WsConn(cap)
    for i in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        (ws.up if i % 2 else ws.down)(0.1 + i * 0.001, data)
    r = run(tmp_path, cap)
    counters = ws_counters(r)
    assert counters["errors"] + counters["oversize"] >= 1
    assert r.calls == []


def test_oversized_message_is_skipped_without_buffering(tmp_path):
    """A message over the 128 KiB limit is counted and skipped frame by frame;
    the next message on the connection decodes."""
    cap = Capture()
    ws = WsConn(cap)
    huge = client_frame(b"INVITE sip:x SIP/2.0\r\n" + b"X" * 200_000)
    for i in range(0, len(huge), 1400):
        ws.up(0.1 + i / 1400 * 0.0001, huge[i:i + 1400])
    d = dialog("ws-after-huge@192.0.2.10")
    inv = d.invite(1)
    ws.up(1.000, client_frame(bytes(inv)))
    ws.down(1.200, server_frame(bytes(response(inv, 404, to_tag="srv"))))
    r = run(tmp_path, cap)
    check(only_cdr(r), invite_ts=ts(1.000), final_code=404)
    counters = ws_counters(r)
    assert counters["oversize"] == 1 and counters["errors"] == 0 and counters["messages"] == 2


def test_hole_in_the_stream_is_skipped_and_framing_resumes(tmp_path):
    """A segment that is never captured: after 5 s of capture time the hole is
    skipped (tcp_gaps_skipped), the message it cut is lost, and frames decode
    again from the segment after it."""
    cap = Capture()
    ws = WsConn(cap)
    lost = client_frame(bytes(dialog("ws-lost@192.0.2.10").invite(1, body=sdp(*A_MEDIA))))
    ws.up(0.100, lost[:200])
    ws.conn.reserve(True, lost[200:400])          # never captured
    ws.up(0.102, lost[400:])
    d = dialog("ws-after-hole@192.0.2.10")
    inv = d.invite(1)
    ws.up(6.000, client_frame(bytes(inv)))        # > 5 s after the hole opened
    ws.down(6.300, server_frame(bytes(response(inv, 486, to_tag="srv"))))
    r = run(tmp_path, cap)
    assert [c.call_id for c in r.calls] == ["ws-after-hole@192.0.2.10"]
    check(only_cdr(r), invite_ts=ts(6.000), final_code=486, reason="busy")
    assert r.sip["tcp_gaps_skipped"] == 1 and r.sip["parse_errors"] == 0


# --------------------------------------------------------------------------
# tshark reads the same messages


def test_tshark_decodes_the_same_messages(tmp_path):
    """One capture with every framing case above (fragments with a ping
    between them, a frame over three segments, two frames in one segment,
    16- and 64-bit lengths, a close): the SIP messages tshark dissects over
    WebSocket are exactly those warpsniff hands its call tracker, at the same
    times."""
    from oracle import tshark_sip_messages

    cap = Capture()
    ws = WsConn(cap)
    d = dialog("ws-tshark@192.0.2.10")
    inv = d.invite(1, body=sdp(*A_MEDIA, pad_attrs=1000))
    raw = client_frame(bytes(inv))
    assert length_form(raw) == 64
    cuts = [0, 3, 30_000, len(raw)]
    for i in range(3):
        ws.up(0.100 + i * 0.001, raw[cuts[i]:cuts[i + 1]])
    ringing = bytes(response(inv, 180, to_tag="srv"))
    ws.down(0.300, server_frame(ringing[:100], fin=False) + server_frame(b"ping", OP_PING)
            + server_frame(ringing[100:], OP_CONT))
    ws.down(0.900, server_frame(bytes(response(inv, 200, to_tag="srv", body=sdp(*B_MEDIA))))
            + server_frame(bytes(Msg("OPTIONS sip:alice@192.0.2.10 SIP/2.0", [
                ("Via", "SIP/2.0/WS 198.51.100.20:8080;branch=z9hG4bK-opt"), ("From", "<sip:srv@x>;tag=o"),
                ("To", "<sip:alice@192.0.2.10>"), ("Call-ID", "ws-options@x"), ("CSeq", "7 OPTIONS")]))))
    ws.up(0.910, client_frame(bytes(ack(d, "srv"))))
    bye = d.request("BYE", 2, to_tag="srv")
    ws.up(2.000, client_frame(bytes(bye)))
    ws.down(2.010, server_frame(bytes(response(bye, 200))) + server_frame(struct.pack("!H", 1000), OP_CLOSE))
    path = cap.write(tmp_path / "mixed.pcap")
    seen = handed_to_tracker(path)
    truth = tshark_sip_messages(path).messages
    assert len(truth) == 7 and all(":websocket:sip" in m.protocols for m in truth)
    want = sorted((round(m.ts_ns / 1000), m.call_id, m.cseq, m.method or m.code) for m in truth)
    assert sorted(seen) == want
