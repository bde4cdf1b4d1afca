"""The fast paths of labels.py checked against its general paths, which are
the reference (the behaviour tests/test_labels.py pins):

- _PLAIN_URI (one match for "sip:DIGITS@host" and "<sip:DIGITS@host>")
  against _uri_user + _dial_string, on URIs of every shape the general
  parser handles and many it refuses;
- the whole LabelConfig.labels() against a restatement of it that takes
  numbers through the general URI parser and phonenumbers' public API, on
  random INVITEs under the default configuration, the example and two more."""
from __future__ import annotations

import random
import string

import phonenumbers
import pytest

import warpsniff.labels as L
from test_labels import EXAMPLE, _reference_number
from warpsniff.labels import InviteInfo, LabelConfig

# ------------------------------------------------------------------ URI corpus

_USERS_CLEAN = ("national7", "national10", "nanp11", "e164_us", "e164_gb", "e164_tollfree", "idd00", "idd011",
                "ca_uan", "ag", "short", "long")


def _digits_user(rng: random.Random, kind: str) -> str:
    def d(n):
        return "".join(rng.choice(string.digits) for _ in range(n))
    return {
        "national7": lambda: rng.choice("123456789") + d(6),
        "national10": lambda: rng.choice("23456789") + d(9),
        "nanp11": lambda: "1" + rng.choice("23456789") + d(9),
        "e164_us": lambda: "+1" + rng.choice(["212", "312", "415", "555", "416", "268"]) + d(7),
        "e164_gb": lambda: "+44" + rng.choice(["20", "113", "7"]) + d(8),
        "e164_tollfree": lambda: rng.choice(["+1800", "+1888", "+800"]) + d(7),
        "idd00": lambda: "00" + rng.choice(["1212", "44", "49"]) + d(8),
        "idd011": lambda: "011" + rng.choice(["1312", "44", "33"]) + d(8),
        "ca_uan": lambda: "310" + d(4),
        "ag": lambda: "268" + d(4),
        "short": lambda: d(rng.randint(1, 4)),
        "long": lambda: rng.choice(["", "+"]) + d(rng.randint(15, 22)),
    }[kind]()


def _user(rng: random.Random) -> str:
    """A user part: mostly digits as they come, else written in every way
    _dial_string reads (or refuses)."""
    plain = _digits_user(rng, rng.choice(_USERS_CLEAN))
    pick = rng.randrange(20)
    if pick < 10:
        return plain
    if pick == 10:                                     # visual separators
        return "".join(c + (rng.choice("-.() /\t") if rng.random() < 0.3 else "") for c in plain)
    if pick == 11:                                     # percent escapes, good and bad
        return rng.choice(["%2B", "%2b", "%31", "%zz", "%", "%20"]) + plain.lstrip("+")
    if pick == 12:                                     # parameters on the user part
        return plain + rng.choice([";phone-context=+1", ";phone-context=+1-212", ';phone-context="+44"',
                                   ";phone-context=example.com", ";npdi;rn=+12125559999", ";isub=1",
                                   ";PHONE-CONTEXT=+33", ";phone-context=+", ";phone-context"])
    if pick == 13:                                     # user:password
        return plain + ":" + rng.choice(["pw", "", "123"])
    if pick == 14:                                     # not a number
        return rng.choice(["bob", "anonymous", "*67" + plain, plain + "x", "", "+", "++1", "1O", "Alice.Smith"])
    if pick == 15:                                     # non-ASCII digits and look-alikes
        return rng.choice(["\u0661\u0662\u0663\u0664\u0665", "\uff11\uff12\uff13\uff14", plain + "\u00b2",
                           "\u202e" + plain])
    if pick == 16:                                     # an "@" inside the user part
        return plain + "@" + rng.choice(["x", "1"])
    if pick == 17:                                     # spaces around
        return rng.choice([" ", "\t"]) + plain if rng.random() < 0.5 else plain + " "
    if pick == 18:                                     # angle brackets and quotes inside
        return plain + rng.choice(["<", ">", '"'])
    return plain.replace("+", rng.choice(["+", "%2B", ""]))


