"""Call labels for the Prometheus call metrics: account, trunk, provider, zone,
direction, destination_country, origination_country (see
../docs/labels.md and the "Call Metrics" contract).

Pure Python; the SIP layer hands `LabelConfig.labels()` an `InviteInfo` for
each initial INVITE and gets a `CallLabels` back.

Configuration file (YAML; every key optional, unknown keys are errors)::

    default_country: US            # ISO region for numbers without a + / 00 / 011 prefix
    platform:
      addresses: [192.0.2.10, 10.0.0.0/8]   # our own SBC/proxy addresses (IPs or CIDRs)
    trunks:                        # first match wins
      - name: carrier_a
        match: {cidr: [198.51.100.0/24], port: 5060}     # remote address (and optional port)
      - name: cust_x
        match: {header: {name: X-Trunk, value: cust_x}}  # a SIP header value on the INVITE
    accounts:                      # first match wins
      - {name: "12345", match: {trunk: cust_x}}
      - {name: "67890", match: {header: {name: X-Account, value: "67890"}}}
      - {name: "555", match: {pai_domain: example.com}}  # P-Asserted-Identity host
      - {name: "777", match: {number_prefix: "+1312"}}   # caller number in E.164
    providers:                     # first match wins; same match keys as trunks
      - {name: prov1, match: {cidr: [203.0.113.0/24]}}
    metrics: {short_call_thresholds: [6, 10, 30], call_series_retention_seconds: 300,
              ner_codes: [200, 486, 600, 603, 480]}
    limits: {max_label_sets: 10000}
    billing: {min_billable_seconds: 0}
    rtpengine: []                  # lists of mappings, kept raw for the collectors
    kamailio: []

Match keys.  Trunks and providers: ``cidr`` (one network or a list), ``port``
(one port or a list), ``header`` ({name, value}; value one string or a
list).  Accounts: ``trunk`` (a trunk name or list), ``header``,
``pai_domain`` (a domain or list), ``number_prefix`` ("+digits" or list).
All keys given in one ``match`` mapping must hold (AND); a list of values
for one key matches any of them (OR); ``match`` may also be a list of
mappings, any of which matches (OR).

Label values only ever come from the configuration (names) or from closed
sets (zones, directions, ISO region codes known to phonenumbers, "unknown"):
nothing read off the wire becomes a label value, so the label cardinality
is bounded by the configuration.
"""
from __future__ import annotations

import functools
import ipaddress
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import unquote

import phonenumbers
import yaml
from phonenumbers import PhoneNumberType

__all__ = ["ConfigError", "InviteInfo", "CallLabels", "LabelConfig", "ZONES", "DIRECTIONS", "UNKNOWN"]

UNKNOWN = "unknown"
ZONES = ("INTERSTATE", "INTRASTATE", "LOCAL", "INTL", "TOLLFREE")
DIRECTIONS = ("inbound", "outbound")
PAI = "p-asserted-identity"
MAX_SHARED_LABEL_SETS = 65536   # distinct CallLabels kept for sharing (they are few: labels are closed sets)

DEFAULT_NER_CODES = frozenset({200, 486, 600, 603, 480})
DEFAULT_SHORT_CALL_THRESHOLDS = (6,)
DEFAULT_MAX_LABEL_SETS = 10000
DEFAULT_RETENTION_S = 300.0

_RESERVED_NAMES = {UNKNOWN: "it is the value of labels that match nothing",
                   "other": "it is the value label sets fold into beyond limits.max_label_sets"}
