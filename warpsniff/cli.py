"""The `warpsniff` command.

Exit codes: 0 success, 2 bad input or usage (one line saying what and where),
1 internal error.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Optional, Sequence

# warpsniff does no linear algebra, but numpy's OpenBLAS starts a thread per
# CPU at import that spins for a while: about 0.1 s of CPU per run, more than
# replaying the bundled sample takes. Set before numpy is first imported (the
# command imports it lazily); a value of the user's own is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2


class UsageError(Exception):
    """Bad arguments or input: reported on one line, exit 2."""


def _port_range(text: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition("-")
        lo_i, hi_i = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port range: {text!r} (expected LOW-HIGH)")
    if not (0 <= lo_i <= 65535 and 0 <= hi_i <= 65535):
        raise argparse.ArgumentTypeError(f"port range {text!r} outside 0-65535")
    if lo_i > hi_i:
        raise argparse.ArgumentTypeError(f"port range {text!r} runs backwards (LOW-HIGH)")
    return lo_i, hi_i


def _bounded(kind, lo: float, hi: float):
    """An argparse type: a finite number of `kind` within [lo, hi]."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}")
        if not lo <= value <= hi:  # also refuses nan; inf only where hi is inf
            raise argparse.ArgumentTypeError(f"{text} outside {lo:g}-{hi:g}")
        return value
    return parse


def _port_list(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port list: {text!r}")
    if not ports or any(not 0 < p <= 65535 for p in ports):
        raise argparse.ArgumentTypeError(f"ports must be 1-65535: {text!r}")
    return ports


def _nat_alias(text: str) -> tuple[str, str]:
    """SDP_ADDR=WIRE_ADDR: media an SDP announces at SDP_ADDR (a private
    address behind a NAT) arrives at WIRE_ADDR. The SDP side is kept as the
    SDP scan prints an address, so any way of writing it matches."""
    from warpsniff.sip.calls import addr16, ip_text

    sdp_addr, sep, wire_addr = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected SDP_ADDR=WIRE_ADDR, got {text!r}")
    try:
        return ip_text(addr16(sdp_addr.strip())), ip_text(addr16(wire_addr.strip()))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}")


def _call_id_pattern(text: str) -> str:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {text!r} ({exc})")
    if pattern.groups < 1:
        raise argparse.ArgumentTypeError(f"{text!r} has no group: group 1 must capture the id the legs share")
    return text


