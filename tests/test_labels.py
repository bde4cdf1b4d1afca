"""Call labels (docs/labels.md): every rule checked with hand-written INVITEs
whose expected labels are worked out from the rules, plus config validation
with the exact YAML path in each error.

`python3 tests/test_labels.py` prints the labelling rate (10,000 INVITEs,
all numbers distinct, cold caches); the tests themselves assert no timing."""
from __future__ import annotations

import random
import re
import string
import sys
import time
from pathlib import Path

import phonenumbers
import pytest

from warpsniff.labels import (UNKNOWN, ZONES, CallLabels, ConfigError, InviteInfo, LabelConfig)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "deploy" / "warpsniff.example.yml"

PLATFORM = "192.0.2.10"      # in the example's platform.addresses
CARRIER = "198.51.100.7"     # carrier_a's network
PROVIDER = "203.0.113.9"     # prov1's network
ELSEWHERE = "192.0.2.99"     # not platform, no trunk, no provider


def invite(src=CARRIER, dst=PLATFORM, *, sport=5060, dport=5060, ruri=None, frm=None, to=None,
           headers=None) -> InviteInfo:
    return InviteInfo(src=src, sport=sport, dst=dst, dport=dport, request_uri=ruri, from_uri=frm,
                      to_uri=to, headers=headers or {})


def call(cfg, caller, callee, **kw) -> CallLabels:
    """A call from number `caller` (From) to number `callee` (Request-URI)."""
    return cfg.labels(invite(ruri=f"sip:{callee}@sbc.example.net;user=phone",
                             frm=f"sip:{caller}@carrier.example", **kw))


@pytest.fixture(scope="module")
def example():
    return LabelConfig.load(str(EXAMPLE))


@pytest.fixture(scope="module")
def plain():
    return LabelConfig.default()


def load_text(tmp_path, text: str, name: str = "warpsniff.yml") -> LabelConfig:
    path = tmp_path / name
    path.write_text(text)
    return LabelConfig.load(str(path))


# ------------------------------------------------------------------ configuration


def test_defaults_without_a_file(plain):
    assert plain.default_country == "US"
    assert plain.header_names == frozenset({"p-asserted-identity"})
    assert plain.short_call_thresholds == (6,)
    assert plain.max_label_sets == 10000
    assert plain.call_series_retention_s == 300
    assert plain.ner_codes == frozenset({200, 486, 600, 603, 480})
    assert plain.min_billable_seconds == 0
    assert plain.platform_networks == ()
    assert plain.rtpengine == [] and plain.kamailio == []


def test_empty_file_is_the_defaults(tmp_path):
    cfg = load_text(tmp_path, "# nothing configured\n")
    d = LabelConfig.default()
    for attr in ("default_country", "header_names", "short_call_thresholds", "max_label_sets",
                 "call_series_retention_s", "ner_codes", "min_billable_seconds", "platform_networks"):
        assert getattr(cfg, attr) == getattr(d, attr), attr


def test_example_file_loads(example):
    import ipaddress
    assert example.default_country == "US"
    assert example.platform_networks == (ipaddress.ip_network("192.0.2.10/32"), ipaddress.ip_network("10.0.0.0/8"))
    assert example.header_names == frozenset({"p-asserted-identity", "x-trunk", "x-account"})
    assert example.short_call_thresholds == (6, 10, 30)
    assert example.call_series_retention_s == 300.0
    assert example.ner_codes == frozenset({200, 486, 600, 603, 480})
    assert example.max_label_sets == 10000
    assert example.min_billable_seconds == 0.0
    assert example.rtpengine == [] and example.kamailio == []
    assert [r.name for r in example.trunks] == ["carrier_a", "cust_x"]
    assert [r.name for r in example.accounts] == ["12345", "67890", "555", "777"]
    assert [r.name for r in example.providers] == ["prov1"]


def test_docs_example_is_the_shipped_file():
    """docs/labels.md shows the whole example file; keep them the same."""
    doc = (REPO / "docs" / "labels.md").read_text()
    assert EXAMPLE.read_text().strip() in doc


def test_values_read_from_yaml(tmp_path):
    cfg = load_text(tmp_path, """
default_country: no            # Norway, not a boolean
platform: {addresses: 2001:db8::/32}
trunks:
  - {name: 0123, match: {header: {name: X-TRUNK, value: [007, "b c"]}}}
accounts:
  - {name: 42, match: {trunk: "0123", number_prefix: +44}}
metrics: {short_call_thresholds: [30, 6, 10.5], ner_codes: 200, call_series_retention_seconds: 60}
limits: {max_label_sets: 50}
billing: {min_billable_seconds: 1.5}
rtpengine: [{url: "http://127.0.0.1:9900", interval: 10}]
kamailio: [{socket: /run/kamailio/ctl}]
""")
    assert cfg.default_country == "NO"
    assert [str(n) for n in cfg.platform_networks] == ["2001:db8::/32"]
    assert [r.name for r in cfg.trunks] == ["0123"]          # as written, not octal 83
    assert cfg.trunks[0].conds[0].header == ("x-trunk", frozenset({"007", "b c"}))
    assert "x-trunk" in cfg.header_names
    assert [r.name for r in cfg.accounts] == ["42"]
    assert cfg.accounts[0].conds[0].prefixes == ("+44",)    # as written, even unquoted
    assert cfg.short_call_thresholds == (6, 10.5, 30)
    assert cfg.ner_codes == frozenset({200})
    assert cfg.call_series_retention_s == 60.0
    assert cfg.max_label_sets == 50
    assert cfg.min_billable_seconds == 1.5
    assert cfg.rtpengine == [{"url": "http://127.0.0.1:9900", "interval": 10}]
    assert type(cfg.rtpengine[0]["interval"]) is int
    assert cfg.kamailio == [{"socket": "/run/kamailio/ctl"}]


