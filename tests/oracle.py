"""tshark as the independent oracle: runs it and parses what it prints.

Nothing here calls warpsniff; expected values in the tests come from these
functions, from formulas worked in the tests, or from captures the tests
built themselves.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_PCAPS = Path(__file__).resolve().parents[1].parent / "shared" / "pcaps" / "public"


def require_tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: run .ci/run (it installs it) or apt-get install tshark")
    return path


def require_shared_pcaps() -> Path:
    if not SHARED_PCAPS.is_dir():
        pytest.skip(f"third-party captures not present at {SHARED_PCAPS}")
    return SHARED_PCAPS


@dataclass(frozen=True)
class TsharkStream:
    src: str
    sport: int
    dst: str
    dport: int
    ssrc: int
    payload: str
    packets: int
    lost: int
    max_delta_ms: float
    mean_jitter_ms: float
    max_jitter_ms: float

    @property
    def key(self):
        return (self.src, self.sport, self.dst, self.dport, self.ssrc)


def tshark_rtp_streams(pcap: Path, decode_as: tuple = (), extra: tuple = ()) -> list[TsharkStream]:
    """Streams as `tshark -q -z rtp,streams` reports them (heuristic RTP on).
    `extra` holds further tshark options, e.g. ("--disable-protocol", "t38")."""
    cmd = [require_tshark(), "-n", "-q", "-o", "rtp.heuristic_rtp:TRUE", "-r", str(pcap), "-z", "rtp,streams",
           *extra]
    for rule in decode_as:
        cmd += ["-d", rule]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    streams = []
    in_table = False
    for line in out.splitlines():
        if "RTP Streams" in line:
            in_table = True
            continue
        if not in_table or line.startswith("=") or "Src IP addr" in line or not line.strip():
            continue
        tok = line.split()
        if tok[-1] == "X":
            tok = tok[:-1]
        max_j, mean_j, _min_j, max_d, _mean_d, _min_d = (float(x) for x in tok[-1:-7:-1])
        lost = int(tok[-8])
        packets = int(tok[-9])
        payload = " ".join(tok[7:-9])
        streams.append(TsharkStream(
            src=tok[2], sport=int(tok[3]), dst=tok[4], dport=int(tok[5]), ssrc=int(tok[6], 16),
            payload=payload, packets=packets, lost=lost, max_delta_ms=max_d,
            mean_jitter_ms=mean_j, max_jitter_ms=max_j,
        ))
    return streams


def tshark_fields(pcap: Path, display_filter: str, fields: list[str], extra: tuple = ()) -> list[list[str]]:
    cmd = [require_tshark(), "-n", "-r", str(pcap), "-Y", display_filter, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    return [line.split("\t") for line in out.splitlines()]


@dataclass(frozen=True)
class TsharkRtpPacket:
    """One RTP packet as tshark dissected it (fields of its innermost layers)."""
    frame: int
    arrival_ns: int          # frame.time_epoch, exact to the nanosecond
    protocols: str           # frame.protocols, e.g. "eth:ethertype:ip:udp:rtp"
    src: str
    sport: int
    dst: str
    dport: int
    ssrc: int
    seq: int
    timestamp: int
    payload_type: int
    marker: bool

    @property
    def key(self):
        return (self.src, self.sport, self.dst, self.dport, self.ssrc)


def epoch_to_ns(text: str) -> int:
    """'1429124637.528331000' -> integer nanoseconds, without float rounding."""
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


_RTP_PACKET_FIELDS = [
    "frame.number", "frame.time_epoch", "frame.protocols",
    "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
    "udp.srcport", "tcp.srcport", "udp.dstport", "tcp.dstport",
    "rtp.ssrc", "rtp.seq", "rtp.timestamp", "rtp.p_type", "rtp.marker",
]


def tshark_rtp_setup_call_ids(pcap: Path, decode_as: tuple = ()) -> dict:
    """(src, sport, dst, dport, ssrc) -> the Call-IDs of the SIP messages whose
    SDP tshark set the stream's conversation up from (`rtp.setup-frame`,
    method SDP) over the stream's packets (a later SDP naming the same
    address, another B2BUA leg's say, takes the conversation over), for every
    RTP stream tshark ties to one (heuristic RTP on)."""
    cmd = [require_tshark(), "-n", "-o", "rtp.heuristic_rtp:TRUE", "-r", str(pcap), "-Y", "rtp.setup-frame",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l"]
    for rule in decode_as:
        cmd += ["-d", rule]
    for f in ("ip.src", "ipv6.src", "udp.srcport", "ip.dst", "ipv6.dst", "udp.dstport", "rtp.ssrc",
              "rtp.setup-frame", "rtp.setup-method"):
        cmd += ["-e", f]
    setup: dict = {}
    for line in subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout.splitlines():
        ip_src, ip6_src, sport, ip_dst, ip6_dst, dport, ssrc, frame, method = line.split("\t")
        if method == "SDP" and ssrc:
            key = (ip_src or ip6_src, int(sport), ip_dst or ip6_dst, int(dport), int(ssrc, 16))
            setup.setdefault(key, set()).add(int(frame))
    call_ids = {int(frame): call_id for frame, call_id in
                tshark_fields(pcap, "sip", ["frame.number", "sip.Call-ID"], extra=_decode_as(decode_as))}
    return {key: frozenset(call_ids[f] for f in frames if call_ids.get(f)) for key, frames in setup.items()}


def _decode_as(rules: tuple) -> tuple:
    return tuple(arg for rule in rules for arg in ("-d", rule))


def tshark_rtp_packets(pcap: Path, decode_as: tuple = (), extra: tuple = ()) -> list[TsharkRtpPacket]:
    """Every frame tshark dissects as RTP (heuristic RTP on), in capture order.

    Addresses and ports come from the last (innermost) occurrence, the ones
    `-z rtp,streams` keys its streams by."""
    cmd = [require_tshark(), "-n", "-o", "rtp.heuristic_rtp:TRUE", "-r", str(pcap), "-Y", "rtp.ssrc",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=l", *extra]
    for rule in decode_as:
        cmd += ["-d", rule]
    for f in _RTP_PACKET_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    packets = []
    for line in out.splitlines():
        (frame, epoch, protocols, ip_src, ip6_src, ip_dst, ip6_dst,
         udp_sport, tcp_sport, udp_dport, tcp_dport, ssrc, seq, ts, pt, marker) = line.split("\t")
        packets.append(TsharkRtpPacket(
            frame=int(frame), arrival_ns=epoch_to_ns(epoch), protocols=protocols,
            src=ip_src or ip6_src, sport=int(udp_sport or tcp_sport),
            dst=ip_dst or ip6_dst, dport=int(udp_dport or tcp_dport),
            ssrc=int(ssrc, 16), seq=int(seq), timestamp=int(ts), payload_type=int(pt),
            marker=marker in ("1", "True"),
        ))
    return packets


@dataclass(frozen=True)
class SdpDescription:
    """The media part of one SDP body: where it asks to receive, and the
    dynamic payload types it maps (pt -> (encoding name, clock rate))."""
    frame: int
    arrival_ns: int
    endpoints: frozenset      # {(address, port)} from c= and m= lines
    rtpmap: dict


def tshark_sdp(pcap: Path) -> list[SdpDescription]:
    """Every SDP body tshark finds (over any transport), in capture order."""
    cmd = [require_tshark(), "-n", "-r", str(pcap), "-Y", "sdp", "-T", "fields",
           "-E", "separator=\t", "-E", "aggregator=|", "-E", "occurrence=a",
           "-e", "frame.number", "-e", "frame.time_epoch", "-e", "sdp.connection_info.address",
           "-e", "sdp.media.port", "-e", "sdp.media_attr"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    bodies = []
    for line in out.splitlines():
        frame, epoch, addresses, ports, attributes = line.split("\t")
        addresses = [a for a in addresses.split("|") if a and a != "$"]
        ports = [int(p) for p in ports.split("|") if p.isdigit() and int(p)]
        rtpmap = {}
        for attr in attributes.split("|"):
            if attr.startswith("rtpmap:"):
                pt, _, encoding = attr[len("rtpmap:"):].partition(" ")
                name, _, rest = encoding.partition("/")
                rate = rest.split("/")[0]
                if pt.isdigit() and rate.isdigit():
                    rtpmap[int(pt)] = (name, int(rate))
        bodies.append(SdpDescription(
            frame=int(frame), arrival_ns=epoch_to_ns(epoch),
            endpoints=frozenset((a, p) for a in addresses for p in ports), rtpmap=rtpmap,
        ))
    return bodies


# --------------------------------------------------------------------------
# SIP messages as tshark dissects them (one row per SIP message, not per frame)


@dataclass(frozen=True)
class TsharkSipMessage:
    """One SIP message as tshark dissected it (a frame can carry several)."""
    frame: int
    ts_ns: int               # frame.time_epoch, exact to the nanosecond
    protocols: str           # frame.protocols, e.g. "eth:ethertype:ip:udp:sip:sdp"
    call_id: str | None
    method: str | None       # requests
    code: int | None         # responses
    cseq: int | None
    cseq_method: str | None
    from_tag: str | None
    to_tag: str | None
    branch: str | None       # the top Via's branch
    session_expires: str | None
    header_text: str         # sip.msg_hdr: the header section as tshark decoded it
    malformed: bool          # tshark flagged the frame (_ws.malformed)
    sdp_media: frozenset = frozenset()   # {(address, port)} from the SDP body's c= and m= lines

    @property
    def is_request(self) -> bool:
        return self.method is not None


@dataclass(frozen=True)
class TsharkSipCapture:
    messages: list           # TsharkSipMessage, in capture order
    other_sip_port_udp: list  # (frame, ts_ns, payload bytes): UDP on a SIP port tshark did not take as SIP


def _first_value(tree, key):
    """The first value of `key` in tshark's JSON tree, depth first (document order)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                return v[0] if isinstance(v, list) else v
            found = _first_value(v, key)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for v in tree:
            found = _first_value(v, key)
            if found is not None:
                return found
    return None


