"""Kernel-side capture filters for `warpsniff live`, compiled by libpcap (when
it is installed) into classic BPF and attached to the ring's socket, so the
kernel drops what warpsniff would ignore before it costs a copy.

The default keeps SIP on the configured ports (any transport), every UDP
datagram (RTP/RTCP found by SDP or heuristics, SIP by content), IPv4 fragments
past the first (they carry no ports, so a port filter would lose them), all
IPv6, and the tunnels warpsniff decodes (GRE, IP-in-IP, VLAN-tagged frames).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional, Sequence

DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF


class BpfError(ValueError):
    """The filter cannot be compiled (or libpcap is missing)."""


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


def default_expression(sip_ports: Sequence[int]) -> str:
    sip = " or ".join(f"port {p}" for p in sip_ports)
    return (f"udp or (tcp and ({sip})) or (sctp and ({sip})) or (ip[6:2] & 0x1fff != 0) or ip6 "
            f"or ip proto 47 or ip proto 4 or ip proto 41 or vlan")


def _libpcap() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("pcap")
    return ctypes.CDLL(name) if name else None


def compile_filter(expression: str, snaplen: int = 65535) -> list:
    """expression -> [(code, jt, jf, k), ...] for an Ethernet interface."""
    lib = _libpcap()
    if lib is None:
        raise BpfError("capture filters need libpcap, which is not installed (Debian: libpcap0.8)")
    lib.pcap_compile_nopcap.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Program), ctypes.c_char_p,
                                        ctypes.c_int, ctypes.c_uint]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    prog = _Program()
    if lib.pcap_compile_nopcap(snaplen, DLT_EN10MB, ctypes.byref(prog), expression.encode(), 1,
                               PCAP_NETMASK_UNKNOWN) != 0:
        raise BpfError(f"cannot compile capture filter {expression!r}")
    try:
        return [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
                for i in range(prog.bf_len)]
    finally:
        lib.pcap_freecode(ctypes.byref(prog))