THREE_TRUNKS = """
trunks:
  - {name: a, match: {cidr: [198.51.100.0/24]}}
  - {name: b, match: {port: 5080}}
  - name: c
    match: {cidr: %s}
"""

BAD_CONFIGS = [
    # (YAML, the path named, a phrase of the problem)
    ("trunkz: []", "(top level)", "unknown key trunkz"),
    ("- 1\n- 2", "(top level)", "must be a mapping"),
    ("platform: {adresses: [192.0.2.1]}", "platform", "unknown key adresses"),
    ("platform: {addresses: [192.0.2.1, 192.0.2.300]}", "platform.addresses[1]", "not a valid IP address or CIDR"),
    (THREE_TRUNKS % "[10.0.0.0/8, 10.0.0.300/8]", "trunks[2].match.cidr[1]", "'10.0.0.300/8' is not a valid"),
    (THREE_TRUNKS % "10.0.0.0/33", "trunks[2].match.cidr", "'10.0.0.0/33' is not a valid"),
    (THREE_TRUNKS % "[10.0.0.1/8]", "trunks[2].match.cidr[0]", "host bits set (did you mean 10.0.0.0/8?)"),
    (THREE_TRUNKS % "[]", "trunks[2].match.cidr", "must not be empty"),
    ("trunks: [{name: a, match: {cidrs: [10.0.0.0/8]}}]", "trunks[0].match", "unknown key cidrs"),
    ("trunks: [{name: a, match: {port: 70000}}]", "trunks[0].match.port", "70000 is out of range 1-65535"),
    ("trunks: [{name: a, match: {port: 0}}]", "trunks[0].match.port", "0 is out of range 1-65535"),
    ("trunks: [{name: a, match: {port: [5060, 99999]}}]", "trunks[0].match.port[1]", "out of range"),
    ("trunks: [{name: a, match: {port: '5060'}}]", "trunks[0].match.port", "must be an integer"),
    ("trunks: [{name: '', match: {port: 5060}}]", "trunks[0].name", "must not be empty"),
    ("trunks: [{match: {port: 5060}}]", "trunks[0]", "missing 'name'"),
    ("trunks: [{name: a}]", "trunks[0]", "missing 'match'"),
    ("trunks: [{name: a, match: {}}]", "trunks[0].match", "needs at least one of cidr, port, header"),
    ("trunks: [{name: a, match: []}]", "trunks[0].match", "must not be an empty list"),
    ("trunks: [{name: a, match: {port: 5060}}, {name: a, match: {port: 5061}}]", "trunks[1].name",
     "duplicate name 'a' (also trunks[0].name)"),
    ("trunks: [{name: 'carrier a', match: {port: 5060}}]", "trunks[0].name", "not a valid name"),
    ('trunks: [{name: "x\\"}", match: {port: 5060}}]', "trunks[0].name", "not a valid name"),
    ("trunks: [{name: unknown, match: {port: 5060}}]", "trunks[0].name", "reserved"),
    ("providers: [{name: other, match: {port: 5060}}]", "providers[0].name", "reserved"),
    ("providers: [{name: true, match: {port: 5060}}]", "providers[0].name", "must be a name string"),
    ("providers: [{name: " + "p" * 129 + ", match: {port: 5060}}]", "providers[0].name", "not a valid name"),
    ("trunks: [{name: a, match: {header: {name: X-Trunk}}}]", "trunks[0].match.header", "missing 'value'"),
    ("trunks: [{name: a, match: {header: {name: X Trunk, value: a}}}]", "trunks[0].match.header.name",
     "not a valid SIP header name"),
    ("trunks: [{name: a, match: {header: {name: X-T, value: a, regex: true}}}]", "trunks[0].match.header",
     "unknown key regex"),
    ("trunks: [{name: a, match: {trunk: b}}]", "trunks[0].match", "unknown key trunk"),
    ("accounts: [{name: '1', match: {cidr: [10.0.0.0/8]}}]", "accounts[0].match", "unknown key cidr"),
    ("accounts: [{name: '1', match: {trunk: nope}}]", "accounts[0].match.trunk", "no trunk is named 'nope'"),
    ("accounts: [{name: '1', match: {number_prefix: '1312'}}]", "accounts[0].match.number_prefix",
     "not an E.164 prefix"),
    ("accounts: [{name: '1', match: {number_prefix: ['+1312', '+44 20']}}]", "accounts[0].match.number_prefix[1]",
     "not an E.164 prefix"),
    ("accounts: [{name: '1', match: {number_prefix: '+0'}}]", "accounts[0].match.number_prefix",
     "not an E.164 prefix"),
    ("accounts: [{name: '1', match: {pai_domain: 'exa mple.com'}}]", "accounts[0].match.pai_domain",
     "not a valid domain"),
    ("accounts: [{name: '1', match: [{pai_domain: a.com}, {number_prefix: '+44', port: 1}]}]",
     "accounts[0].match[1]", "unknown key port"),
    ("default_country: USA", "default_country", "not an ISO 3166 region code"),
    ("default_country: XX", "default_country", "not an ISO 3166 region code"),
    ("metrics: {short_call_thresholds: [6, 0]}", "metrics.short_call_thresholds[1]", "must be a positive number"),
    ("metrics: {short_call_thresholds: [-5]}", "metrics.short_call_thresholds[0]", "must be a positive number"),
    ("metrics: {short_call_thresholds: [six]}", "metrics.short_call_thresholds[0]", "must be a number"),
    ("metrics: {short_call_thresholds: [true]}", "metrics.short_call_thresholds[0]", "must be a number"),
    ("metrics: {short_call_thresholds: [.nan]}", "metrics.short_call_thresholds[0]", "must be a number"),
    ("metrics: {short_call_thresholds: []}", "metrics.short_call_thresholds", "at least one threshold"),
    ("metrics: {short_call_thresholds: [6, 6]}", "metrics.short_call_thresholds[1]", "duplicate threshold"),
    ("metrics: {ner_codes: [200, 700]}", "metrics.ner_codes[1]", "700 is out of range 200-699"),
    ("metrics: {call_series_retention_seconds: 0}", "metrics.call_series_retention_seconds", "positive"),
    ("metrics: {short_call_threshold: [6]}", "metrics", "unknown key short_call_threshold"),
    ("limits: {max_label_sets: 0}", "limits.max_label_sets", "out of range"),
    ("limits: {max_label_sets: 1.5}", "limits.max_label_sets", "must be an integer"),
    ("billing: {min_billable_seconds: -1}", "billing.min_billable_seconds", "at least 0"),
    ("rtpengine: {url: x}", "rtpengine", "must be a list"),
    ("kamailio: [socket]", "kamailio[0]", "must be a mapping"),
]