def _host(rng: random.Random) -> str:
    host = rng.choice(["10.2.0.1", "sbc.example.net", "h", "[2001:db8::1]", "[2001:db8::1]:5061",
                       "10.1.0.1:5080", "", "EXAMPLE.COM.", "[::ffff:10.0.0.1]"])
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        host += rng.choice([";user=phone", ";transport=udp", ";lr", ";x=a@b", "?subject=x", ";maddr=h",
                            ";user=phone?X-H=%40", " ", ";tag=abc"])
    return host


def _uri(rng: random.Random) -> object:
    """A Request-URI, To, From or P-Asserted-Identity value."""
    pick = rng.randrange(30)
    if pick == 0:
        return rng.choice([None, "", " ", "<", ">", "<>", "sip:", "sip:@", "tel:", "@", ";", "sip:+@h",
                           "sip:123", "<sip:123>", "123", "+13125550100", 12125550100, b"sip:1@h"])
    if pick == 1:                                      # garbage
        alphabet = string.printable + "<>@;:+%\"\\\u00e9"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
    if pick == 2:                                      # tel: URIs
        return "tel:" + _user(rng) + rng.choice(["", ";ext=22", ";phone-context=+1"])
    if pick == 3:                                      # a bare number
        return _user(rng)
    scheme = rng.choice(["sip"] * 8 + ["sips", "SIP", "Sip", "sips", "tel", "mailto", "http"])
    uri = f"{scheme}:{_user(rng)}@{_host(rng)}"
    if rng.random() < 0.1:                             # a second "@", or a "<" in the URI
        uri += rng.choice(["@x", "<x>", "@", "<", ">"])
    shape = rng.randrange(12)
    if shape < 5:
        out = uri
    elif shape < 8:
        out = f"<{uri}>"
    elif shape == 8:
        out = rng.choice(['"Bob"', "Bob", '"Smith, Bob"', '"a<b"', '"a\\"<b"', '"a>b"', '"x@y"', '""',
                          '"\\\\"', "Bob Smith", '"\u00c9milie"']) + rng.choice([" ", "", "  "]) + f"<{uri}>"
    elif shape == 9:
        out = f"<{uri}" + rng.choice(["", " ", ";tag=1"])          # no closing ">"
    elif shape == 10:
        out = f"<{uri}>" + rng.choice([";tag=1", ";tag=a@b", ">", "<sip:+442079460000@x>", " ", ";x=<y>"])
    else:
        out = rng.choice([" ", "\t", "\n", ""]) + uri + rng.choice([" ", "\r\n", "", "\n"])
    return out


def uri_corpus(n: int, seed: int) -> list:
    rng = random.Random(seed)
    return [_uri(rng) for _ in range(n)]


def test_plain_uri_fast_path_is_the_general_parser():
    """Wherever _PLAIN_URI matches, its digits are what _uri_user and
    _dial_string make of the URI; and _number_of (which takes the fast path
    when it matches) gives what the general parser's dial string gives, for
    every URI of the corpus."""
    hits = {1: 0, 2: 0}
    misses = 0
    for uri in uri_corpus(60_000, seed=21):
        want = L._dial_string(L._uri_user(uri))
        m = L._PLAIN_URI.match(uri) if isinstance(uri, str) else None
        if m is not None:
            hits[m.lastindex] += 1
            assert (m[1] or m[2]) == want, (uri, m[1] or m[2], want)
        else:
            misses += 1
        for region, cc in (("US", 1), ("GB", 44)):
            assert L._number_of(uri, region, cc) == (want and L._number(want, region, cc)), (uri, region)
    # both shapes of the fast path, and the general parser, all well exercised
    assert min(hits.values()) > 5_000 and misses > 20_000, (hits, misses)