_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!%*_+`'~.-]+\Z")          # RFC 3261 token
_DOMAIN_RE = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?\Z")
_PREFIX_RE = re.compile(r"\+[1-9][0-9]{0,14}\Z")
_SEPARATORS = str.maketrans("", "", "-.() \t/")
_DIGITS_RE = re.compile(r"\+?[0-9]{1,20}\Z")


# --------------------------------------------------------------------- public types


class ConfigError(ValueError):
    """A configuration problem: ``<file>: <yaml path>: <what is wrong>``."""

    def __init__(self, source: str, where: str, problem: str):
        self.source = source
        self.where = where
        self.problem = problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


@dataclass(slots=True)
class InviteInfo:
    """What the SIP layer knows of an initial INVITE (made for one labels()
    call and dropped: not frozen, which would double what it costs to make)."""
    src: str
    sport: int
    dst: str
    dport: int
    request_uri: Optional[str]
    from_uri: Optional[str]
    to_uri: Optional[str]
    headers: Mapping[str, list]   # lower-case name -> raw values, only LabelConfig.header_names


@dataclass(frozen=True)
class CallLabels:
    account: str = UNKNOWN
    trunk: str = UNKNOWN
    provider: str = UNKNOWN
    zone: str = UNKNOWN
    direction: str = UNKNOWN
    destination_country: str = UNKNOWN
    origination_country: str = UNKNOWN


# --------------------------------------------------------------------- YAML loading


class _TextInt(int):
    """An int that remembers how it was written (so `name: 0123` is "0123")."""
    text: str

    def __new__(cls, value: int, text: str):
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and integers (so `NO` is
    Norway, not false, and `0123` is not octal) and duplicate keys refused."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int",
                              re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return _TextInt(int(text[2:], 8), text)
    if text.startswith("0x"):
        return _TextInt(int(text[2:], 16), text)
    return _TextInt(int(text, 10), text)


def _construct_bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar",
                                                    key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _plain(value):
    """Raw sections handed on: _TextInt back to int, containers copied."""
    if isinstance(value, _TextInt):
        return int(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------- validation helpers


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise ConfigError(self.source, where, problem)

    def mapping(self, value, where: str, allowed: Iterable[str], *, none_ok: bool = True) -> dict:
        if value is None and none_ok:
            return {}
        if not isinstance(value, dict):
            self.fail(where or "(top level)", f"must be a mapping, not {_kind(value)}")
        bad = [k for k in value if not isinstance(k, str) or k not in allowed]
        if bad:
            names = ", ".join(repr(k) if not isinstance(k, str) else k for k in bad)
            self.fail(where or "(top level)",
                      f"unknown key{'s' if len(bad) > 1 else ''} {names} (allowed: {', '.join(sorted(allowed))})")
        return value

    def seq(self, value, where: str, *, scalar_ok: bool = False) -> List[Tuple[str, Any]]:
        """[(path, item)] for a list (or, when scalar_ok, a single value)."""
        if isinstance(value, list):
            return [(f"{where}[{i}]", v) for i, v in enumerate(value)]
        if scalar_ok and value is not None and not isinstance(value, dict):
            return [(where, value)]
        self.fail(where, f"must be a list, not {_kind(value)}")

    def text(self, value, where: str, what: str = "a string") -> str:
        if isinstance(value, _TextInt):
            return value.text
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        self.fail(where, f"must be {what}, not {_kind(value)} {value!r} (quote it)")

    def name(self, value, where: str) -> str:
        name = self.text(value, where, "a name string")
        if not name:
            self.fail(where, "must not be empty")
        if not _NAME_RE.match(name):
            self.fail(where, f"{name!r} is not a valid name: use 1-128 characters from A-Z a-z 0-9 _ . : - "
                             f"(names become label values)")
        if name in _RESERVED_NAMES:
            self.fail(where, f"{name!r} is reserved: {_RESERVED_NAMES[name]}")
        return name

    def number(self, value, where: str, *, positive: bool = False, minimum: Optional[float] = None):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, f"must be a number, not {_kind(value)} {value!r}")
        if positive and value <= 0:
            self.fail(where, f"must be a positive number, not {value!r}")
        if minimum is not None and value < minimum:
            self.fail(where, f"must be at least {minimum:g}, not {value!r}")
        return int(value) if isinstance(value, int) else float(value)

    def integer(self, value, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, not {_kind(value)} {value!r}")
        if not lo <= value <= hi:
            self.fail(where, f"{int(value)} is out of range {lo}-{hi}")
        return int(value)

    def network(self, value, where: str):
        text = self.text(value, where, "an IP address or CIDR string").strip()
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            try:
                fixed = ipaddress.ip_network(text, strict=False)
            except ValueError:
                self.fail(where, f"{text!r} is not a valid IP address or CIDR network ({e})")
            self.fail(where, f"{text!r} has host bits set (did you mean {fixed}?)")

    def country(self, value, where: str) -> str:
        text = self.text(value, where, "an ISO country code").strip().upper()
        if text not in phonenumbers.SUPPORTED_REGIONS:
            self.fail(where, f"{value!r} is not an ISO 3166 region code known to phonenumbers (e.g. US, GB, DE)")
        return text


def _kind(value) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --------------------------------------------------------------------- compiled rules


@dataclass(frozen=True)
class _Cond:
    """One `match` mapping: every present part must hold."""
    nets: Optional[tuple] = None            # ip networks (remote address)
    ports: Optional[frozenset] = None       # remote port
    header: Optional[Tuple[str, frozenset]] = None   # (lower-case name, accepted values)
    trunks: Optional[frozenset] = None      # accounts: trunk names
    pai_domains: Optional[frozenset] = None  # accounts: lower-case PAI hosts
    prefixes: Optional[tuple] = None        # accounts: "+digits" caller-number prefixes

    @property
    def uses_address(self) -> bool:
        return self.nets is not None or self.ports is not None


@dataclass(frozen=True)
class _Rule:
    name: str
    conds: tuple   # of _Cond; any one matching (OR)

    @property
    def uses_address(self) -> bool:
        return any(c.uses_address for c in self.conds)


_TRUNK_KEYS = ("cidr", "port", "header")
_ACCOUNT_KEYS = ("trunk", "header", "pai_domain", "number_prefix")


# --------------------------------------------------------------------- numbers


class _Number(NamedTuple):
    """A parsed number (a tuple of plain values: the number cache holds tens of
    thousands, and the garbage collector does not have to walk them)."""
    e164: str                 # "+<cc><nsn>" (parseable, maybe not valid)
    cc: int
    nsn: str
    region: Optional[str]     # ISO region when the number is valid, else None
    tollfree: bool


def _uri_user(value: Optional[str]) -> Optional[str]:
    """The telephone-number part of a SIP/tel URI (or a name-addr around one):
    user part for sip:/sips:, the whole number for tel:, parameters kept."""
    if not value or not isinstance(value, str):
        return None
    s = value.strip()
    lt = s.find("<")
    if lt >= 0:
        gt = s.find(">", lt + 1)
        s = s[lt + 1:gt] if gt > lt else s[lt + 1:]
    s = s.strip()
    colon = s.find(":")
    scheme = s[:colon].lower() if colon > 0 else ""
    if scheme in ("sip", "sips"):
        rest = s[colon + 1:]
        at = rest.rfind("@")
        if at <= 0:
            return None
        user = rest[:at]
        pw = user.find(":")          # user:password@host
        return user[:pw] if pw >= 0 else user
    if scheme == "tel":
        return s[colon + 1:]
    if colon < 0 and "@" not in s:
        return s                     # a bare number
    return None


def _uri_host(value: str) -> Optional[str]:
    """Lower-case host of a sip:/sips: URI (or name-addr), else None."""
    s = value.strip()
    lt = s.find("<")
    if lt >= 0:
        gt = s.find(">", lt + 1)
        s = s[lt + 1:gt] if gt > lt else s[lt + 1:]
    s = s.strip()
    low = s[:5].lower()
    if low.startswith("sip:"):
        rest = s[4:]
    elif low.startswith("sips:"):
        rest = s[5:]
    else:
        return None
    rest = rest[rest.rfind("@") + 1:]
    for stop in ";?>":
        i = rest.find(stop)
        if i >= 0:
            rest = rest[:i]
    if rest.startswith("["):                      # IPv6 reference
        host = rest[1:rest.find("]")] if "]" in rest else rest[1:]
    else:
        host = rest.split(":", 1)[0]
    host = host.strip().lower().rstrip(".")
    return host or None


def _split_addresses(value: str) -> List[str]:
    """Split a header value on commas outside quotes and <...>."""
    out, cur, quoted, angle, i = [], [], False, False, 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\" and i + 1 < len(value):
                cur.append(value[i:i + 2])
                i += 2
                continue
            if ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [v.strip() for v in out if v.strip()]


def _dial_string(user: Optional[str]) -> Optional[str]:
    """User part -> "+digits" (international) or "digits" (national), or None.
    Handles percent-escapes, visual separators and ;phone-context."""
    if not user:
        return None
    if "%" in user:
        user = unquote(user)
    number, _, params = user.partition(";")
    number = number.translate(_SEPARATORS)
    if params and not number.startswith("+"):
        for p in params.split(";"):
            key, _, val = p.partition("=")
            if key.strip().lower() == "phone-context":
                ctx = val.strip().strip('"').translate(_SEPARATORS)
                if ctx.startswith("+") and ctx[1:].isdigit():   # a global-number context
                    number = ctx + number
                break
    if not _DIGITS_RE.match(number):
        return None
    return number


_NANP_FAST = re.compile(r"1?([2-9][0-9]{9})\Z")


@functools.lru_cache(maxsize=65536)
def _number(dial: str, default_region: str, default_cc: int) -> Optional[_Number]:
    """Parse and classify a dial string; cached (numbers repeat)."""
    first = dial[:1]
    if first == "+":
        international = dial[1:]
    elif first != "0":
        international = None   # a national number (the common case: one test)
    elif dial.startswith("00"):
        international = dial[2:]
    elif dial.startswith("011") and default_cc == 1:
        international = dial[3:]
    else:
        international = None
    if international is not None:
        if not international:
            return None
        m = _NANP_FAST.match(international) if international.startswith("1") else None
        split = (1, m.group(1)) if m else _split_number("+" + international, None)
    else:
        m = _NANP_FAST.match(dial) if default_cc == 1 and len(dial) >= 10 else None
        split = (1, m.group(1)) if m else _split_number(dial, default_region)
    if split is None:
        return None
    cc, nsn = split
    if not nsn:
        return None
    region, kind = _region_and_kind(cc, nsn)
    # _Number(...) without its Python-level __new__ (which only calls this)
    return _tuple_new(_Number, (f"+{cc}{nsn}", cc, nsn, region, kind == _TOLL_FREE))


_tuple_new = tuple.__new__


def _split_number(dial: str, region: Optional[str]) -> Optional[Tuple[int, str]]:
    """(country code, national significant number) of a "+digits" or "digits"
    dial string, exactly as phonenumbers.parse(dial, region) followed by
    national_significant_number() gives them (None where parse raises).
    Dial strings are only ASCII digits, so parse's normalisation, RFC 3966,
    extension and vanity-letter steps do nothing; what is left is its country
    code and national prefix logic, done here in straight-line code on a
    _Plan of each region's metadata: phonenumbers' own helpers look every
    pattern up again on each call, which made them most of a new number's
    cost.  tests/test_labels.py checks this against phonenumbers.parse over
    every supported region."""
    plus = dial.startswith("+")
    digits = dial[1:] if plus else dial
    try:
        plan = _REGION_PLANS[region]
    except KeyError:
        plan = _region_plan(region)
    if len(digits) < 4 or (plan is None and (region is not None or not plus)):
        return _parsed_split(dial, region)   # very short input, or a region without a plan: parse decides
    if plus:
        cc, rest = _leading_country_code(digits)
        if cc == 0 and plan is not None:
            # parse then reads the digits as dialled in the region, and must find a country code there
            found = _dialled_country_code(digits, plan)
            if found is None:
                return None
            cc, rest = found
        if cc == 0:
            return None
    else:
        found = _dialled_country_code(digits, plan)
        if found is None:
            return None
        cc, rest = found
    if cc == 0:
        # a national number of the default region, read with that region's metadata
        cc, rest, number_plan = plan.country_code, digits, plan
    else:
        # a country code was found: the rest is read with the metadata of its main region
        try:
            number_plan = _CC_PLANS[cc]
        except KeyError:
            number_plan = _cc_plan(cc)
        if number_plan is None:
            return _parsed_split(dial, region)
    if len(rest) < _MIN_NSN:
        return None
    national = _strip_national_prefix(rest, number_plan)
    length = len(national)
    if length in number_plan.possible_lengths or length > number_plan.longest:
        rest = national   # else parse keeps the prefix: what is left is too short or not a possible length
    if not _MIN_NSN <= len(rest) <= _MAX_NSN:
        return None
    # the parsed number keeps leading zeros (Italian style) except that an
    # all-zero number keeps its last digit as the number: the text is unchanged
    return cc, rest


def _parsed_split(dial: str, region: Optional[str]) -> Optional[Tuple[int, str]]:
    """_split_number by phonenumbers.parse itself, for what the plans do not cover."""
    try:
        numobj = phonenumbers.parse(dial, region)
    except phonenumbers.NumberParseException:
        return None
    return numobj.country_code, phonenumbers.national_significant_number(numobj)


def _dialled_country_code(digits: str, plan: "_Plan") -> Optional[Tuple[int, str]]:
    """The country code parse finds in digits dialled in plan's region without
    "+" (_maybe_extract_country_code): after the region's international
    prefix, or the region's own code in front of a national number; (cc, rest),
    (0, "") when there is none, None where parse raises."""
    idd = plan.international_prefix
    m = idd.match(digits) if idd is not None else None
    if m is not None:
        rest = digits[m.end():]
        if not rest.startswith("0"):   # no country code starts with 0: then it was no IDD (_parse_prefix_as_idd)
            if len(rest) <= _MIN_NSN:
                return None
            cc, rest = _leading_country_code(rest)
            return (cc, rest) if cc else None
    if digits.startswith(plan.country_code_text):
        # the region's own country code, kept as one when the number did not
        # fit the region's general description before and does after, or was too long
        national = _strip_national_prefix(digits[len(plan.country_code_text):], plan)
        general = plan.general
        if ((general.fullmatch(digits) is None and general.fullmatch(national) is not None)
                or len(digits) > plan.longest):
            return plan.country_code, national
    return 0, ""


def _leading_country_code(number: str) -> Tuple[int, str]:
    """(cc, rest) for the shortest country code number starts with, else
    (0, number), as phonenumbers' _extract_country_code."""
    for size in (1, 2, 3):
        cc = _COUNTRY_CODES.get(number[:size])
        if cc is not None:
            return cc, number[size:]
    return 0, number


def _strip_national_prefix(number: str, plan: "_Plan") -> str:
    """number without its national prefix (or carrier code), or rewritten by
    the region's transform rule, as _maybe_strip_national_prefix_carrier_code
    gives it; unchanged when that would turn a number that fits the general
    description into one that does not."""
    prefix = plan.national_prefix
    if prefix is None or not number:
        return number
    m = prefix.match(number)
    if m is None:
        return number
    if plan.transform_rule is not None and m.group(plan.transform_group) is not None:
        stripped = m.expand(plan.transform_rule) + number[m.end():]   # re.sub(prefix, rule, number, count=1)
    else:
        stripped = number[m.end():]
    general = plan.general
    if general.fullmatch(stripped) is None and general.fullmatch(number) is not None:
        return number
    return stripped


class _Plan(NamedTuple):
    """What parse reads of one region's metadata to split a number, compiled
    once (phonenumbers' helpers fetch and compile-cache each pattern per call)."""
    country_code: int
    country_code_text: str
    international_prefix: Optional[re.Pattern]   # IDD; None when the region has none
    national_prefix: Optional[re.Pattern]        # national_prefix_for_parsing
    transform_rule: Optional[str]                # national_prefix_transform_rule
    transform_group: int                         # the rule applies when this (last) group matched
    general: re.Pattern                          # general description, used with fullmatch
    possible_lengths: frozenset                  # lengths _test_number_length calls IS_POSSIBLE
    longest: int                                 # a longer number is TOO_LONG


def _plan_of(metadata) -> Optional[_Plan]:
    """The _Plan of one metadata, or None where it would not be exact (then
    parse decides)."""
    general = metadata.general_desc
    lengths = tuple(general.possible_length or ())
    local_only = frozenset(general.possible_length_local_only or ())
    npfp = metadata.national_prefix_for_parsing or None
    national_prefix = _pattern(npfp) if npfp is not None else None
    transform_rule = (metadata.national_prefix_transform_rule or None) if national_prefix is not None else None
    # _test_number_length checks local-only lengths first, then takes the
    # first and last possible lengths as the shortest and longest: the plan's
    # length tests are that only for sorted lengths, local-only ones shorter
    # than the longest.  A transform rule without groups makes parse raise.
    if (not general.national_number_pattern or not lengths or list(lengths) != sorted(lengths)
            or any(n >= lengths[-1] for n in local_only)
            or (transform_rule is not None and national_prefix.groups == 0)):
        return None
    idd = metadata.international_prefix
    return _Plan(
        country_code=metadata.country_code,
        country_code_text=str(metadata.country_code),
        international_prefix=_pattern(idd) if idd is not None else None,
        national_prefix=national_prefix,
        transform_rule=transform_rule,
        transform_group=national_prefix.groups if national_prefix is not None else 0,
        general=_pattern(general.national_number_pattern),
        possible_lengths=frozenset(lengths) - local_only,
        longest=lengths[-1])


def _region_plan(region: Optional[str]) -> Optional[_Plan]:
    """The plan of a default region (built on first use); None for no region,
    one phonenumbers does not know, or one without an exact plan."""
    if region is None:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:
        return None   # not kept: unknown region strings must not grow the cache
    plan = _REGION_PLANS[region] = _plan_of(metadata)
    return plan


def _cc_plan(cc: int) -> Optional[_Plan]:
    """The plan of a country code's main region: parse reads the rest of a
    number with that metadata, whatever the default region (built on first use)."""
    main_region = phonenumbers.region_code_for_country_code(cc)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, main_region)
    plan = _CC_PLANS[cc] = _plan_of(metadata) if metadata is not None else None
    return plan


_REGION_PLANS: dict = {None: None}
_CC_PLANS: dict = {}
_COUNTRY_CODES = {str(cc): cc for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
try:   # parse's bounds on a national significant number's length
    from phonenumbers.phonenumberutil import _MIN_LENGTH_FOR_NSN as _MIN_NSN, _MAX_LENGTH_FOR_NSN as _MAX_NSN
except ImportError:   # pragma: no cover
    _MIN_NSN, _MAX_NSN = 2, 17


def _region_and_kind(cc: int, nsn: str) -> Tuple[Optional[str], int]:
    """(ISO region or None, _INVALID / _TOLL_FREE / _VALID) of a number; the
    region only when the number is valid.  Same result as
    region_code_for_number() + number_type() (toll-free or not is all labels
    need of the type), with one pattern pass per candidate region instead of
    one per number type, and none for a region whose numbers never have this
    length."""
    if _type_helper is None:   # pragma: no cover - phonenumbers without the helper
        return _region_and_kind_parsed(cc, nsn)
    length = len(nsn)
    for entry in _candidates(cc, length):
        region, meta, leading, possible, kinds = entry
        if leading is not None:
            if leading.match(nsn) is None:
                continue
            if not possible:
                return None, _INVALID   # this region owns the number, and no number of its length
        if kinds is _UNCOMPILED:
            kinds = entry[4] = _kinds_pattern(meta, length)
        kind = _INVALID   # _number_kind(nsn, meta, length), inline: this runs for every new number
        if kinds is not None:
            m = kinds[0].fullmatch(nsn)
            if m is not None:
                kind = _TOLL_FREE if kinds[1] and m.group(kinds[1]) is not None else _VALID
        if kind != _INVALID:
            return region, kind   # region None for "001" (non-geographic, e.g. +800)
        if leading is not None:
            return None, _INVALID   # this region owns the number, valid or not
    return None, _INVALID


def _region_and_kind_parsed(cc: int, nsn: str) -> Tuple[Optional[str], int]:   # pragma: no cover
    """_region_and_kind by phonenumbers' public API."""
    if not _CC_REGIONS.get(cc):
        return None, _INVALID
    numobj = phonenumbers.parse(f"+{cc}{nsn}", None)
    region = phonenumbers.region_code_for_number(numobj)
    kind = _kind_of_type(phonenumbers.number_type(numobj))
    if region is None or kind == _INVALID or region not in phonenumbers.SUPPORTED_REGIONS:
        return None, kind   # invalid, or "001" (non-geographic, e.g. +800)
    return region, kind


# what labels need of phonenumbers' number type
_INVALID, _TOLL_FREE, _VALID = 0, 1, 2


def _kind_of_type(ntype: int) -> int:
    if ntype == PhoneNumberType.UNKNOWN:
        return _INVALID
    return _TOLL_FREE if ntype == PhoneNumberType.TOLL_FREE else _VALID


def _number_kind(nsn: str, meta, length: int) -> int:
    """_kind_of_type(_number_type_helper(nsn, meta)), in one regular expression
    match (_kinds_pattern); _region_and_kind has it inline."""
    found = _kinds_pattern(meta, length)
    if found is None:
        return _INVALID
    pattern, toll_free_group = found
    m = pattern.fullmatch(nsn)
    if m is None:
        return _INVALID
    return _TOLL_FREE if toll_free_group and m.group(toll_free_group) is not None else _VALID


_KINDS_PATTERNS: dict = {}

# the number types _number_type_helper tries, in its order (the last only when
# mobile and fixed-line numbers differ: else the helper asks fixed_line alone)
_KIND_SLOTS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
               "fixed_line", "mobile")


def _kind_alternatives(meta, length: int):
    """What phonenumbers' _number_type_helper reads to type numbers of one
    length in one region: (its general description's pattern, [(slot in
    _KIND_SLOTS, pattern)] in the helper's order, the toll-free slot or -1),
    or None when no number of this length can be valid there. A description
    whose possible lengths exclude `length`, or that has no pattern, is left
    out, as the helper skips it."""
    def usable(desc) -> Optional[str]:
        if desc is None:
            return None
        if len(desc.possible_length) > 0 and length not in desc.possible_length:
            return None
        pattern = desc.national_number_pattern
        return pattern if pattern else None

    general = usable(meta.general_desc)
    if general is None:
        return None
    slots = _KIND_SLOTS if not meta.same_mobile_and_fixed_line_pattern else _KIND_SLOTS[:-1]
    alternatives, toll_free = [], -1
    for slot, name in enumerate(slots):
        desc = getattr(meta, name)
        pattern = usable(desc)
        if pattern is None:
            continue
        if desc is meta.toll_free:
            toll_free = slot
        alternatives.append((slot, pattern))
    return (general, alternatives, toll_free) if alternatives else None


def _kinds_pattern(meta, length: int):
    """_number_type_helper for numbers of one length in one region, as one
    pattern: the general description must match the whole number (a
    lookahead), then the type descriptions (_kind_alternatives) as
    alternatives, of which a full match takes the first that matches whole
    (the type the helper returns). Returns (pattern, group of the toll-free
    alternative or 0), or None when no number of this length can be valid
    there."""
    key = (id(meta), length)
    if key in _KINDS_PATTERNS:
        return _KINDS_PATTERNS[key][1]
    found = None
    parts = _kind_alternatives(meta, length)
    if parts is not None:
        general, alternatives, toll_free = parts
        pieces, group, toll_free_group = [], 1, 0
        for slot, pattern in alternatives:
            if slot == toll_free:
                toll_free_group = group
            pieces.append(f"({pattern})")
            group += 1 + re.compile(pattern).groups   # a pattern's own groups come after its own
        found = (re.compile(f"(?=(?:{general})\\Z)(?:{'|'.join(pieces)})"), toll_free_group)
    _KINDS_PATTERNS[key] = (meta, found)   # meta kept: its id must not be reused
    return found


@functools.lru_cache(maxsize=None)
def _candidates(cc: int, length: int) -> tuple:
    """The regions of a country code in region_code_for_number()'s order that
    can decide a number of this length, as [region (None when not one of
    SUPPORTED_REGIONS), metadata, leading-digits pattern or None, whether the
    length is possible there, its _kinds_pattern (_UNCOMPILED until first
    needed: a list, so that it is kept there)].  number_type() first
    checks the general description, which refuses a length outside its
    possible lengths, so such a region's type is UNKNOWN: it is left out
    unless its leading digits would claim the number, and nothing after the
    last region where the length is possible can make the number valid.  With
    one region, that region owns every number of the code."""
    regions = _CC_REGIONS.get(cc) or ()
    out = []
    for region in regions:
        if len(regions) == 1:
            meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
        else:
            meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
        if meta is None:
            continue
        if len(regions) == 1:
            leading = _ALWAYS
        else:
            leading = _leading_re(meta.leading_digits) if meta.leading_digits is not None else None
        lengths = meta.general_desc.possible_length
        possible = not lengths or length in lengths
        if possible or leading is not None:
            out.append((region, meta, leading, possible))
    while out and not out[-1][3]:
        out.pop()
    # consecutive regions that can only claim the number (and leave it invalid)
    # act as one: one pattern for the run instead of one match per region
    merged: list = []
    for entry in out:
        prev = merged[-1] if merged else None
        if not entry[3] and prev is not None and not prev[3] and entry[2] is not _ALWAYS:
            either = re.compile(f"(?:{prev[2].pattern})|(?:{entry[2].pattern})")
            merged[-1] = (prev[0], prev[1], either, False)
        else:
            merged.append(entry)
    supported = phonenumbers.SUPPORTED_REGIONS
    return tuple([region if region in supported else None, meta, leading, possible,
                  _UNCOMPILED if possible else None] for region, meta, leading, possible in merged)


_UNCOMPILED = object()
_ALWAYS = re.compile("")
_CC_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
_leading_re = functools.lru_cache(maxsize=None)(re.compile)
_pattern = functools.lru_cache(maxsize=None)(re.compile)
try:   # phonenumbers compiles metadata patterns on every use unless asked to keep them
    from phonenumbers.re_util import enable_pattern_cache as _enable_pattern_cache
    _enable_pattern_cache()
except ImportError:   # pragma: no cover - older phonenumbers: re's own cache serves
    pass
try:   # the per-region pattern pass behind number_type(); stable across 8.x/9.x
    from phonenumbers.phonenumberutil import _number_type_helper as _type_helper
except ImportError:   # pragma: no cover
    _type_helper = None


# US states, DC, territories and Canadian provinces as the geocoder names them.
_STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "Washington State": "WA", "West Virginia": "WV",
    "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC", "Washington DC": "DC",
    "District of Columbia": "DC",
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL", "Nova Scotia": "NS",
    "Prince Edward Island": "PE", "Ontario": "ON", "Quebec": "QC", "Québec": "QC",
    "Saskatchewan": "SK", "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
    "Watson Lake": "YT",
}
_STATE_CODES = frozenset(_STATE_NAMES.values())
_geocoder = None


def _state_of_description(description: str) -> Optional[str]:
    """"Chicago, IL" -> IL; "Illinois" -> IL; anything else -> None."""
    d = description.strip()
    if not d:
        return None
    if d in _STATE_NAMES:
        return _STATE_NAMES[d]
    if "," in d:
        tail = d.rsplit(",", 1)[1].strip()
        if tail in _STATE_CODES:
            return tail
        return _STATE_NAMES.get(tail)
    return None


_state_cache: dict = {}


def _nanp_state(number: "_Number") -> Optional[str]:
    """State/province of a valid NANP number from its geocoder description.
    Cached by NPA-NXX: phonenumbers' geocoding data for +1 is keyed by at most
    1+NPA+NXX, so every number of one NPA-NXX has the same description.
    Outside the US and Canada the whole territory counts as one "state"."""
    region = number.region
    if region not in ("US", "CA"):
        return region
    key = number.nsn[:6]
    try:
        return _state_cache[key]
    except KeyError:
        pass
    global _geocoder
    if _geocoder is None:
        from phonenumbers import geocoder as _g   # ~0.6 s and ~100 MB, on first need
        _geocoder = _g
    numobj = phonenumbers.PhoneNumber(country_code=1, national_number=int(number.nsn))
    state = _state_of_description(_geocoder.description_for_valid_number(numobj, "en"))
    if len(_state_cache) >= 65536:
        _state_cache.clear()
    _state_cache[key] = state
    return state


def _zone(dest: Optional[_Number], orig: Optional[_Number]) -> str:
    if dest is None:
        return UNKNOWN
    if dest.tollfree:
        return "TOLLFREE"
    if dest.region is None or orig is None or orig.region is None:
        return UNKNOWN
    if dest.region != orig.region:
        return "INTL"
    if dest.cc != 1:
        return "INTRASTATE"          # a national call outside NANP (approximation)
    if len(dest.nsn) != 10 or len(orig.nsn) != 10:
        return UNKNOWN
    if dest.nsn[:3] == orig.nsn[:3]:
        return "LOCAL"               # same NPA (approximation of a local calling area)
    s_dest = _nanp_state(dest)
    s_orig = _nanp_state(orig)
    if s_dest is None or s_orig is None:
        return UNKNOWN
    return "INTRASTATE" if s_dest == s_orig else "INTERSTATE"


# --------------------------------------------------------------------- addresses


@functools.lru_cache(maxsize=8192)
def _ip(text: str):
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except (ValueError, AttributeError):
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _in_nets(ip, nets) -> bool:
    if ip is None:
        return False
    for net in nets:
        if ip in net:      # False across IP versions
            return True
    return False


# --------------------------------------------------------------------- config


def _nonempty_seq(ck: "_Checker", value, where: str) -> list:
    """A scalar or a list, as [(path, item)...]; an empty one is a config error."""
    items = ck.seq(value, where, scalar_ok=True)
    if not items:
        ck.fail(where, "must not be empty")
    return items


class LabelConfig:
    """Validated labelling configuration; `labels()` is the hot path."""

    TOP_KEYS = ("default_country", "platform", "trunks", "accounts", "providers",
                "metrics", "limits", "billing", "rtpengine", "kamailio")

    def __init__(self, *, default_country: str = "US", platform_networks: tuple = (),
                 trunks: tuple = (), accounts: tuple = (), providers: tuple = (),
                 short_call_thresholds: tuple = DEFAULT_SHORT_CALL_THRESHOLDS,
                 max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
                 call_series_retention_s: float = DEFAULT_RETENTION_S,
                 ner_codes: frozenset = DEFAULT_NER_CODES, min_billable_seconds: float = 0.0,
                 rtpengine: Optional[list] = None, kamailio: Optional[list] = None,
                 source: str = "<defaults>"):
        self.source = source
        self.default_country = default_country
        self._default_cc = phonenumbers.country_code_for_region(default_country)
        self.platform_networks = tuple(platform_networks)
        self.trunks = tuple(trunks)
        self.accounts = tuple(accounts)
        self.providers = tuple(providers)
        self.short_call_thresholds = tuple(short_call_thresholds)
        self.max_label_sets = max_label_sets
        self.call_series_retention_s = float(call_series_retention_s)
        self.ner_codes = frozenset(ner_codes)
        self.min_billable_seconds = float(min_billable_seconds)
        self.rtpengine = list(rtpengine or [])
        self.kamailio = list(kamailio or [])
        names = {PAI}
        for rule in self.trunks + self.accounts + self.providers:
            for cond in rule.conds:
                if cond.header is not None:
                    names.add(cond.header[0])
        self.header_names = frozenset(names)
        # label sets seen: labels() hands out one shared (frozen) CallLabels per
        # set, not a new object per call; cleared if a flood of sets fills it
        self._label_sets: dict = {}
        self._native = None   # native(): this configuration compiled, made on first use
        self._need_pai_domain = any(c.pai_domains is not None for r in self.accounts for c in r.conds)
        self._need_remotes = bool(self.platform_networks or self.trunks or self.providers)
        # addresses are parsed only when a rule looks at them
        self._need_addresses = bool(self.platform_networks) or any(
            c.nets is not None for r in self.trunks + self.providers for c in r.conds)

    # ------------------------------------------------------------ construction

    @classmethod
    def default(cls) -> "LabelConfig":
        """No configuration file: default_country US, no platform, no rules."""
        return cls()

    @classmethod
    def load(cls, path: str) -> "LabelConfig":
        """Read and strictly validate a YAML file; ConfigError on any problem."""
        source = str(path)
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(source, "", f"cannot read the file: {e}") from None
        try:
            data = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError(source, where, f"invalid YAML: {problem}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Optional[Mapping], source: str = "<config>") -> "LabelConfig":
        """Validate an already-parsed configuration (the YAML document)."""
        ck = _Checker(source)
        top = ck.mapping(data, "", cls.TOP_KEYS)
        kw: dict = {"source": source}

        if top.get("default_country") is not None:
            kw["default_country"] = ck.country(top["default_country"], "default_country")

        platform = ck.mapping(top.get("platform"), "platform", ("addresses",))
        if platform.get("addresses") is not None:
            kw["platform_networks"] = tuple(
                ck.network(v, w) for w, v in ck.seq(platform["addresses"], "platform.addresses", scalar_ok=True))

        trunks = cls._rules(ck, top.get("trunks"), "trunks", _TRUNK_KEYS, None)
        providers = cls._rules(ck, top.get("providers"), "providers", _TRUNK_KEYS, None)
        accounts = cls._rules(ck, top.get("accounts"), "accounts", _ACCOUNT_KEYS,
                              frozenset(r.name for r in trunks))
        kw.update(trunks=trunks, providers=providers, accounts=accounts)

        metrics = ck.mapping(top.get("metrics"), "metrics",
                             ("short_call_thresholds", "call_series_retention_seconds", "ner_codes"))
        if metrics.get("short_call_thresholds") is not None:
            items = ck.seq(metrics["short_call_thresholds"], "metrics.short_call_thresholds", scalar_ok=True)
            if not items:
                ck.fail("metrics.short_call_thresholds", "must list at least one threshold")
            values = []
            for w, v in items:
                value = ck.number(v, w, positive=True)
                if value in values:
                    ck.fail(w, f"duplicate threshold {value!r}")
                values.append(value)
            kw["short_call_thresholds"] = tuple(sorted(values))
        if metrics.get("call_series_retention_seconds") is not None:
            kw["call_series_retention_s"] = float(ck.number(
                metrics["call_series_retention_seconds"], "metrics.call_series_retention_seconds", positive=True))
        if metrics.get("ner_codes") is not None:
            items = ck.seq(metrics["ner_codes"], "metrics.ner_codes", scalar_ok=True)
            if not items:
                ck.fail("metrics.ner_codes", "must list at least one SIP final code")
            kw["ner_codes"] = frozenset(ck.integer(v, w, 200, 699) for w, v in items)

        limits = ck.mapping(top.get("limits"), "limits", ("max_label_sets",))
        if limits.get("max_label_sets") is not None:
            kw["max_label_sets"] = ck.integer(limits["max_label_sets"], "limits.max_label_sets", 1, 10 ** 9)

        billing = ck.mapping(top.get("billing"), "billing", ("min_billable_seconds",))
        if billing.get("min_billable_seconds") is not None:
            kw["min_billable_seconds"] = float(ck.number(
                billing["min_billable_seconds"], "billing.min_billable_seconds", minimum=0))

        for key in ("rtpengine", "kamailio"):
            if top.get(key) is not None:
                items = ck.seq(top[key], key)
                for w, v in items:
                    if not isinstance(v, dict):
                        ck.fail(w, f"must be a mapping, not {_kind(v)}")
                kw[key] = [_plain(v) for _, v in items]
        return cls(**kw)

    @staticmethod
    def _rules(ck: _Checker, value, section: str, keys: tuple, trunk_names) -> tuple:
        if value is None:
            return ()
        rules, seen = [], {}
        for where, item in ck.seq(value, section):
            entry = ck.mapping(item, where, ("name", "match"), none_ok=False)
            if "name" not in entry:
                ck.fail(where, "missing 'name'")
            if "match" not in entry:
                ck.fail(where, "missing 'match'")
            name = ck.name(entry["name"], f"{where}.name")
            if name in seen:
                ck.fail(f"{where}.name", f"duplicate name {name!r} (also {seen[name]}.name)")
            seen[name] = where
            match = entry["match"]
            if isinstance(match, list):
                if not match:
                    ck.fail(f"{where}.match", "must not be an empty list")
                conds = tuple(LabelConfig._cond(ck, m, w, keys, trunk_names)
                              for w, m in ck.seq(match, f"{where}.match"))
            else:
                conds = (LabelConfig._cond(ck, match, f"{where}.match", keys, trunk_names),)
            rules.append(_Rule(name=name, conds=conds))
        return tuple(rules)

    @staticmethod
    def _cond(ck: _Checker, value, where: str, keys: tuple, trunk_names) -> _Cond:
        m = ck.mapping(value, where, keys, none_ok=False)
        if not m:
            ck.fail(where, f"needs at least one of {', '.join(keys)}")
        kw: dict = {}
        if "cidr" in m:
            items = _nonempty_seq(ck, m["cidr"], f"{where}.cidr")
            kw["nets"] = tuple(ck.network(v, w) for w, v in items)
        if "port" in m:
            items = _nonempty_seq(ck, m["port"], f"{where}.port")
            kw["ports"] = frozenset(ck.integer(v, w, 1, 65535) for w, v in items)
        if "header" in m:
            hw = f"{where}.header"
            h = ck.mapping(m["header"], hw, ("name", "value"), none_ok=False)
            for k in ("name", "value"):
                if k not in h:
                    ck.fail(hw, f"missing '{k}'")
            hname = ck.text(h["name"], f"{hw}.name").strip()
            if not _HEADER_NAME_RE.match(hname):
                ck.fail(f"{hw}.name", f"{hname!r} is not a valid SIP header name")
            items = _nonempty_seq(ck, h["value"], f"{hw}.value")
            values = []
            for w, v in items:
                text = ck.text(v, w).strip()
                if not text:
                    ck.fail(w, "must not be empty")
                values.append(text)
            kw["header"] = (hname.lower(), frozenset(values))
        if "trunk" in m:
            items = _nonempty_seq(ck, m["trunk"], f"{where}.trunk")
            names = []
            for w, v in items:
                t = ck.text(v, w)
                if t not in trunk_names:
                    ck.fail(w, f"no trunk is named {t!r}")
                names.append(t)
            kw["trunks"] = frozenset(names)
        if "pai_domain" in m:
            items = _nonempty_seq(ck, m["pai_domain"], f"{where}.pai_domain")
            domains = []
            for w, v in items:
                d = ck.text(v, w).strip()
                if not _DOMAIN_RE.match(d):
                    ck.fail(w, f"{d!r} is not a valid domain name")
                domains.append(d.lower().rstrip("."))
            kw["pai_domains"] = frozenset(domains)
        if "number_prefix" in m:
            items = _nonempty_seq(ck, m["number_prefix"], f"{where}.number_prefix")
            prefixes = []
            for w, v in items:
                p = ck.text(v, w).strip()
                if not _PREFIX_RE.match(p):
                    ck.fail(w, f"{p!r} is not an E.164 prefix: write '+', then 1-15 digits not starting with 0")
                prefixes.append(p)
            kw["prefixes"] = tuple(prefixes)
        return _Cond(**kw)

    # ------------------------------------------------------------ labelling

    def labels(self, info: InviteInfo) -> CallLabels:
        headers = info.headers or _NO_HEADERS
        direction = trunk = provider = UNKNOWN
        if self._need_remotes:   # else direction, trunk and provider are all unknown
            src_ip, dst_ip = (_ip(info.src), _ip(info.dst)) if self._need_addresses else (None, None)
            if self.platform_networks:
                if _in_nets(src_ip, self.platform_networks):
                    direction = "outbound"
                elif _in_nets(dst_ip, self.platform_networks):
                    direction = "inbound"
            if direction == "inbound":
                remotes = ((src_ip, info.sport),)
            elif direction == "outbound":
                remotes = ((dst_ip, info.dport),)
            else:
                remotes = ((src_ip, info.sport), (dst_ip, info.dport))
            trunk = self._match_remote(self.trunks, remotes, headers)
            provider = self._match_remote(self.providers, remotes, headers)

        region, cc = self.default_country, self._default_cc
        dest = _number_of(info.request_uri, region, cc) or _number_of(info.to_uri, region, cc)
        orig = None
        pai_host = None
        pai_values = headers.get(PAI)
        if isinstance(pai_values, str):
            pai_values = (pai_values,)
        if pai_values:
            for raw in pai_values:
                if not isinstance(raw, str):
                    continue
                for ident in _split_addresses(raw) if "," in raw else (raw,):
                    if orig is None:
                        orig = _number_of(ident, region, cc)
                    if pai_host is None and self._need_pai_domain:
                        pai_host = _uri_host(ident)
        if orig is None:
            orig = _number_of(info.from_uri, region, cc)

        account = UNKNOWN
        for rule in self.accounts:
            for c in rule.conds:   # any of them (a loop: any() over a generator costs more)
                if self._account_cond(c, trunk, headers, pai_host, orig):
                    account = rule.name
                    break
            if account != UNKNOWN:
                break

        key = (account, trunk, provider, _zone(dest, orig), direction,
               dest.region if dest is not None and dest.region else UNKNOWN,
               orig.region if orig is not None and orig.region else UNKNOWN)
        found = self._label_sets.get(key)
        if found is None:
            found = self._new_label_set(key)
        return found

    def _new_label_set(self, key: tuple) -> CallLabels:
        """The shared CallLabels of a label set not seen yet (labels() and the
        native path both take theirs from _label_sets)."""
        if len(self._label_sets) >= MAX_SHARED_LABEL_SETS:
            self._label_sets.clear()
            if self._native is not None:
                self._native.forget_label_sets()   # it keeps those it handed out: no longer shared
        found = self._label_sets[key] = CallLabels(*key)
        return found

    def native(self):
        """This configuration compiled for the native path (a
        warpsniff._engine.NativeLabels, made on first use and kept): the
        tracker labels initial INVITEs with it straight from their bytes, with
        exactly the results of labels() (docs/labels.md, "Native path"). The
        configuration must not change after this."""
        if self._native is None:
            from warpsniff._engine import NativeLabels
            self._native = NativeLabels(self)
        return self._native

    @staticmethod
    def _match_remote(rules: tuple, remotes: tuple, headers: Mapping) -> str:
        """First rule matching the remote address; with two candidate remotes
        (direction unknown) every rule is tried on the source, then on the
        destination."""
        if not rules:
            return UNKNOWN
        for ip, port in remotes:
            for rule in rules:
                for c in rule.conds:
                    if c.nets is not None and not _in_nets(ip, c.nets):
                        continue
                    if c.ports is not None and port not in c.ports:
                        continue
                    if c.header is not None and not _header_has(headers, c.header):
                        continue
                    return rule.name
        return UNKNOWN

    @staticmethod
    def _account_cond(c: _Cond, trunk: str, headers: Mapping, pai_host: Optional[str],
                      orig: Optional[_Number]) -> bool:
        if c.trunks is not None and trunk not in c.trunks:
            return False
        if c.header is not None and not _header_has(headers, c.header):
            return False
        if c.pai_domains is not None and (pai_host is None or pai_host not in c.pai_domains):
            return False
        if c.prefixes is not None and (orig is None or not orig.e164.startswith(c.prefixes)):
            return False
        return True

    def __repr__(self) -> str:
        return (f"LabelConfig(source={self.source!r}, default_country={self.default_country!r}, "
                f"trunks={len(self.trunks)}, accounts={len(self.accounts)}, providers={len(self.providers)}, "
                f"platform_networks={[str(n) for n in self.platform_networks]})")


_NO_HEADERS: Mapping = MappingProxyType({})


def _header_has(headers: Mapping, header: Tuple[str, frozenset]) -> bool:
    values = headers.get(header[0])
    if not values:
        return False
    if isinstance(values, str):
        values = (values,)
    accepted = header[1]
    for v in values:
        if isinstance(v, str) and v.strip() in accepted:
            return True
    return False


# The URI shapes nearly every INVITE has, whose user part is a dial string as
# it stands: "sip:DIGITS@host..." with no other "@" (the user part ends at
# the last one) and no "<", or "<sip:DIGITS@host>" after anything but a "<"
# (a display name), with no "@" before the ">".  For these _uri_user and
# _dial_string give DIGITS back unchanged (nothing to unescape, strip, split
# off or prefix), so one match does their work; anything else (upper-case
# scheme, separators, escapes, parameters on the user, tel:, leading
# whitespace) does not match and takes the general parser.
_PLAIN_URI = re.compile(r"sips?:(\+?[0-9]{1,20})@[^@<]*\Z|[^<]*<sips?:(\+?[0-9]{1,20})@[^@>]*(?:>|\Z)")


def _number_of(uri: Optional[str], region: str, cc: int) -> Optional[_Number]:
    """The number in a Request-URI, To, From or PAI value, or None."""
    m = _PLAIN_URI.match(uri) if uri.__class__ is str else None
    if m is not None:
        return _number(m[1] or m[2], region, cc)
    dial = _dial_string(_uri_user(uri))
    if dial is None:
        return None
    return _number(dial, region, cc)