@pytest.mark.parametrize("text,where,problem", BAD_CONFIGS, ids=[b[1] + ":" + b[2] for b in BAD_CONFIGS])
def test_config_errors_name_file_path_and_problem(tmp_path, text, where, problem):
    path = tmp_path / "bad.yml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        LabelConfig.load(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert problem in message, message
    assert err.value.where == where
    assert isinstance(err.value, ValueError)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("trunks:\n  - name: a\n    match: {cidr: [10.0.0.0/8\n")
    with pytest.raises(ConfigError) as err:
        LabelConfig.load(str(path))
    assert str(err.value).startswith(f"{path}: line ")
    assert "invalid YAML" in str(err.value)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("default_country: US\nplatform: {addresses: []}\ndefault_country: GB\n")
    with pytest.raises(ConfigError) as err:
        LabelConfig.load(str(path))
    assert "duplicate key 'default_country' (first at line 1)" in str(err.value)
    assert "line 3" in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as err:
        LabelConfig.load(str(path))
    assert str(err.value).startswith(f"{path}: cannot read the file")


# ------------------------------------------------------------------ direction, trunk, provider


def test_inbound_from_a_carrier(example):
    got = call(example, "+13125550100", "+12125550100", src=CARRIER, dst=PLATFORM)
    assert got == CallLabels(account="777", trunk="carrier_a", provider=UNKNOWN, zone="INTERSTATE",
                             direction="inbound", destination_country="US", origination_country="US")


def test_trunk_port_must_match_the_remote_port(example):
    assert call(example, "+13125550100", "+12125550100", sport=5080).trunk == UNKNOWN
    # inbound: the remote is the source, so the destination port does not matter
    assert call(example, "+13125550100", "+12125550100", sport=5060, dport=5080).trunk == "carrier_a"


def test_outbound_uses_the_destination_as_remote(example):
    got = call(example, "+13125550100", "+12125550100", src="10.1.2.3", dst=PROVIDER, sport=5080, dport=5060)
    assert (got.direction, got.trunk, got.provider) == ("outbound", UNKNOWN, "prov1")
    got = call(example, "+13125550100", "+12125550100", src=PLATFORM, dst="198.51.100.20", sport=5080, dport=5060)
    assert (got.direction, got.trunk, got.provider) == ("outbound", "carrier_a", UNKNOWN)
    # the source (a platform address) is never the remote on outbound calls
    got = call(example, "+13125550100", "+12125550100", src=PLATFORM, dst=ELSEWHERE)
    assert (got.direction, got.trunk, got.provider) == ("outbound", UNKNOWN, UNKNOWN)


def test_inbound_from_a_provider_network(example):
    got = call(example, "+13125550100", "+12125550100", src=PROVIDER, dst=PLATFORM)
    assert (got.direction, got.trunk, got.provider) == ("inbound", UNKNOWN, "prov1")


def test_platform_to_platform_is_outbound(example):
    assert call(example, "+1", "+1", src="10.0.0.1", dst=PLATFORM).direction == "outbound"


def test_neither_side_platform_is_unknown_and_tries_source_then_destination(example):
    got = call(example, "+13125550100", "+12125550100", src=CARRIER, dst=PROVIDER)
    assert (got.direction, got.trunk, got.provider) == (UNKNOWN, "carrier_a", "prov1")


def test_no_platform_configured(tmp_path):
    cfg = load_text(tmp_path, """
trunks:
  - {name: internal, match: {cidr: 10.0.0.0/8}}
  - {name: carrier, match: {cidr: 198.51.100.0/24}}
""")
    # every rule is tried on the source first, then on the destination
    got = cfg.labels(invite(src="198.51.100.7", dst="10.0.0.5"))
    assert (got.direction, got.trunk) == (UNKNOWN, "carrier")
    got = cfg.labels(invite(src="10.0.0.5", dst="198.51.100.7"))
    assert (got.direction, got.trunk) == (UNKNOWN, "internal")
    got = cfg.labels(invite(src="192.0.2.1", dst="198.51.100.7"))
    assert (got.direction, got.trunk) == (UNKNOWN, "carrier")
    got = cfg.labels(invite(src="192.0.2.1", dst="192.0.2.2"))
    assert (got.direction, got.trunk) == (UNKNOWN, UNKNOWN)