@pytest.mark.parametrize("uri,dial", [
    ("sip:2000001@10.2.0.1", "2000001"),
    ("sip:+13125550100@sbc.example.net;user=phone", "+13125550100"),
    ("sips:+13125550100@[2001:db8::1]:5061", "+13125550100"),
    ("<sip:+442079460000@x>;tag=1", "+442079460000"),
    ('"Bob" <sip:12125550100@h;user=phone>', "12125550100"),
    ('"Smith, Bob" <sip:2000001@h', "2000001"),   # no ">": the rest of the value
    ("sip:1234@h<sip:99@x>", "99"),                 # a "<" anywhere: the URI is the one inside
])
def test_plain_uri_shapes_take_the_fast_path(uri, dial):
    m = L._PLAIN_URI.match(uri)
    assert m is not None and (m[1] or m[2]) == dial == L._dial_string(L._uri_user(uri))


@pytest.mark.parametrize("uri", [
    "sip:1234@h;x=a@b",           # the user part ends at the last "@": "1234@h;x=a"
    "sip:1234@h>x@y",
    '"a<b" <sip:1234@h>',         # the first "<" is inside the quotes
    "<sip:1234@h@x>",
    "SIP:1234@h",                 # upper-case scheme: the general parser reads it
    " sip:1234@h",
    "sip:1-234@h",
    "sip:%2B1234@h",
    "sip:1234;phone-context=+1@h",
    "sip:1234:pw@h",
    "tel:+13125550100",
    "sip:123456789012345678901@h",   # 21 digits
    "sip:\u0661\u0662\u0663\u0664@h",
])
def test_other_shapes_take_the_general_parser(uri):
    assert L._PLAIN_URI.match(uri) is None


# ------------------------------------------------------------------ whole labels()


def _reference_number_of(uri, region: str, cc: int):
    """The number in a URI by the general parser and phonenumbers' public API
    (00, and 011 in NANP, read as international prefixes, as documented)."""
    dial = L._dial_string(L._uri_user(uri))
    if dial is None:
        return None
    if dial.startswith("00"):
        dial = "+" + dial[2:]
    elif dial.startswith("011") and cc == 1:
        dial = "+" + dial[3:]
    if dial == "+":
        return None
    got = _reference_number(dial, region)
    if got is None:
        return None
    ncc, nsn, nregion, tollfree = got
    return L._Number(f"+{ncc}{nsn}", ncc, nsn, nregion, tollfree)


def reference_labels(cfg: LabelConfig, info: InviteInfo) -> tuple:
    """labels() as it was before its fast paths (the body of the base
    commit's LabelConfig.labels), numbers by _reference_number_of."""
    headers = info.headers or {}
    src_ip, dst_ip = L._ip(info.src), L._ip(info.dst)
    direction = L.UNKNOWN
    if cfg.platform_networks:
        if L._in_nets(src_ip, cfg.platform_networks):
            direction = "outbound"
        elif L._in_nets(dst_ip, cfg.platform_networks):
            direction = "inbound"
    if direction == "inbound":
        remotes = ((src_ip, info.sport),)
    elif direction == "outbound":
        remotes = ((dst_ip, info.dport),)
    else:
        remotes = ((src_ip, info.sport), (dst_ip, info.dport))
    trunk = cfg._match_remote(cfg.trunks, remotes, headers)
    provider = cfg._match_remote(cfg.providers, remotes, headers)

    region, cc = cfg.default_country, phonenumbers.country_code_for_region(cfg.default_country)
    dest = _reference_number_of(info.request_uri, region, cc) or _reference_number_of(info.to_uri, region, cc)
    orig = None
    pai_host = None
    pai_values = headers.get(L.PAI)
    if isinstance(pai_values, str):
        pai_values = (pai_values,)
    if pai_values:
        for raw in pai_values:
            if not isinstance(raw, str):
                continue
            for ident in L._split_addresses(raw) if "," in raw else (raw,):
                if orig is None:
                    orig = _reference_number_of(ident, region, cc)
                if pai_host is None:
                    pai_host = L._uri_host(ident)
    if orig is None:
        orig = _reference_number_of(info.from_uri, region, cc)
    account = L.UNKNOWN
    for rule in cfg.accounts:
        if any(cfg._account_cond(c, trunk, headers, pai_host, orig) for c in rule.conds):
            account = rule.name
            break
    return (account, trunk, provider, L._zone(dest, orig), direction,
            dest.region if dest is not None and dest.region else L.UNKNOWN,
            orig.region if orig is not None and orig.region else L.UNKNOWN)