def _all_values(tree, key) -> list:
    """Every value of `key` in tshark's JSON tree, in document order."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                out.extend(v if isinstance(v, list) else [v])
            else:
                out.extend(_all_values(v, key))
    elif isinstance(tree, list):
        for v in tree:
            out.extend(_all_values(v, key))
    return out


def _has_key(tree, key) -> bool:
    if isinstance(tree, dict):
        return key in tree or any(_has_key(v, key) for v in tree.values())
    if isinstance(tree, list):
        return any(_has_key(v, key) for v in tree)
    return False


def tshark_sip_messages(pcap: Path, decode_as: tuple = (), sip_ports: tuple = (5060,)) -> TsharkSipCapture:
    """Every SIP message tshark dissects (JSON output, so that each message's
    fields stay together even when one frame carries several), plus the UDP
    datagrams on a SIP port that tshark does not dissect as SIP."""
    import json

    port_filter = " || ".join(f"udp.port == {p}" for p in sip_ports)
    cmd = [require_tshark(), "-n", "-r", str(pcap), "-Y", f"sip || (({port_filter}) && !sip)",
           "-T", "json", "--no-duplicate-keys", "-J", "frame sip data"]
    for rule in decode_as:
        cmd += ["-d", rule]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    messages, others = [], []
    for packet in json.loads(out or "[]"):
        layers = packet["_source"]["layers"]
        frame = layers["frame"]
        number, ts_ns = int(frame["frame.number"]), epoch_to_ns(frame["frame.time_epoch"])
        sips = layers.get("sip")
        if sips is None:
            data = _first_value(layers.get("data", {}), "data.data") or ""
            others.append((number, ts_ns, bytes.fromhex(data.replace(":", ""))))
            continue
        malformed = _has_key(layers, "_ws.malformed")
        for sip in sips if isinstance(sips, list) else [sips]:
            code = _first_value(sip, "sip.Status-Code")
            cseq = _first_value(sip, "sip.CSeq.seq")
            messages.append(TsharkSipMessage(
                frame=number, ts_ns=ts_ns, protocols=frame["frame.protocols"],
                call_id=_first_value(sip, "sip.Call-ID"),
                method=_first_value(sip, "sip.Method"),
                code=int(code) if code is not None else None,
                cseq=int(cseq) if cseq is not None else None,
                cseq_method=_first_value(sip, "sip.CSeq.method"),
                from_tag=_first_value(sip, "sip.from.tag"),
                to_tag=_first_value(sip, "sip.to.tag"),
                branch=_first_value(sip, "sip.Via.branch"),
                session_expires=_first_value(sip, "sip.Session-Expires"),
                header_text=_first_value(sip, "sip.msg_hdr") or "",
                malformed=malformed,
                sdp_media=frozenset(
                    (a, int(p))
                    for a in _all_values(sip, "sdp.connection_info.address")
                    for p in _all_values(sip, "sdp.media.port") if str(p).isdigit() and int(p)),
            ))
    return TsharkSipCapture(messages, others)


def tshark_frame_times(pcap: Path) -> list[int]:
    """frame.time_epoch of every frame, in capture order (ns)."""
    cmd = [require_tshark(), "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.time_epoch"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    return [epoch_to_ns(line) for line in out.split()]