def _payload_type(text: str) -> tuple[int, int, str]:
    # 96=16000 or 96=16000/audio
    try:
        pt, _, rest = text.partition("=")
        clock, _, kind = rest.partition("/")
        value = (int(pt), int(clock), kind or "audio")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PT=CLOCK[/KIND], got {text!r}")
    if not 0 <= value[0] < 128 or value[2] not in ("audio", "video", "cn", "event", "unknown"):
        raise argparse.ArgumentTypeError(f"bad payload type mapping {text!r}")
    if not 1 <= value[1] <= 10_000_000:
        raise argparse.ArgumentTypeError(f"clock rate in {text!r} outside 1-10000000 Hz")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (exit 2), as every other bad input."""

    def error(self, message):
        self.exit(EXIT_INPUT, f"{self.prog}: {message} (see --help)\n")


def _add_analysis_options(p) -> None:
    """What replay and live share: engine, calls, quality and labels."""
    p.add_argument("--correlation-header", metavar="NAME",
                    help="header linking B2BUA legs of one call, e.g. X-CID")
    p.add_argument("--call-id-pattern", type=_call_id_pattern, metavar="REGEX",
                    help="links B2BUA legs whose Call-IDs share what group 1 of REGEX captures (searched in each "
                         "Call-ID), e.g. '^([^-]+)-leg'; --correlation-header wins where both apply")
    p.add_argument("--nat-alias", type=_nat_alias, action="append", default=[], metavar="SDP_ADDR=WIRE_ADDR",
                    help="media an SDP announces at SDP_ADDR arrives at WIRE_ADDR (a NAT's public address): "
                         "bind it there too (repeatable)")
    p.add_argument("--rtp-timeout", type=_bounded(float, 0.001, 1e7), default=60.0,
                    help="seconds without RTP or SIP after which an answered call without BYE ends (default 60)")
    p.add_argument("--max-call-duration", type=_bounded(float, 0.001, 1e9), default=14400.0,
                    help="answered calls end after this many seconds (default 14400)")
    p.add_argument("--max-calls", type=_bounded(int, 1, 50_000_000), default=100_000,
                    help="calls tracked at once; the oldest is evicted beyond this (default 100000)")
    p.add_argument("--sip-ports", type=_port_list, default=(5060,), metavar="P[,P...]",
                    help="UDP/TCP ports always treated as SIP (default 5060); SIP is also found by content")
    p.add_argument("--rtp-ports", type=_port_range, default=(1024, 65535), metavar="LOW-HIGH",
                    help="UDP ports considered for RTP/RTCP detection (default 1024-65535)")
    p.add_argument("--payload-type", type=_payload_type, action="append", default=[], metavar="PT=CLOCK[/KIND]",
                    help="clock rate of a dynamic payload type, e.g. 101=8000/event (repeatable)")
    p.add_argument("--max-streams", type=_bounded(int, 1, 50_000_000), default=200_000, help="RTP stream table size (default 200000)")
    p.add_argument("--idle-timeout", type=_bounded(float, 0, 1e7), default=300.0,
                    help="seconds of capture time after which a silent stream ends (default 300)")
    p.add_argument("--codec-table", metavar="FILE",
                    help="JSON file overriding codec impairments (Ie, Bpl) by codec name")
    p.add_argument("--quality-interval", type=_bounded(float, 1, 3600), default=10.0, metavar="SECONDS",
                    help="interval of the live MOS shown for calls still up (default 10)")
    p.add_argument("--no-plc", action="store_true",
                    help="score G.711 without packet-loss concealment (Bpl 4.3 instead of 25.1)")
    p.add_argument("--config", metavar="FILE", help="label configuration (YAML, see docs/labels.md)")


def _add_serving_options(p, listen_default=None) -> None:
    p.add_argument("--listen", metavar="[HOST]:PORT",
                    default=listen_default,
                   help="serve /metrics and /healthz (warpsniff's port is 10780)")
    p.add_argument("--basic-auth", metavar="USER:PASSWORD", help="require HTTP basic auth on the exporter")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (with --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")


def _add_write_pcap_options(p, live: bool) -> None:
    """--write-pcap: one pcap per call that ended badly (docs/write-pcap.md)."""
    p.add_argument("--write-pcap", metavar="DIR",
                   help="write a pcap of every call that ended badly (final code in --write-pcap-codes, "
                        "or MOS below --write-pcap-mos) to DIR")
    p.add_argument("--write-pcap-codes", default="5xx", metavar="CODES",
                   help="final codes that make a call bad: classes and codes, e.g. 5xx,6xx,408 (default 5xx)")
    p.add_argument("--write-pcap-mos", type=_bounded(float, 0, 5), default=3.1, metavar="MOS",
                   help="calls whose MOS (worse direction) is below this are bad; 0 turns it off (default 3.1)")
    p.add_argument("--write-pcap-max-mb", type=_bounded(int, 1, 1 << 30), default=1024, metavar="MB",
                   help="DIR holds at most this much of our files; the oldest are removed (default 1024)")
    p.add_argument("--write-pcap-margin", type=_bounded(float, 0, 3600), default=5.0, metavar="SECONDS",
                   help="frames this long before the INVITE and after the call's end go too (default 5)")
    if live:
        p.add_argument("--spool-dir", metavar="DIR",
                       help="rolling spool of captured frames for --write-pcap (default DIR/.spool; "
                            "its spool-*.pcap files of an earlier run are removed at start)")
        p.add_argument("--spool-mb", type=_bounded(int, 2, 1 << 30), default=2048, metavar="MB",
                       help="spool size cap, all capture threads together (default 2048)")
        p.add_argument("--spool-segment-mb", type=_bounded(int, 1, 1 << 20), default=64, metavar="MB",
                       help="spool segment size (default 64)")


def _bad_call_writer(args, live: bool):
    """The --write-pcap writer, or None; bad values are usage errors."""
    if not args.write_pcap:
        return None
    from warpsniff.badcalls import BadCallWriter

    if not live and "-" in args.files:
        raise UsageError("--write-pcap reads the capture files twice: it cannot take standard input ('-')")
    try:
        return BadCallWriter(args.write_pcap, codes=args.write_pcap_codes, mos_below=args.write_pcap_mos,
                             max_bytes=args.write_pcap_max_mb << 20, margin_s=args.write_pcap_margin)
    except ValueError as exc:
        raise UsageError(f"--write-pcap-codes: {exc}")
    except OSError as exc:
        raise UsageError(f"--write-pcap {args.write_pcap}: {exc.strerror or exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="warpsniff", description="SIP/RTP analyzer")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    rp = sub.add_parser("replay", help="analyse pcap/pcapng files")
    rp.add_argument("files", nargs="+", metavar="FILE", help="capture files ('-' for stdin)")
    rp.add_argument("--streams-json", metavar="PATH", help="write RTP streams as a JSON array ('-' for stdout)")
    rp.add_argument("--streams-only", action="store_true",
                    help="RTP/RTCP stream statistics only, as tshark -z rtp,streams: SIP is not looked for,"
                         " so no calls, no --cdr (the fastest pass over a big capture)")
    rp.add_argument("--cdr", metavar="PATH", help="write one JSON line per call attempt ('-' for stdout)")
    _add_analysis_options(rp)
    _add_serving_options(rp)
    rp.add_argument("--speed", type=_bounded(float, 1e-6, 1e9), metavar="X",
                    help="pace by capture time, X times real time (default: as fast as possible)")
    rp.add_argument("--keep-serving", action="store_true",
                    help="with --listen: keep serving the final state after the input ends (until Ctrl-C);"
                         " calls still up at the end stay active and are left out of --cdr")
    rp.add_argument("--push-gateway", metavar="URL", help="also push the metrics to a Pushgateway at the end")
    rp.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    _add_write_pcap_options(rp, live=False)

    lp = sub.add_parser("live", help="capture from a network interface (span port) and serve /metrics")
    lp.add_argument("-i", "--interface", action="append", required=True, metavar="IFACE",
                    help="interface to capture on (needs CAP_NET_RAW; CAP_NET_ADMIN for promiscuous mode);"
                         " repeat for several span ports")
    lp.add_argument("--workers", type=_bounded(int, 1, 64), default=1, metavar="N",
                    help="capture threads per interface, sharing its traffic by flow (PACKET_FANOUT);"
                         " default 1, the fast path")
    lp.add_argument("--cdr", metavar="PATH", help="append one JSON line per call as it ends (flushed per call)")
    lp.add_argument("--no-promisc", action="store_true", help="do not put the interface in promiscuous mode")
    lp.add_argument("--filter", metavar="EXPR",
                    help="kernel capture filter (libpcap syntax; default keeps SIP ports, all UDP, "
                         "fragments, IPv6 and tunnels; 'none' keeps everything)")
    lp.add_argument("--ring-block-size", type=_bounded(int, 4096, 1 << 30), default=1 << 20, metavar="BYTES",
                    help="TPACKET_V3 block size, a power of two (default 1 MiB)")
    lp.add_argument("--ring-timeout-ms", type=_bounded(int, 1, 10_000), default=50, metavar="MS",
                    help="hand a partly filled ring block over after this long (default 50 ms): the"
                         " longest a quiet link delays a packet")
    lp.add_argument("--ring-blocks", type=_bounded(int, 2, 65536), default=64, metavar="N",
                    help="blocks in the ring (default 64: 64 MiB)")
    _add_analysis_options(lp)
    _add_serving_options(lp, listen_default=":10780")
    _add_write_pcap_options(lp, live=True)
    return parser


def _open_output(path: str):
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}")


def _relay(label_config):
    """rtpengine / Kamailio watching (warpsniff/relay) when the config lists instances, else None."""
    if not (label_config.rtpengine or label_config.kamailio):
        return None
    from warpsniff.relay import ConfigError, Relay

    try:
        return Relay.from_config(label_config)
    except ConfigError as exc:
        raise UsageError(str(exc))


def _serve(args, pipeline, relay=None):
    """The exporter for --listen, started before the work so scrapes see it run."""
    from warpsniff.exporter import Exporter, registry_for

    if not args.listen:
        return None, None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    registry = registry_for(pipeline, relay=relay)
    try:
        exporter = Exporter(registry, args.listen, args.basic_auth, args.tls_cert, args.tls_key).start()
    except ValueError as exc:
        raise UsageError(str(exc))
    except OSError as exc:
        raise UsageError(f"--listen {args.listen}: {exc.strerror or exc}")
    host = args.listen.rpartition(":")[0] or "0.0.0.0"
    print(f"warpsniff: serving /metrics on {host}:{exporter.port}", file=sys.stderr)
    if relay is not None:
        relay.start()  # rtpengine pollers run with the exporter
    return exporter, registry


def _build_pipeline(args, keep_calls: bool, on_call=None, worker_names=()):
    """Engine options, call rules, labels, codecs and relay pollers from the
    arguments both commands share; bad values are usage errors."""
    from warpsniff.labels import ConfigError, LabelConfig
    from warpsniff.pipeline import Pipeline
    from warpsniff.quality.codecs import CodecTable
    from warpsniff.replay import EngineOptions
    from warpsniff.sip.calls import CallConfig

    if args.max_streams < 1:
        raise UsageError(f"--max-streams must be positive, got {args.max_streams}")
    options = EngineOptions(
        max_streams=args.max_streams,
        sip_ports=args.sip_ports,
        rtp_port_range=args.rtp_ports,
        idle_timeout=args.idle_timeout,
        payload_types={pt: (clock, kind) for pt, clock, kind in args.payload_type},
        signalling=not getattr(args, "streams_only", False),
    )
    try:
        codecs = CodecTable.load(args.codec_table)
    except ValueError as exc:
        raise UsageError(str(exc))
    if args.max_calls < 1:
        raise UsageError(f"--max-calls must be positive, got {args.max_calls}")
    call_config = CallConfig(
        rtp_timeout=args.rtp_timeout,
        max_duration=args.max_call_duration,
        max_calls=args.max_calls,
        correlation_header=args.correlation_header,
        call_id_pattern=args.call_id_pattern,
        nat_aliases=dict(args.nat_alias),
    )
    try:
        label_config = LabelConfig.load(args.config) if args.config else LabelConfig.default()
    except ConfigError as exc:
        raise UsageError(str(exc))
    except OSError as exc:
        raise UsageError(f"{args.config}: {exc.strerror}")
    relay = _relay(label_config)
    if relay is not None:
        options.control_ports = relay.control_ports  # rtpengine ng ports -> the ng sniffer
    pipeline = Pipeline(options, call_config, label_config, codecs, plc=not args.no_plc,
                        quality_interval_s=args.quality_interval, keep_calls=keep_calls, on_call=on_call,
                        worker_names=worker_names)
    if relay is not None:
        relay.attach(pipeline)
    return pipeline, relay, label_config


def cmd_replay(args) -> int:
    from warpsniff import report
    from warpsniff.replay import CallOutput, Progress, replay

    if args.streams_only:
        for flag, given in (("--cdr", args.cdr), ("--write-pcap", getattr(args, "write_pcap", None)),
                            ("--correlation-header", args.correlation_header),
                            ("--call-id-pattern", args.call_id_pattern), ("--nat-alias", args.nat_alias)):
            if given:
                raise UsageError(f"--streams-only looks for no SIP: {flag} has nothing to work on")
    bad_calls = _bad_call_writer(args, live=False)
    pipeline, relay, label_config = _build_pipeline(args, keep_calls=True,
                                                    on_call=bad_calls.on_call if bad_calls else None)
    if args.speed is not None and args.speed <= 0:
        raise UsageError(f"--speed must be positive, got {args.speed}")
    if args.keep_serving and not args.listen:
        raise UsageError("--keep-serving needs --listen")
    outputs = [p for p in (args.streams_json, args.cdr) if p]
    # open outputs first: a bad path fails before the work, not after
    streams_out = _open_output(args.streams_json) if args.streams_json else None
    cdr_out = _open_output(args.cdr) if args.cdr else None
    to_stdout = "-" in outputs

    def write_cdr(record: dict):
        cdr_out.write(json.dumps(record) + "\n")

    # Calls go out as they finish, so memory follows the calls in flight, not the capture;
    # except when the CDRs and the stream list both go to stdout, where the list comes first
    streaming = not (args.cdr == "-" and args.streams_json == "-")
    output = CallOutput(write_cdr if cdr_out is not None else None, rows=not args.quiet and not to_stdout,
                        call_ids=streams_out is not None) if streaming else None
    exporter, registry = _serve(args, pipeline, relay)
    if bad_calls is not None and registry is not None:
        registry.register(bad_calls.collector())
    # with --keep-serving, calls still up at the end stay active in the served state
    result = replay(args.files, progress=Progress(), speed=args.speed, pipeline=pipeline,
                    close_calls=not args.keep_serving, output=output)
    if output is not None:
        calls, rows, call_ids, payload_names = (), output.rows, output.call_ids, output.payload_names
        if output.written_early:
            print(f"warpsniff: {output.written_early} CDRs were written before their streams went idle"
                  f" (more than {output.max_waiting} calls waited behind a stream still flowing):"
                  " their media figures stop there", file=sys.stderr)
    else:
        calls = rows = result.calls
        call_ids, payload_names = {c.call_ref: c.call_id for c in calls}, None
    read_anything = result.counters["frames"] > 0 or len(result.errors) < len(args.files)
    if not args.quiet and not to_stdout and read_anything:
        if not args.streams_only:
            report.write_call_table(rows, sys.stdout)
        report.write_stream_table(result.streams, sys.stdout)
        report.write_summary(result.counters, result.decode_errors, sys.stdout, result.elapsed_s)
    if bad_calls is not None:
        bad_calls.extract_from_files(args.files)
        bad_calls.log_summary()
    if streams_out is not None:
        quality = pipeline.quality_context(calls, payload_names)
        doc = report.streams_to_dicts(result.streams, call_ids, quality)
        streams_out.write(json.dumps(doc, indent=1) + "\n")
        if streams_out is not sys.stdout:
            streams_out.close()
    if cdr_out is not None:
        if output is None:
            quality = pipeline.quality_context(calls)
            for call in calls:
                write_cdr(report.call_to_dict(call, result.streams_of(call), quality))
        if cdr_out is not sys.stdout:
            cdr_out.close()
    if args.push_gateway:
        from prometheus_client import push_to_gateway

        from warpsniff.exporter import registry_for
        try:
            push_to_gateway(args.push_gateway, job="warpsniff",
                            registry=registry or registry_for(pipeline, relay=relay))
        except OSError as exc:
            print(f"warpsniff: --push-gateway {args.push_gateway}: {exc}", file=sys.stderr)
    for err in result.errors:
        if err.offset is not None:
            print(f"warpsniff: {err}; results cover the packets before it", file=sys.stderr)
        else:
            print(f"warpsniff: {err}", file=sys.stderr)
    status = EXIT_INPUT if result.errors else EXIT_OK
    if exporter is not None:
        if args.keep_serving:
            print("warpsniff: input done; still serving /metrics (Ctrl-C to stop)", file=sys.stderr)
            try:
                exporter.thread.join()
            except KeyboardInterrupt:
                pass
        if relay is not None:
            relay.stop()
        exporter.stop()
    return status


def cmd_live(args) -> int:
    """Capture until SIGTERM/SIGINT; SIGHUP reloads the label configuration."""
    import signal
    import threading

    from warpsniff import report
    from warpsniff._engine import CaptureError
    from warpsniff.labels import ConfigError, LabelConfig

    duplicated = {i for i in args.interface if args.interface.count(i) > 1}
    if duplicated:
        raise UsageError(f"-i {sorted(duplicated)[0]} given twice: use --workers N for more rings on one interface")
    if args.ring_block_size & (args.ring_block_size - 1):
        raise UsageError(f"--ring-block-size must be a power of two, got {args.ring_block_size}")
    cdr_out = None
    if args.cdr:
        try:
            cdr_out = open(args.cdr, "a")
        except OSError as exc:
            raise UsageError(f"{args.cdr}: cannot append: {exc.strerror}")

    bad_calls = _bad_call_writer(args, live=True)

    def write_cdr(call, streams, quality):
        if bad_calls is not None:
            bad_calls.on_call(call, streams, quality)
        if cdr_out is not None:
            cdr_out.write(json.dumps(report.call_to_dict(call, streams, quality)) + "\n")
            cdr_out.flush()

    from warpsniff.bpf import BpfError, compile_filter, default_expression

    kernel_filter = None
    if args.filter != "none":
        try:
            kernel_filter = compile_filter(args.filter or default_expression(args.sip_ports))
        except BpfError as exc:
            if args.filter:  # the user asked for this filter: it must hold
                raise UsageError(f"--filter: {exc}")
            print(f"warpsniff: no kernel filter ({exc}): every packet reaches the engine", file=sys.stderr)
    from warpsniff.capture.workers import worker_names

    names = worker_names(args.interface, args.workers)
    pipeline, relay, _ = _build_pipeline(args, keep_calls=False, on_call=write_cdr, worker_names=names)
    stop = threading.Event()

    def reload_labels(signum, frame):
        if not args.config:
            return
        try:
            fresh = LabelConfig.load(args.config)
        except (ConfigError, OSError) as exc:
            print(f"warpsniff: SIGHUP: keeping the old labels: {exc}", file=sys.stderr)
            return
        with pipeline.lock:  # new calls get the new labels; nothing else is lost
            pipeline.tracker.label_config = fresh
        print(f"warpsniff: SIGHUP: reloaded {args.config}", file=sys.stderr)

    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    signal.signal(signal.SIGHUP, reload_labels)
    engines = pipeline.engines()
    if bad_calls is not None:
        try:
            bad_calls.open_spools(engines, args.spool_dir or f"{args.write_pcap}/.spool",
                                  args.spool_mb << 20, args.spool_segment_mb << 20)
        except (ValueError, OSError) as exc:
            raise UsageError(f"--spool-dir: {exc}")
        bad_calls.start()
    exporter, registry = _serve(args, pipeline, relay)
    if bad_calls is not None and registry is not None:
        registry.register(bad_calls.collector())
    status = EXIT_OK
    try:
        ring = dict(block_size=args.ring_block_size, block_count=args.ring_blocks,
                    block_timeout_ms=args.ring_timeout_ms, promisc=not args.no_promisc,
                    kernel_filter=kernel_filter)
        if len(names) > 1:
            pipeline.run_workers(args.interface, args.workers, stop, **ring)
        else:
            pipeline.run_live(args.interface[0], stop, **ring)
    except CaptureError as exc:
        print(f"warpsniff: {exc}", file=sys.stderr)
        status = EXIT_INPUT
    finally:
        with pipeline.lock:
            for ring, st in pipeline.capture_stats().items():
                print(f"warpsniff: ring {ring}: {st['packets']} packets, {st['drops']} dropped by the kernel,"
                      f" full {st['freezes']} times", file=sys.stderr)
        pipeline.finish()  # open calls end as interrupted; their CDRs are written
        if bad_calls is not None:
            bad_calls.close(engines)
        if cdr_out is not None:
            cdr_out.close()
        if relay is not None:
            relay.stop()
        if exporter is not None:
            exporter.stop()
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    try:
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "live":
            return cmd_live(args)
    except UsageError as exc:
        print(f"warpsniff: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # pragma: no cover - reported, not hidden
        import traceback
        traceback.print_exc()
        print(f"warpsniff: internal error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    parser.error(f"unknown command {args.command}")
    return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
