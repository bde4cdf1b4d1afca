"""The native labels (NativeLabels, ext/labels/) against the Python path,
which is the reference: LabelConfig.labels() on the InviteInfo the tracker
made before the native path (here restated from public pieces: parse_sip's
fields, header_values, ip_text). Results must be the very same shared
CallLabels objects.

- every test of test_labels.py and test_labels_fastpath.py that labels,
  run again here with each labels() call also made natively (`both` below);
- the number analysis on those files' dial-string corpora over every region;
- the automata (warpsniff/digit_automata.py) against `re` on every pattern
  of phonenumbers' metadata;
- seeded random INVITEs written as raw bytes, under configurations of every
  shape, through InviteBatch and through the tracker itself;
- every initial INVITE of the captures in ../shared/pcaps/public and pcaps/.

`python3 tests/test_labels_native.py` prints the cost per INVITE of the two
paths on the benchmark captures' INVITEs (see __main__)."""
from __future__ import annotations

import random
import re
import string
from pathlib import Path

import phonenumbers
import pytest

import test_labels
import test_labels_fastpath
import warpsniff.labels as L
from capture_invites import initial_invites
from test_labels import EXAMPLE, _dial_strings, _split_dial_strings
from warpsniff._engine import InviteBatch, addr16, ip_text, label_tables, parse_sip
from warpsniff.digit_automata import Pool, parse
from warpsniff.labels import InviteInfo, LabelConfig
from warpsniff.sip.calls import CallTracker
from warpsniff.sip.headers import header_values

REPO = Path(__file__).resolve().parent.parent
SHARED_PCAPS = REPO.parent / "shared" / "pcaps" / "public"

# ------------------------------------------------------------------ the other files' tests, natively too

_RERUN = []
_NOT_LABELLING = {"test_number_kind_is_phonenumbers_type_helper_in_every_region",   # number analysis alone:
                  "test_number_analysis_is_phonenumbers_parse_in_every_region",     # its corpora are checked
                  "test_split_number_is_phonenumbers_parse_in_every_region"}        # natively below
for _module in (test_labels, test_labels_fastpath):
    for _name, _value in vars(_module).items():
        if _name.startswith("test_") and callable(_value) and _name not in _NOT_LABELLING:
            globals()[_name] = _value
            _RERUN.append(_name)
example, plain = test_labels.example, test_labels.plain   # their fixtures

_python_labels = LabelConfig.labels
_checked = {"native": 0, "python": 0, "tests": set()}


@pytest.fixture(autouse=True)
def both(request, monkeypatch):
    """Every LabelConfig.labels(info) of the other files' tests is also made
    by the config's NativeLabels, which must hand out the same object."""
    if request.function.__module__ not in (test_labels.__name__, test_labels_fastpath.__name__):
        return
    _checked["tests"].add(request.function.__name__)
    inside = []

    def labels(self, info):
        want = _python_labels(self, info)
        if inside:   # the native path's own fallback for this INVITE
            return want
        native = self.native()
        before = native.stats["python_invites"]
        inside.append(True)
        try:
            got = native.labels(info)
        finally:
            inside.pop()
        assert got is want, (info, got, want)
        _checked["python" if native.stats["python_invites"] > before else "native"] += 1
        return got

    monkeypatch.setattr(LabelConfig, "labels", labels)


def test_zz_most_of_the_other_files_invites_were_labelled_natively():
    """(after the re-run tests above, in file order; skipped when not all of them ran)"""
    if _checked["tests"] != set(_RERUN):
        pytest.skip("not every test of the other files ran here")
    assert _checked["native"] > 20_000 and _checked["native"] > 20 * _checked["python"], _checked


# ------------------------------------------------------------------ numbers


def test_number_analysis_is_the_python_one_in_every_region():
    """NativeLabels.number against labels._number (uncached) on the dial
    strings test_labels.py builds from every region's metadata, that region
    the default country; Python decides only the few the plans leave to
    parse()."""
    rng = random.Random(3)
    checked = asked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        native = LabelConfig(default_country=region).native()
        cc = phonenumbers.country_code_for_region(region)
        for dial in [*_dial_strings(rng, region), *_split_dial_strings(rng, region)]:
            if not dial.lstrip("+"):
                continue
            got, python = native.number(dial)
            assert got == L._number.__wrapped__(dial, region, cc), (region, dial)
            checked += 1
            asked += python
    assert checked > 60_000 and asked < checked // 10, (checked, asked)