def random_invites(n: int, seed: int) -> list:
    """INVITEs from and to addresses every rule of the example looks at, with
    URIs of the corpus (half of them plain numbers, the common case) and
    headers the example's rules read."""
    rng = random.Random(seed)
    addresses = ["198.51.100.7", "192.0.2.10", "203.0.113.9", "10.1.2.3", "192.0.2.99", "::1",
                 "::ffff:192.0.2.10", "2001:db8::5", "not an ip", "", " 10.0.0.1 "]
    corpus = uri_corpus(4 * n, seed)

    def uri():
        if rng.random() < 0.5:
            user = _digits_user(rng, rng.choice(_USERS_CLEAN))
            return rng.choice([f"sip:{user}@10.2.0.1", f"sip:{user}@h;user=phone", f"<sip:{user}@h>;tag=9",
                               f'"X" <sip:{user}@h>'])
        return rng.choice(corpus)

    def header(name):
        values = {"x-trunk": ["cust_x", "zzz", " cust_x ", "CUST_X"],
                  "x-account": ["67890", "1", " 67890"],
                  "p-asserted-identity": [None, "<sip:+13125550100@example.com>", "sip:1@EXAMPLE.COM.",
                                          '"A, B" <sip:+442079460000@x>, <tel:+13125550100>']}[name]
        got = [v if v is not None else uri() for v in rng.choices(values, k=rng.randint(0, 2))]
        return got[0] if got and rng.random() < 0.2 else got

    out = []
    for _ in range(n):
        headers = {k: header(k) for k in ("x-trunk", "x-account", "p-asserted-identity") if rng.random() < 0.4}
        out.append(InviteInfo(src=rng.choice(addresses), sport=rng.choice([5060, 5080, 0]),
                              dst=rng.choice(addresses), dport=rng.choice([5060, 5080]),
                              request_uri=uri(), from_uri=uri(), to_uri=uri(), headers=headers))
    return out


CONFIGS = {
    "default": None,
    "example": EXAMPLE.read_text(),
    "gb": "default_country: GB\nplatform: {addresses: [192.0.2.10]}\n"
          "accounts: [{name: uk, match: {number_prefix: '+44'}}]\n",
    "providers only": "providers: [{name: p1, match: {cidr: 203.0.113.0/24, port: 5080}}]\n"
                      "accounts: [{name: a1, match: {header: {name: X-Account, value: '67890'}}}]\n",
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_labels_are_the_general_paths_labels(config, tmp_path):
    """labels() against reference_labels on random INVITEs, under the default
    configuration, the example's and two more (GB national numbers; rules
    only for providers)."""
    if CONFIGS[config] is None:
        cfg = LabelConfig.default()
    else:
        path = tmp_path / "warpsniff.yml"
        path.write_text(CONFIGS[config])
        cfg = LabelConfig.load(str(path))
    seen = set()
    for info in random_invites(4000, seed=list(CONFIGS).index(config)):
        got = cfg.labels(info)
        want = reference_labels(cfg, info)
        assert tuple(getattr(got, f) for f in ("account", "trunk", "provider", "zone", "direction",
                                               "destination_country", "origination_country")) == want, info
        seen.add(want)
    assert len(seen) > 20, seen   # many different label sets, not one repeated