def test_ipv6_and_v4_mapped_addresses(tmp_path):
    cfg = load_text(tmp_path, """
platform: {addresses: ["2001:db8:1::/48", 192.0.2.10]}
trunks:
  - {name: v6carrier, match: {cidr: "2001:db8:ff::/48"}}
  - {name: v4carrier, match: {cidr: 198.51.100.0/24}}
""")
    got = cfg.labels(invite(src="2001:db8:ff::7", dst="2001:db8:1::10"))
    assert (got.direction, got.trunk) == ("inbound", "v6carrier")
    got = cfg.labels(invite(src="::ffff:198.51.100.7", dst="::ffff:192.0.2.10"))
    assert (got.direction, got.trunk) == ("inbound", "v4carrier")


def test_header_trunk_exact_and_case_sensitive_value(example):
    def trunk_account(value):
        return example.labels(invite(src=ELSEWHERE, headers={"x-trunk": [value]}))
    got = trunk_account("cust_x")
    assert (got.direction, got.trunk, got.account) == ("inbound", "cust_x", "12345")
    assert trunk_account("Cust_X").trunk == UNKNOWN
    assert trunk_account("cust_x2").trunk == UNKNOWN
    assert trunk_account("cust").trunk == UNKNOWN
    assert trunk_account("  cust_x ").trunk == "cust_x"        # surrounding whitespace is not the value
    # any of several header instances may match
    got = example.labels(invite(src=ELSEWHERE, headers={"x-trunk": ["nope", "cust_x"]}))
    assert got.trunk == "cust_x"


def test_address_rule_before_header_rule_wins(example):
    got = example.labels(invite(src=CARRIER, headers={"x-trunk": ["cust_x"]}))
    assert got.trunk == "carrier_a"
    assert got.account == UNKNOWN        # 12345 needs trunk cust_x


def test_header_name_is_case_insensitive(tmp_path):
    cfg = load_text(tmp_path, "trunks: [{name: t1, match: {header: {name: X-tRuNk-ID, value: Abc}}}]")
    assert cfg.header_names == frozenset({"p-asserted-identity", "x-trunk-id"})
    assert cfg.labels(invite(headers={"x-trunk-id": ["Abc"]})).trunk == "t1"
    assert cfg.labels(invite(headers={"x-trunk-id": ["abc"]})).trunk == UNKNOWN


def test_garbage_header_values_yield_unknown(example):
    junk = "\x00';DROP TABLE calls;--{}<script>\u202e" + "A" * 5000
    got = example.labels(invite(src=ELSEWHERE, headers={"x-trunk": [junk], "x-account": [junk, "6789"],
                                                         "p-asserted-identity": [junk]}))
    assert got == CallLabels(direction="inbound")


def test_combined_conditions_must_all_hold(tmp_path):
    cfg = load_text(tmp_path, """
trunks:
  - {name: both, match: {cidr: 198.51.100.0/24, header: {name: X-T, value: v}}}
  - {name: port_only, match: {port: [5070, 5080]}}
""")
    assert cfg.labels(invite(headers={"x-t": ["v"]})).trunk == "both"
    assert cfg.labels(invite(headers={"x-t": ["w"]})).trunk == UNKNOWN
    assert cfg.labels(invite(src="192.0.2.1", headers={"x-t": ["v"]})).trunk == UNKNOWN
    assert cfg.labels(invite(src="192.0.2.1", sport=5080)).trunk == "port_only"


# ------------------------------------------------------------------ accounts


def test_account_by_header(example):
    got = example.labels(invite(src=ELSEWHERE, headers={"x-account": ["67890"]},
                                frm="sip:+13125550100@x"))
    assert got.account == "67890"                   # before the +1312 prefix rule
    assert example.labels(invite(src=ELSEWHERE, headers={"x-account": ["6789"]})).account == UNKNOWN


def test_account_by_pai_domain(example):
    pai = '"Alice" <sip:+14155550100@EXAMPLE.COM;user=phone>'
    got = example.labels(invite(src=ELSEWHERE, headers={"p-asserted-identity": [pai]}))
    assert got.account == "555"
    pai = "<sip:+14155550100@sub.example.com>"      # the host exactly, not a parent domain
    assert example.labels(invite(src=ELSEWHERE, headers={"p-asserted-identity": [pai]})).account == UNKNOWN
    pai = "<tel:+14155550100>, <sip:+14155550100@example.com:5061;transport=tls>"
    assert example.labels(invite(src=ELSEWHERE, headers={"p-asserted-identity": [pai]})).account == "555"
    # the From host is not the PAI host
    assert example.labels(invite(src=ELSEWHERE, frm="sip:+14155550100@example.com")).account == UNKNOWN


def test_account_by_caller_number_prefix(example):
    # caller from P-Asserted-Identity
    pai = "<sip:+13125550100@pbx.example.org>"
    got = example.labels(invite(src=ELSEWHERE, headers={"p-asserted-identity": [pai]}, frm="sip:+4420@x"))
    assert got.account == "777"
    # ... else from From, in any dialled form that normalises to +1312...
    assert example.labels(invite(src=ELSEWHERE, frm="sip:3125550100@x")).account == "777"
    assert example.labels(invite(src=ELSEWHERE, frm="tel:+1-312-555-0100")).account == "777"
    assert example.labels(invite(src=ELSEWHERE, frm="sip:+12125550100@x")).account == UNKNOWN
    # the PAI number wins over From
    got = example.labels(invite(src=ELSEWHERE, frm="sip:+13125550100@x",
                                headers={"p-asserted-identity": ["<sip:+12125550100@pbx.example.org>"]}))
    assert got.account == UNKNOWN