def _pool_patterns():
    metas = [phonenumbers.PhoneMetadata.metadata_for_region(r) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]
    metas += [phonenumbers.PhoneMetadata.metadata_for_nongeo_region(cc)
              for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    return metas


def test_automata_are_re_on_every_metadata_pattern():
    """Set automata give re.fullmatch of several patterns at once (and
    re.match's yes or no); first-match automata give where re.match ends
    and whether the tracked group took part, on digit strings grown from
    each region's example numbers, its prefixes, and random digits."""
    rng = random.Random(9)
    pool = Pool()
    slots = ("general_desc",) + L._KIND_SLOTS
    seen = {"full": 0, "prefix": 0, "first": 0, "group": 0}
    for meta in _pool_patterns():
        patterns = [getattr(meta, s).national_number_pattern if getattr(meta, s) is not None else None
                    for s in slots]
        patterns = [p or None for p in patterns]
        compiled = [re.compile(p) if p else None for p in patterns]
        start = pool.set_dfa(patterns)
        seeds = ["".join(filter(str.isdigit, str(getattr(getattr(meta, s), "example_number", "") or "")))
                 for s in slots if getattr(meta, s) is not None]
        prefixes = [meta.national_prefix or "", "".join(filter(str.isdigit, meta.international_prefix or ""))[:4],
                    str(meta.country_code)]
        for _ in range(120):
            seed = rng.choice([s for s in seeds if s] or [""])
            cut = rng.randint(0, len(seed))
            digits = rng.choice(prefixes + [""] * 3) + seed[:cut] + "".join(
                rng.choice(string.digits) for _ in range(rng.choice([0, len(seed) - cut, rng.randint(0, 9)])))
            want = sum(1 << i for i, c in enumerate(compiled) if c is not None and c.fullmatch(digits))
            assert pool.fullmatch_tags(start, digits) == want, (meta.id, digits)
            seen["full"] += bool(want)
            for pattern in (meta.leading_digits, patterns[0]):
                if pattern:
                    one = pool.set_dfa((pattern,))
                    expect = re.match(pattern, digits) is not None
                    assert pool.match_exists(one, digits) == expect, (pattern, digits)
                    seen["prefix"] += expect
            for pattern in (meta.international_prefix, meta.national_prefix_for_parsing):
                if not pattern:
                    continue
                groups = re.compile(pattern).groups
                # groups mostly take part in numbers of one length: all lengths, then
                for text in [digits] + ([_digits(rng, rng.randint(1, 14))] * 3 if groups else []):
                    m = re.match(pattern, text)
                    expect = (m.end(), groups > 0 and m.group(groups) is not None) if m else (-1, False)
                    assert pool.first_match(pool.first_match_dfa(pattern, groups), text) == expect, (pattern, text)
                    seen["first"] += m is not None
                    seen["group"] += expect[1]
    assert min(seen.values()) > 300, seen
    assert pool.states < 60_000, pool.states


@pytest.mark.parametrize("pattern,text,end", [
    ("0|80?", "801", 2),                       # greedy: the longer of two ends
    ("0|80??", "801", 1),                      # lazy: the shorter
    ("(?:0|00)", "001", 1),                    # the first alternative that matches, not the longest
    ("([2-9]\\d{2})$|1", "1234", 1),           # $ holds only at the end of the input
    ("([2-9]\\d{2})$|1", "234", 3),
    ("\\d{2,}5", "12345", 5),
    ("(?:1[12]|2)(?:3)?", "1134", 3),
])
def test_first_match_follows_re_priorities(pattern, text, end):
    pool = Pool()
    assert pool.first_match(pool.first_match_dfa(pattern), text)[0] == end == re.match(pattern, text).end()


@pytest.mark.parametrize("pattern", ["a", "\\w", "[^0]", "(?=1)", "(?P<x>1)", "1|(", "[1"])
def test_automata_refuse_what_they_do_not_cover(pattern):
    from warpsniff.digit_automata import Unsupported
    with pytest.raises(Unsupported):
        parse(pattern)


# ------------------------------------------------------------------ INVITEs as bytes

WIDE = """
default_country: US
platform: {addresses: [192.0.2.0/24, "2001:db8:1::/48"]}
trunks:
  - {name: t_cidr, match: {cidr: [198.51.100.0/24], port: [5060, 5080]}}
  - {name: t_v6, match: {cidr: "2001:db8:ff::/48"}}
  - {name: t_hdr, match: {header: {name: X-Trunk, value: [cust_x, "b c"]}}}
  - {name: t_port, match: [{port: 5070}, {header: {name: X-Carrier, value: z}}]}
providers:
  - {name: p_cidr, match: {cidr: [203.0.113.0/24, "2001:db8:ff:1::/64"]}}
  - {name: p_hdr, match: {header: {name: x-provider, value: p1}}}
accounts:
  - {name: a_trunk, match: {trunk: [t_hdr, t_port]}}
  - {name: a_hdr, match: {header: {name: X-Account, value: "67890"}}}
  - {name: a_dom, match: {pai_domain: [example.com, b.example]}}
  - {name: a_pref, match: {number_prefix: ["+1312", "+44"]}}
  - {name: a_any, match: [{trunk: t_cidr, number_prefix: "+1"}, {pai_domain: "c.example"}]}
"""

CONFIGS = {
    "default": None,
    "example": EXAMPLE.read_text(),
    "sample": (REPO / "pcaps" / "sample-calls.yml").read_text(),
    "wide": WIDE,
    "gb": "default_country: GB\nplatform: {addresses: [192.0.2.10]}\n"
          "accounts: [{name: uk, match: {number_prefix: '+44'}}]\n",
    "text values": "default_country: DE\ntrunks: [{name: t, match: {header: {name: X-Trunk, value: ['cüst', k]}}}]\n",
    "transforms": "default_country: AR\naccounts: [{name: d, match: {pai_domain: example.com}}]\n",
    "jp": "default_country: JP\n",
}


def config(name: str, tmp_path) -> LabelConfig:
    if CONFIGS[name] is None:
        return LabelConfig.default()
    path = tmp_path / f"{name.replace(' ', '_')}.yml"
    path.write_text(CONFIGS[name])
    return LabelConfig.load(str(path))


ADDRESSES = ["198.51.100.7", "192.0.2.10", "192.0.2.99", "203.0.113.9", "10.1.2.3", "2001:db8:1::10",
             "2001:db8:ff::7", "2001:db8:ff:1::2", "::1", "fe80::1"]


def _digits(rng, n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def _number(rng) -> str:
    return rng.choice([
        lambda: rng.choice("23456789") + _digits(rng, 6),                            # 7-digit national
        lambda: rng.choice("23456789") + _digits(rng, 9),
        lambda: "1" + rng.choice(["312", "212", "217", "416", "800", "555"]) + _digits(rng, 7),
        lambda: "+1" + rng.choice(["312", "212", "217", "415", "604", "787", "888", "268"]) + _digits(rng, 7),
        lambda: "+44" + rng.choice(["20", "113", "7", "800"]) + _digits(rng, 8),
        lambda: "+" + rng.choice(["33", "49", "81", "54", "55", "61", "86", "7", "800", "979"]) + _digits(rng, 9),
        lambda: rng.choice(["00", "011", "0", "0011", "15", "9"]) + _digits(rng, rng.randint(6, 12)),
        lambda: _digits(rng, rng.randint(1, 4)),                                       # extensions
        lambda: "+" + _digits(rng, rng.randint(1, 22)),
    ])()


def _user(rng) -> str:
    """A user part: mostly a number as it comes, else in the shapes the
    general parser reads or refuses (escapes, separators, parameters)."""
    n = _number(rng)
    return rng.choice([n] * 6 + [
        n.replace("+", "%2B"), "%2b" + n.lstrip("+"), "%" + n, "%zz" + n, "%C3%A9" + n,
        "-".join([n[:3], n[3:6], n[6:]]), f"({n[:3]}) {n[3:]}".replace(" ", "%20"), n + ";phone-context=+1-212",
        n.lstrip("+") + ";phone-context=+44", n + ";PHONE-CONTEXT=\"+33\"", n + ";phone-context=example.com",
        n + ";npdi;rn=+12125559999", n + ":secret", "anonymous", "*67" + n, n + "x", "", "+",
        "\u0661\u0662\u0663\u0664", n + "@pbx",
    ])


def _host(rng) -> str:
    return rng.choice(["10.2.0.1", "sbc.example.net", "EXAMPLE.COM.", "example.com", "b.example", "c.example",
                       "[2001:db8::1]", "[2001:db8::1]:5061", "h:5080", "sub.example.com"]) + rng.choice(
        ["", "", ";user=phone", ";transport=tcp", ";lr", "?subject=x", ";user=phone;x=1"])


def _uri(rng, *, bare_ok=True) -> str:
    scheme = rng.choice(["sip"] * 8 + ["sips", "SIP", "Sip", "tel", "TEL"])
    if scheme.lower() == "tel":
        return f"{scheme}:{_number(rng)}" + rng.choice(["", ";ext=22", ";phone-context=+1"])
    if bare_ok and rng.random() < 0.03:
        return _number(rng)
    return f"{scheme}:{_user(rng)}@{_host(rng)}"


def _name_addr(rng, tag: bool) -> str:
    uri = _uri(rng)
    shape = rng.randrange(8)
    if shape == 0:
        out = uri if ";" not in uri and "?" not in uri else f"<{uri}>"
    elif shape < 4:
        out = f"<{uri}>"
    else:
        out = rng.choice(['"Bob"', "Bob", '"Smith, Bob"', '"a<b"', '"a\\"b"', '""', '"\u00c9milie"',
                          '"\u041f\u0441\u043a\u043e\u0432, IT"', "\u00c9milie", '"x@y"']) + rng.choice(
            [" ", "", "  "]) + f"<{uri}>"
    if tag:
        out += f";tag={rng.randrange(1 << 30):x}"
    return out


def _pai(rng) -> str:
    idents = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        idents.append(rng.choice([
            lambda: f"<sip:{_number(rng)}@{rng.choice(['example.com', 'EXAMPLE.COM', 'b.example', 'c.example', 'x'])}>",
            lambda: f"<tel:{_number(rng)}>",
            lambda: f'"Big, Co" <sip:{_number(rng)}@example.com;user=phone>',
            lambda: f'"\u0421\u043a\u043b\u0430\u0434" <sip:{_number(rng)}@c.example>',
            lambda: "<sip:anonymous@anonymous.invalid>",
            lambda: _name_addr(rng, False),
        ])() if rng.random() < 0.97 else rng.choice(["\u00a0<sip:+13125550100@example.com>",   # str.strip()
                                                       "<sip:+13125550100@example.com>\u00a0"]))
    return rng.choice([", ", ",", " , "]).join(idents)


def _header(rng, name: str, value: str) -> list:
    """One header as lines: the name in any case (or compact), spaces around
    the colon, maybe folded over several lines."""
    name = rng.choice([name, name.lower(), name.upper(), name.title()])
    sep = rng.choice([": ", ":", " : ", ":\t", ":  "])
    if rng.random() < 0.15 and " " in value:
        cut = value.index(" ")
        return [f"{name}{sep}{value[:cut]}", rng.choice([" ", "\t", "   "]) + value[cut + 1:]]
    return [f"{name}{sep}{value}"]


def random_invite(rng: random.Random) -> tuple:
    """(payload, src addr16, sport, dst addr16, dport) of an initial INVITE
    the scan accepts."""
    ruri = _uri(rng, bare_ok=False)
    lines = [f"{rng.choice(['INVITE'])} {ruri} SIP/2.0"]
    headers = [
        _header(rng, "Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{rng.randrange(1 << 40):x}"),
        _header(rng, rng.choice(["From", "f"]), _name_addr(rng, True)),
        _header(rng, rng.choice(["To", "t"]), _name_addr(rng, False)),
        _header(rng, rng.choice(["Call-ID", "i"]), f"{rng.randrange(1 << 60):x}@h"),
        _header(rng, "CSeq", f"{rng.randint(1, 9)} INVITE"),
        _header(rng, "Max-Forwards", "70"),
    ]
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        headers.append(_header(rng, "P-Asserted-Identity", _pai(rng)))
    trunks = ["cust_x", " cust_x ", "CUST_X", "b c", "cust_x2", "cüst", "k"] * 4 + ["\u00a0k"]
    for name, values in (("X-Trunk", trunks),
                         ("X-Account", ["67890", "6789", " 67890\t"]), ("X-Carrier", ["z", "zz"]),
                         ("X-Provider", ["p1", "P1"])):
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            headers.append(_header(rng, name, rng.choice(values)))
    decoys = [["X-Trunk-Id: cust_x"], ["P-Asserted-Identity-Note: <sip:+442079460000@example.com>"],
              ["Subject: calls", " X-Trunk: cust_x"],          # a folded line that looks like a header
              ["Subject: hello:", " P-Asserted-Identity: <sip:+442079460000@x>"],
              ["User-Agent: \u00c9clair 1.0"], ["Contact: <sip:+13125550100@example.com>"],
              ["X-Note no colon here"]]
    for _ in range(rng.choice([0, 1, 2])):
        headers.append(rng.choice(decoys))
    rng.shuffle(headers)
    for header in headers:
        lines.extend(header)
    body = "v=0\r\n" if rng.random() < 0.2 else ""
    lines.append(f"Content-Length: {len(body)}")
    payload = ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")
    return (payload, addr16(rng.choice(ADDRESSES)), rng.choice([5060, 5070, 5080, 40000]),
            addr16(rng.choice(ADDRESSES)), rng.choice([5060, 5080]))


def python_labels(cfg: LabelConfig, invite: tuple):
    """The Python path: the InviteInfo the tracker made (restated), then labels()."""
    payload, src, sport, dst, dport = invite
    h = parse_sip(payload)
    info = InviteInfo(ip_text(src), sport, ip_text(dst), dport, h.request_uri, h.from_uri, h.to_uri,
                      header_values(payload, h.header_len, cfg.header_names))
    return _python_labels(cfg, info)


def random_invites(n: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        invite = random_invite(rng)
        h = parse_sip(invite[0])
        if h.status_name == "ok" and h.to_tag is None:   # what the tracker labels
            out.append(invite)
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_random_invites_as_bytes(name, tmp_path):
    """labels_of on raw INVITEs (InviteBatch) is the Python path on every
    one, the same shared object; most are decided natively, and they carry
    many different label sets."""
    cfg = config(name, tmp_path)
    invites = random_invites(3000, seed=list(CONFIGS).index(name))
    native = cfg.native()
    got = native.label_batch(InviteBatch(invites))
    sets = set()
    for invite, labels in zip(invites, got):
        want = python_labels(cfg, invite)
        assert labels is want, (invite[0].decode("utf-8", "replace"), labels, want)
        sets.add(want)
    stats = native.stats
    assert stats["invites"] == len(invites)
    # Python decides the INVITEs whose text it must read as text: a header value with it at an end
    # (str.strip()), and under "text values" each X-Trunk value not in ASCII (an accepted one is not)
    assert stats["python_invites"] < len(invites) // (4 if name == "text values" else 10), stats
    assert len(sets) >= (2 if name in ("default", "jp", "text values") else 8), sets


def test_the_tracker_labels_natively(tmp_path):
    """The tracker's call site: each initial INVITE handed to CallTracker
    gets the Python path's labels, and no whole INVITE went to Python."""
    cfg = config("wide", tmp_path)
    attempts = []
    tracker = CallTracker(None, label_config=cfg, on_attempt=attempts.append)
    invites = random_invites(1500, seed=77)
    for i, invite in enumerate(invites):
        payload, src, sport, dst, dport = invite
        tracker.message(parse_sip(payload), payload, float(i), (src, sport), (dst, dport))
    assert len(attempts) == len(invites)
    for call, invite in zip(attempts, invites):
        assert call.labels is python_labels(cfg, invite)
    assert cfg.native().stats["invites"] == len(invites)


def test_label_sets_stay_shared_when_the_config_drops_them(tmp_path, monkeypatch):
    """When LabelConfig's shared label sets overflow and are dropped, the
    native path forgets those it kept: both paths keep handing out one
    object per label set."""
    monkeypatch.setattr(L, "MAX_SHARED_LABEL_SETS", 5)
    cfg = config("wide", tmp_path)
    native = cfg.native()
    invites = random_invites(400, seed=5)
    for i, invite in enumerate(invites):
        if i % 2:
            got = native.label_batch(InviteBatch([invite]))[0]
            assert got is python_labels(cfg, invite)
        else:
            want = python_labels(cfg, invite)
            assert native.label_batch(InviteBatch([invite]))[0] is want
        assert len(cfg._label_sets) <= 5


def test_header_values_are_read_as_header_values_reads_them(tmp_path):
    """Header names in any case and folded lines; a folded line that looks
    like a header is one when the line before is not asked for; a value
    with text outside ASCII at its ends goes to Python, one with it inside
    (a display name) does not."""
    cfg = config("wide", tmp_path)
    native = cfg.native()

    def labels(*lines):
        payload = ("\r\n".join(["INVITE sip:+13125550100@h SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
                                "From: <sip:+14155550100@h>;tag=1", "To: <sip:+13125550100@h>", "Call-ID: 1",
                                "CSeq: 1 INVITE", *lines]) + "\r\n\r\n").encode()
        invite = (payload, addr16("192.0.2.99"), 5060, addr16("192.0.2.10"), 5060)
        before = native.stats["python_invites"]
        got = native.label_batch(InviteBatch([invite]))[0]
        assert got is python_labels(cfg, invite)
        return got, native.stats["python_invites"] > before

    assert labels("x-TRUNK :  cust_x ")[0].trunk == "t_hdr"
    assert labels("X-Trunk: nope", "X-Trunk: cust_x")[0].trunk == "t_hdr"
    assert labels("X-Trunk: b", " c")[0].trunk == "t_hdr"                          # folded: "b c"
    assert labels("Subject: x", " X-Trunk: cust_x")[0].trunk == "t_hdr"            # a line of its own there
    assert labels("X-Account: 1", " X-Trunk: cust_x")[0].trunk == "unknown"        # the X-Account value goes on
    assert labels("X-Trunk-Id: cust_x")[0].trunk == "unknown"
    assert labels('P-Asserted-Identity: "\u0421\u043a\u043b\u0430\u0434, 1" <sip:+13125550100@b.example>') == (
        labels("P-Asserted-Identity: <sip:+13125550100@b.example>")[0], False)
    assert labels("X-Trunk: cust_x\u00a0")[1]                                      # str.strip() decides


def test_short_numbers_are_asked_once(tmp_path):
    """An extension ("sip:201@pbx") is decided by parse() in Python, once
    per NativeLabels, then read back natively."""
    cfg = config("default", tmp_path)
    native = cfg.native()
    assert native.number("201") == (L._number("201", "US", 1), True)
    calls = []
    original = L._number
    try:
        L._number = lambda *a: calls.append(a) or original(*a)
        assert native.number("201")[0] == original("201", "US", 1)
    finally:
        L._number = original
    assert calls == []


# ------------------------------------------------------------------ captures


def _captures() -> list:
    found = sorted(SHARED_PCAPS.glob("*.pcap*")) if SHARED_PCAPS.is_dir() else []
    return found + sorted((REPO / "pcaps").glob("*.pcap"))


@pytest.mark.parametrize("name", ["default", "example", "sample", "wide"])
def test_every_invite_of_the_captures(name, tmp_path):
    """Every initial INVITE of the public captures and pcaps/ (SIP over UDP,
    TCP, WebSocket, SCTP), natively and by the Python path, under four
    configurations; none needs Python as a whole."""
    cfg = config(name, tmp_path)
    native = cfg.native()
    total = 0
    for path in _captures():
        invites = initial_invites(path)
        if not invites:
            continue
        for invite, labels in zip(invites, native.label_batch(InviteBatch(invites))):
            assert labels is python_labels(cfg, invite), (path.name, invite[0][:300])
        total += len(invites)
    assert total >= (100 if SHARED_PCAPS.is_dir() else 20)
    assert native.stats["python_invites"] == 0, native.stats


# ------------------------------------------------------------------ cost


def bench() -> None:
    """Per INVITE, on the two benchmark captures' INVITEs: the Python path
    (InviteInfo + labels(), its number cache cleared each round: every
    number is new in those captures) and labels_of; CPU time
    (time.process_time) of a whole batch, best of several rounds, one
    process. Also the automata's build time and size."""
    import time

    from warpsniff.labels import LabelConfig as Config
    out = REPO.parent / "main" / "bench-out"
    for capture in ("synth-v1-c500-p1000000-l0.005-j5-s1.pcap", "sip-c100000-s2.pcap"):
        invites = initial_invites(out / capture)
        batch = InviteBatch(invites)
        cfg = Config.default()
        native = cfg.native()
        native.label_batch(batch)
        native.label_batch(batch, python=True)   # the geocoder and tables loaded
        rounds = 200 if len(invites) < 1000 else 5

        def best(python: bool) -> float:
            times = []
            for _ in range(rounds):
                L._number.cache_clear()
                t = time.process_time()
                native.label_batch(batch, python=python)
                times.append(time.process_time() - t)
            return min(times) / len(invites) * 1e6

        print(f"{capture}: {len(invites)} INVITEs: Python path {best(True):.2f} us, "
              f"native {best(False):.3f} us per INVITE; {native.stats}")
    # the tables of every country code, built one after another as numbers of each first come
    native = Config(default_country="DE").native()
    t = time.process_time()
    for cc in sorted(L._COUNTRY_CODES.values()):
        native.number(f"+{cc}2345678")
    tables = label_tables()
    print(f"every country code's tables: {time.process_time() - t:.2f} s CPU, {tables}")


if __name__ == "__main__":
    bench()