def test_account_first_match_wins(example):
    # matches 12345 (trunk cust_x), 67890 (header), 555 (PAI domain) and 777 (+1312)
    headers = {"x-trunk": ["cust_x"], "x-account": ["67890"],
               "p-asserted-identity": ["<sip:+13125550100@example.com>"]}
    assert example.labels(invite(src=ELSEWHERE, headers=headers)).account == "12345"
    del headers["x-trunk"]
    assert example.labels(invite(src=ELSEWHERE, headers=headers)).account == "67890"
    del headers["x-account"]
    assert example.labels(invite(src=ELSEWHERE, headers=headers)).account == "555"


def test_account_match_list_is_any_of(tmp_path):
    cfg = load_text(tmp_path, """
trunks: [{name: t1, match: {port: 5070}}]
accounts:
  - name: "900"
    match: [{trunk: t1, number_prefix: "+44"}, {pai_domain: [a.example, b.example]}]
""")
    assert cfg.labels(invite(sport=5070, frm="sip:+442079460000@x")).account == "900"
    assert cfg.labels(invite(sport=5070, frm="sip:+13125550100@x")).account == UNKNOWN    # AND
    assert cfg.labels(invite(sport=5060, frm="sip:+442079460000@x")).account == UNKNOWN   # AND
    pai = {"p-asserted-identity": ["<sip:x@B.example>"]}
    assert cfg.labels(invite(sport=5060, headers=pai)).account == "900"                   # OR


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("ruri", [
    "sip:+12125550100@sbc.example.net",
    "sip:+12125550100@sbc.example.net;user=phone",
    "sips:+12125550100@[2001:db8::1]:5061;user=phone",
    "sip:+1-212-555-0100@sbc.example.net;user=phone",
    "sip:+1(212)555.0100@h",
    "sip:%2B12125550100@h",
    "sip:+12125550100;npdi;rn=+12125559999@h;user=phone",
    "tel:+1-212-555-0100",
    "tel:+12125550100;ext=22",
    "tel:555-0100;phone-context=+1-212",
    "sip:2125550100;phone-context=+1@h;user=phone",
    "sip:2125550100;phone-context=example.com@h;user=phone",   # a domain context: national
    "sip:2125550100@h",
    "sip:12125550100@h",
    "sip:1-212-555-0100@h",
    "sip:0012125550100@h",
    "sip:01112125550100@h",
    "<sip:+12125550100@h>",
    '"Bob" <sip:+12125550100@h>;tag=1',
])
def test_destination_number_forms(plain, ruri):
    got = plain.labels(invite(ruri=ruri, frm="sip:+13125550100@x"))
    assert (got.destination_country, got.zone) == ("US", "INTERSTATE")


def test_destination_falls_back_to_to(plain):
    got = plain.labels(invite(ruri="sip:bob@sbc.example.net", to="<sip:+442079460000@x>",
                              frm="sip:+13125550100@x"))
    assert (got.destination_country, got.zone) == ("GB", "INTL")
    got = plain.labels(invite(ruri=None, to="sip:+442079460000@x", frm="sip:+13125550100@x"))
    assert got.destination_country == "GB"
    # a number in the Request-URI wins over To
    got = plain.labels(invite(ruri="sip:+12125550100@x", to="sip:+442079460000@x", frm="sip:+13125550100@x"))
    assert got.destination_country == "US"


def test_origination_from_pai_then_from(plain):
    pai = {"p-asserted-identity": ['"Big Co" <sip:+442079460000@pbx.example.org;user=phone>']}
    got = plain.labels(invite(ruri="sip:+12125550100@x", frm="sip:+13125550100@x", headers=pai))
    assert (got.origination_country, got.zone) == ("GB", "INTL")
    pai = {"p-asserted-identity": ["<sip:anonymous@anonymous.invalid>"]}    # no number: From
    got = plain.labels(invite(ruri="sip:+12125550100@x", frm="sip:+13125550100@x", headers=pai))
    assert (got.origination_country, got.zone) == ("US", "INTERSTATE")
    pai = {"p-asserted-identity": ["<sip:alice@example.com>", "<tel:+442079460000>"]}  # two headers
    got = plain.labels(invite(ruri="sip:+12125550100@x", frm="sip:+13125550100@x", headers=pai))
    assert got.origination_country == "GB"


def test_default_country_reads_national_numbers(tmp_path):
    gb = load_text(tmp_path, "default_country: GB")
    got = gb.labels(invite(ruri="sip:02079460000@x", frm="sip:01134960000@x"))   # London <- Leeds
    assert (got.destination_country, got.origination_country, got.zone) == ("GB", "GB", "INTRASTATE")
    got = gb.labels(invite(ruri="sip:0012125550100@x", frm="sip:01134960000@x"))
    assert (got.destination_country, got.origination_country, got.zone) == ("US", "GB", "INTL")
    # with US the same national digits are not a GB number
    us = LabelConfig.default()
    assert us.labels(invite(ruri="sip:02079460000@x")).destination_country == UNKNOWN


@pytest.mark.parametrize("uri", [
    None, "", "sip:anonymous@anonymous.invalid", "sip:sbc.example.net", "sip:+@x", "sip:*67+12125550100@x",
    "sip:+1212555010O@x", "mailto:+12125550100@x", "sip:+1234567890123456789012@x", "<", ">", ";",
    "sip:@", "tel:", "tel:;phone-context=+1", "sip:+15555550100@x",   # NPA 555 is not a valid area code
])
def test_undeterminable_numbers_are_unknown(plain, uri):
    got = plain.labels(invite(ruri=uri, to=uri, frm="sip:+13125550100@x"))
    assert (got.destination_country, got.zone) == (UNKNOWN, UNKNOWN)
    got = plain.labels(invite(ruri="sip:+12125550100@x", frm=uri))
    assert (got.origination_country, got.zone) == (UNKNOWN, UNKNOWN)


def _reference_number(dial: str, region: str):
    """What the documented rules give, straight from phonenumbers' public API:
    parse() (no default region for + numbers), then the region only when
    number_type() is not UNKNOWN and the region is a real one."""
    try:
        n = phonenumbers.parse(dial, None if dial.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    ntype = phonenumbers.number_type(n)
    code = phonenumbers.region_code_for_number(n)
    valid = ntype != phonenumbers.PhoneNumberType.UNKNOWN and code in phonenumbers.SUPPORTED_REGIONS
    return (n.country_code, phonenumbers.national_significant_number(n), code if valid else None,
            ntype == phonenumbers.PhoneNumberType.TOLL_FREE)


def _dial_strings(rng: random.Random, region: str):
    """Random digit strings shaped like what reaches the number analysis: with
    and without +, the region's own codes and prefixes, every length 3-20."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    own = [str(meta.country_code), meta.national_prefix or "", "".join(filter(str.isdigit, meta.international_prefix or ""))[:4]]
    for _ in range(120):
        head = rng.choice(["", "+", "+1", "+44", "0", "1", "00", "011", "8", "810", *own])
        yield (head + "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 14))))[:20]
    for ntype in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                  phonenumbers.PhoneNumberType.TOLL_FREE):
        example = phonenumbers.example_number_for_type(region, ntype)
        if example is not None:
            nsn = phonenumbers.national_significant_number(example)
            yield f"+{example.country_code}{nsn}"
            yield nsn
            yield (meta.national_prefix or "") + nsn


def test_number_kind_is_phonenumbers_type_helper_in_every_region():
    """labels' one-pattern number kind (_number_kind) against phonenumbers'
    own _number_type_helper, on numbers grown from every region's example
    numbers (valid, toll-free, and their neighbours) and random digits."""
    from phonenumbers.phonenumberutil import _number_type_helper

    import warpsniff.labels as L

    rng = random.Random(5)
    metas = [phonenumbers.PhoneMetadata.metadata_for_region(r) for r in sorted(phonenumbers.SUPPORTED_REGIONS)]
    metas += [phonenumbers.PhoneMetadata.metadata_for_nongeo_region(cc)
              for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    seen = [0, 0, 0]
    for meta in metas:
        seeds = []
        if meta.id != "001":
            for ntype in range(12):
                example = phonenumbers.example_number_for_type(meta.id, ntype)
                if example:
                    seeds.append(phonenumbers.national_significant_number(example))
        for _ in range(400):
            if seeds and rng.random() < 0.7:
                seed = rng.choice(seeds)
                keep = rng.randint(0, len(seed))
                length = rng.choice([len(seed), rng.randint(2, 17)])
                nsn = seed[:keep] + "".join(rng.choice("0123456789") for _ in range(max(0, length - keep)))
            else:
                nsn = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
            want = L._kind_of_type(_number_type_helper(nsn, meta))
            assert L._number_kind(nsn, meta, len(nsn)) == want, (meta.id, nsn)
            seen[want] += 1
    assert min(seen) > 1000, seen   # invalid, toll-free and other valid numbers all well covered


def test_number_analysis_is_phonenumbers_parse_in_every_region():
    """The cheaper number analysis (no generic parse per number) gives what
    parse() + region_code_for_number() + number_type() give, for thousands of
    numbers in every region phonenumbers supports."""
    import warpsniff.labels as L
    rng = random.Random(3)
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        cc = phonenumbers.country_code_for_region(region)
        for dial in _dial_strings(rng, region):
            if not dial.lstrip("+"):
                continue
            got = L._number.__wrapped__(dial, region, cc)
            got = got and (got.cc, got.nsn, got.region, got.tollfree)
            # 00 (and 011 in NANP) read as international prefixes, as documented
            ref_dial = dial
            if dial.startswith("00"):
                ref_dial = "+" + dial[2:]
            elif dial.startswith("011") and cc == 1:
                ref_dial = "+" + dial[3:]
            if ref_dial == "+":
                continue
            assert got == _reference_number(ref_dial, region), (region, dial)
            checked += 1
    assert checked > 30_000


# international prefixes in use; a region takes those its own IDD pattern
# accepts, and its preferred one ("~" there marks waiting for a second tone)
_IDD_CANDIDATES = ("00", "000", "001", "0011", "002", "009", "01", "010", "011", "012", "0111", "810",
                   "119", "99", "16", "1001", "14100", "00195", "99100")


def _split_dial_strings(rng: random.Random, region: str):
    """Digit strings for one default region, built from its metadata so that
    every step of parse's country code and national prefix logic is taken:
    its international prefixes, national prefix (and carrier-code or
    transform-rule shapes after it), its own country code in front of a
    national number, and "+" strings, with random tails."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    cc = str(meta.country_code)
    idds = {c.replace("~", "") for c in _IDD_CANDIDATES + (meta.preferred_international_prefix or "",)
            if meta.international_prefix and re.fullmatch(meta.international_prefix, c.replace("~", ""))}
    idds = sorted(idds) or [""]
    prefixes = sorted({meta.national_prefix or "", "0", "1", "8", "90"})
    all_ccs = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    lengths = [n for n in meta.general_desc.possible_length + meta.general_desc.possible_length_local_only if n >= 4]
    examples = []
    for ntype in range(12):
        example = phonenumbers.example_number_for_type(region, ntype)
        if example is not None:
            examples.append(phonenumbers.national_significant_number(example))
            # the national dialling format: national prefix, carrier codes, AR's "15" ...
            examples.append("".join(filter(str.isdigit, phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.NATIONAL))))

    def digits(n):
        return "".join(rng.choice(string.digits) for _ in range(n))

    def tail(head, lo=4, hi=17):
        return head + digits(max(0, rng.randint(lo, hi) - len(head)))

    for _ in range(150):
        shape = rng.randrange(10)
        if shape == 0:                                   # a plain national string
            yield tail("")
        elif shape == 1:                                 # international prefix, then any country code
            yield tail(rng.choice(idds) + rng.choice(all_ccs + [cc, "0", ""]), 3, 20)
        elif shape == 2:                                 # national prefix (maybe a carrier code after it)
            yield tail(rng.choice(prefixes) + rng.choice(["", digits(1), digits(2), digits(4)]))
        elif shape == 3:                                 # the region's own country code, maybe its prefix after
            yield tail(cc + rng.choice(["", meta.national_prefix or "", "0", "1"]))
        elif shape in (4, 5) and examples:               # around the region's example numbers
            seed = rng.choice(examples)
            cut = rng.randint(len(seed) // 2, len(seed))
            head = rng.choice(["", cc, rng.choice(prefixes), rng.choice(prefixes) + digits(2), rng.choice(idds) + cc])
            yield (head + seed[:cut] + digits(len(seed) - cut))[:20]
        elif shape == 6:                                 # "+" then a country code
            yield "+" + tail(rng.choice(all_ccs + [cc, "1", "44"]), 3, 20)
        elif shape == 7:                                 # "+" then anything (0, IDD, unknown codes ...)
            yield "+" + tail(rng.choice(["", "0", rng.choice(idds), rng.choice(idds) + cc, "999"]), 3, 20)
        elif shape == 8:                                 # a possible or local-only length, maybe after a prefix
            yield rng.choice(prefixes + [""] * 4) + digits(rng.choice(lengths))
        else:                                            # any digits, any length
            yield digits(rng.randint(4, 20))


def _parse_split(dial: str, region):
    try:
        n = phonenumbers.parse(dial, region)
    except phonenumbers.NumberParseException:
        return None
    return n.country_code, phonenumbers.national_significant_number(n)


def test_split_number_is_phonenumbers_parse_in_every_region():
    """_split_number (parse's country code and national prefix logic on
    per-region plans) gives exactly parse() + national_significant_number(),
    with every supported region as the default region, on dial strings made
    to take each of parse's paths ("+" strings also without a region, as
    _number asks for them)."""
    import warpsniff.labels as L
    rng = random.Random(11)
    checked, taken = 0, dict.fromkeys(("as dialled", "prefix stripped", "transformed", "own country code",
                                          "other country code"), 0)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        cc = phonenumbers.country_code_for_region(region)
        for dial in _split_dial_strings(rng, region):
            want = _parse_split(dial, region)
            assert L._split_number(dial, region) == want, (region, dial)
            if dial.startswith("+"):
                assert L._split_number(dial, None) == _parse_split(dial, None), dial
            elif want is not None:   # which path parse took, roughly
                if want[0] != cc:
                    taken["other country code"] += 1
                elif want[1] == dial:
                    taken["as dialled"] += 1
                elif not dial.endswith(want[1]):
                    taken["transformed"] += 1
                elif dial.startswith(str(cc)) and len(want[1]) < len(dial) - 1:
                    taken["own country code"] += 1
                else:
                    taken["prefix stripped"] += 1
            checked += 1
    assert checked > 30_000
    assert min(taken.values()) > 100, taken


# ------------------------------------------------------------------ zones


ZONE_CASES = [
    # caller, callee, zone, destination_country, origination_country
    ("+13125550100", "+12125550100", "INTERSTATE", "US", "US"),      # Chicago, IL -> New York, NY
    ("+13125550100", "+13125550199", "LOCAL", "US", "US"),           # same NPA 312
    ("+13125550100", "+12175550100", "INTRASTATE", "US", "US"),      # 312 and 217 both Illinois
    ("+13125550100", "+18005550100", "TOLLFREE", "US", "US"),
    ("+13125550100", "+18885550100", "TOLLFREE", "US", "US"),
    ("+13125550100", "+442079460000", "INTL", "GB", "US"),
    ("+442079460000", "+13125550100", "INTL", "US", "GB"),
    ("+13125550100", "+14165550100", "INTL", "CA", "US"),            # NANP, but another country
    ("+14165550100", "+16135550100", "INTRASTATE", "CA", "CA"),      # Toronto -> Ottawa, both Ontario
    ("+14165550100", "+16045550100", "INTERSTATE", "CA", "CA"),      # Ontario -> British Columbia
    ("+14165550100", "+14165550111", "LOCAL", "CA", "CA"),
    ("+12025550100", "+13015550100", "INTERSTATE", "US", "US"),      # Washington D.C. -> Maryland
    ("+17875550100", "+19395550100", "INTRASTATE", "PR", "PR"),      # a territory is one "state"
    ("+442079460000", "+441134960000", "INTRASTATE", "GB", "GB"),    # national outside NANP
    ("+33140000000", "+33140000001", "INTRASTATE", "FR", "FR"),
    ("+13125550100", "+80012345678", "TOLLFREE", UNKNOWN, "US"),     # UIFN: non-geographic
]


@pytest.mark.parametrize("caller,callee,zone,dest,orig", ZONE_CASES)
def test_zones(plain, caller, callee, zone, dest, orig):
    got = call(plain, caller, callee)
    assert (got.zone, got.destination_country, got.origination_country) == (zone, dest, orig)


def test_zone_needs_both_ends_except_tollfree(plain):
    got = call(plain, "anonymous", "+18005550100")
    assert (got.zone, got.destination_country, got.origination_country) == ("TOLLFREE", "US", UNKNOWN)
    got = call(plain, "anonymous", "+12125550100")
    assert (got.zone, got.destination_country, got.origination_country) == (UNKNOWN, "US", UNKNOWN)
    got = call(plain, "anonymous", "+442079460000")
    assert (got.zone, got.destination_country, got.origination_country) == (UNKNOWN, "GB", UNKNOWN)


def test_nanp_state_unknown_gives_unknown_zone(plain):
    # a toll-free caller has no state: a different NPA cannot be placed
    got = call(plain, "+18005550100", "+12125550100")
    assert (got.zone, got.origination_country) == (UNKNOWN, "US")


# ------------------------------------------------------------------ closed label sets


def test_label_values_only_from_config_or_closed_sets(example):
    allowed = {
        "account": {r.name for r in example.accounts} | {UNKNOWN},
        "trunk": {r.name for r in example.trunks} | {UNKNOWN},
        "provider": {r.name for r in example.providers} | {UNKNOWN},
        "zone": set(ZONES) | {UNKNOWN},
        "direction": {"inbound", "outbound", UNKNOWN},
        "destination_country": set(phonenumbers.SUPPORTED_REGIONS) | {UNKNOWN},
        "origination_country": set(phonenumbers.SUPPORTED_REGIONS) | {UNKNOWN},
    }
    rng = random.Random(1234)
    alphabet = string.printable + "\x00\u00e9\u202e<>@;:+%"

    def junk():
        pick = rng.random()
        if pick < 0.3:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if pick < 0.6:
            return f"sip:{rng.choice(['+', '', '00', '011'])}{rng.randint(0, 10 ** 15)}@h"
        if pick < 0.8:
            return f"tel:{rng.randint(0, 10 ** 9)};phone-context={junk() if rng.random() < .3 else '+44'}"
        return rng.choice([None, "", "<sip:+13125550100@example.com>", "cust_x", "67890"])

    for _ in range(3000):
        info = InviteInfo(
            src=rng.choice([CARRIER, PLATFORM, PROVIDER, "10.9.9.9", "::1", "not an ip", ""]),
            sport=rng.choice([5060, 0, 65535, -1]), dst=rng.choice([PLATFORM, "fe80::1", "x"]),
            dport=rng.choice([5060, 5080]), request_uri=junk(), from_uri=junk(), to_uri=junk(),
            headers={k: [junk() or "" for _ in range(rng.randint(0, 2))]
                     for k in ("x-trunk", "x-account", "p-asserted-identity") if rng.random() < 0.7})
        got = example.labels(info)
        for name, values in allowed.items():
            assert getattr(got, name) in values, (name, getattr(got, name), info)


# ------------------------------------------------------------------ volume


def make_invites(n: int, seed: int = 7) -> list:
    """n INVITEs, half inbound from carrier_a, half outbound to prov1, with
    distinct-looking numbers (US across many NPAs, some UK, some toll-free)."""
    rng = random.Random(seed)
    npas = [312, 212, 217, 415, 646, 713, 305, 617, 800, 888, 202, 404, 416, 604]

    def number():
        if rng.random() < 0.1:
            return "+44207946%04d" % rng.randint(0, 9999)
        return "+1%d%d%04d" % (rng.choice(npas), rng.randint(200, 999), rng.randint(0, 9999))

    out = []
    for i in range(n):
        inbound = i % 2 == 0
        out.append(InviteInfo(
            src="198.51.100.%d" % (i % 250) if inbound else "10.1.2.3", sport=5060,
            dst=PLATFORM if inbound else "203.0.113.%d" % (i % 250), dport=5060,
            request_uri="sip:%s@sbc.example.net;user=phone" % number(),
            from_uri="sip:%s@carrier.example" % number(), to_uri="sip:bob@sbc.example.net",
            headers={"p-asserted-identity": ['"Caller" <sip:%s@example.com;user=phone>' % number()],
                     "x-trunk": ["cust_x"] if i % 3 == 0 else ["zzz"]}))
    return out


def test_ten_thousand_invites(example):
    invites = make_invites(10_000)
    labels = [example.labels(i) for i in invites]
    assert len(labels) == 10_000
    assert {lab.direction for lab in labels} == {"inbound", "outbound"}
    assert {lab.trunk for lab in labels[0::2]} == {"carrier_a"}
    assert {lab.provider for lab in labels[1::2]} == {"prov1"}
    assert {"INTERSTATE", "INTL", "TOLLFREE"} <= {lab.zone for lab in labels}


def bench(n: int = 10_000) -> None:
    import warpsniff.labels as L
    cfg = LabelConfig.load(str(EXAMPLE))
    invites = make_invites(n)
    t0 = time.perf_counter()
    L._nanp_state(L._number("+13125550100", "US", 1))    # one-time geocoder load, not per call
    print(f"geocoder data load: {time.perf_counter() - t0:.2f} s")
    for rounds, label in ((1, "cold caches (every number new)"), (3, "warm caches (numbers seen before)")):
        if rounds == 1:
            L._number.cache_clear()
            L._state_cache.clear()
            L._ip.cache_clear()
        t0 = time.perf_counter()
        for _ in range(rounds):
            for info in invites:
                cfg.labels(info)
        dt = (time.perf_counter() - t0) / rounds
        print(f"{label}: {n} INVITEs in {dt:.3f} s = {n / dt:,.0f} INVITEs/s")


if __name__ == "__main__":
    bench(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
