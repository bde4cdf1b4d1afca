# Included by _engine.pyx, before sip/dialogs.pyx (its tracker calls
# NativeLabels.labels_of at each initial INVITE). Call labels without Python
# objects: LabelConfig.labels() done by ext/labels/ws_labels.c on the
# INVITE's bytes, with tables compiled from the LabelConfig (NativeLabels)
# and from phonenumbers' metadata (module state below, per country code on
# first need). Every piece the C does not decide (a rare URI shape, a dial
# string a region's plan cannot split, a NANP state not looked up yet, an
# INVITE whose headers need decoding) is asked of warpsniff.labels, whose
# results are the reference: docs/labels.md, "Native path".

from cpython cimport array as carray
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

import weakref

# label values by the C's indices
cdef tuple _ZONE_NAMES = ()
cdef tuple _DIRECTION_NAMES = ()
cdef list _REGION_NAMES = []           # region index -> ISO code; 0 "unknown"
cdef dict _REGION_INDEX = {}           # ISO code (None: 0) -> index
cdef uint16_t _US = 0, _CA = 0

# phonenumbers' metadata as automata and tables (ws_num_tables), one per process
cdef object _L = None                  # warpsniff.labels, once loaded
cdef object _POOL = None               # warpsniff.digit_automata.Pool: every automaton's states
cdef object _Unsupported = None
cdef ws_cc_entry *_CCS = NULL          # WS_LBL_CC_COUNT entries
cdef ws_num_candidate *_CANDIDATES = NULL
cdef uint32_t _N_CANDIDATES = 0, _CAP_CANDIDATES = 0
cdef ws_num_tables _TABLES

# NANP states by NPA-NXX (ws_lbl_zone): 0 not looked up, 1 none, 2 + index in _STATE_NAMES
cdef uint8_t *_NANP_STATES = NULL
cdef list _STATE_NAMES = []
cdef uint32_t _NPANXX_COUNT = 1000000

# the Python path of a whole INVITE (as the tracker labelled before the native path)
cdef object _InviteInfo = None, _header_values = None

cdef enum:
    _RULE_BITS = 13                    # a label set's key: its seven indices in one word
    _REGION_BITS = 9
    _SCRATCH = 1 << 16                 # header values of one INVITE; the scan refuses larger sections
    _PYTHON_NUMBERS = 4096             # dial strings Python decided, kept per NativeLabels


cdef int _load_tables() except -1:
    """The shared tables' first setup (the country codes are built on first need)."""
    global _L, _POOL, _Unsupported, _CCS, _ZONE_NAMES, _DIRECTION_NAMES, _REGION_NAMES, _REGION_INDEX, _US, _CA
    global _InviteInfo, _header_values
    if _L is not None:
        return 0
    import phonenumbers
    import warpsniff.digit_automata as automata
    import warpsniff.labels as L
    from warpsniff.sip.headers import header_values
    if ((automata.MATCH_NOW, automata.MATCH_NOW_GROUP, automata.MATCH_AT_END, automata.MATCH_AT_END_GROUP)
            != (WS_LBL_MATCH_NOW, WS_LBL_MATCH_NOW_GROUP, WS_LBL_MATCH_AT_END, WS_LBL_MATCH_AT_END_GROUP)):
        raise RuntimeError("the first-match flags of warpsniff.digit_automata and ws_labels.h differ")
    _CCS = <ws_cc_entry *>calloc(WS_LBL_CC_COUNT, sizeof(ws_cc_entry))
    if _CCS == NULL:
        raise MemoryError()
    for cc in L._COUNTRY_CODES.values():
        if 0 < cc < WS_LBL_CC_COUNT:
            _CCS[cc].known = 1
    if not L._MAX_NSN <= WS_LBL_NSN_MAX:
        raise RuntimeError(f"phonenumbers' numbers are longer than {WS_LBL_NSN_MAX} digits")
    _TABLES.min_nsn, _TABLES.max_nsn = L._MIN_NSN, L._MAX_NSN
    _ZONE_NAMES = (L.UNKNOWN,) + L.ZONES
    _DIRECTION_NAMES = (L.UNKNOWN,) + L.DIRECTIONS
    _REGION_NAMES = [L.UNKNOWN] + sorted(phonenumbers.SUPPORTED_REGIONS)
    if len(_REGION_NAMES) >= 1 << _REGION_BITS:
        raise RuntimeError("too many regions for a label set key")
    _REGION_INDEX = {name: i for i, name in enumerate(_REGION_NAMES) if i}
    _REGION_INDEX[None] = 0
    _US, _CA = _REGION_INDEX["US"], _REGION_INDEX["CA"]
    _InviteInfo, _header_values = L.InviteInfo, header_values
    _POOL, _Unsupported = automata.Pool(), automata.Unsupported
    _L = L
    _refresh_tables()
    return 0


cdef int _refresh_tables() except -1:
    """Points the C tables at the pool's arrays (which move as they grow)."""
    cdef carray.array trans = _POOL.trans, tags = _POOL.tags
    _TABLES.trans = <const int32_t *>trans.data.as_voidptr
    _TABLES.tags = <const uint16_t *>tags.data.as_voidptr
    _TABLES.candidates = _CANDIDATES
    _TABLES.ccs = _CCS
    return 0


cdef object _whole_group_prefix(plan):
    """The text a transform rule writes before its group when that group is
    the whole number: the national prefix pattern's first alternative is
    `(G)$`, G holding no other group, and the rule is digits then that
    group; None for any other shape."""
    import re
    from warpsniff.digit_automata import capturing_groups, parse
    tree, _ = parse(plan.national_prefix.pattern)
    first = tree[1][0] if tree[0] == "alt" else tree
    k = plan.transform_group
    if not (first[0] == "cat" and len(first[1]) == 2 and first[1][0][:2] == ("group", k)
            and first[1][1] == ("eol",) and not capturing_groups(first[1][0][2])):
        return None
    m = re.fullmatch(r"([0-9]*)\\(?:([0-9]+)|g<([0-9]+)>)", plan.transform_rule)
    if m is None or int(m[2] or m[3]) != k:
        return None
    return m[1]


cdef int _fill_plan(ws_num_plan *out, plan) except -1:
    """A labels._Plan as the C reads it; Unsupported when a pattern is outside the automata."""
    try:
        _fill_plan_automata(out, plan)
    finally:
        _refresh_tables()   # the pool may have grown (and moved)
    return 0


cdef int _fill_plan_automata(ws_num_plan *out, plan) except -1:
    memset(out, 0, sizeof(ws_num_plan))
    out.cc = plan.country_code
    text = plan.country_code_text.encode("ascii")
    out.cc_len = len(text)
    memcpy(out.cc_text, <const char *>text, out.cc_len)
    if plan.international_prefix is not None:
        out.idd = _POOL.first_match_dfa(plan.international_prefix.pattern)
    out.transform = WS_LBL_TRANSFORM_NONE
    if plan.national_prefix is not None:
        tracked = plan.transform_group if plan.transform_rule is not None else 0
        out.national_prefix = _POOL.first_match_dfa(plan.national_prefix.pattern, tracked)
        if plan.transform_rule is not None:
            prefix = _whole_group_prefix(plan)
            if prefix is not None and len(prefix) <= sizeof(out.transform_prefix):
                raw = prefix.encode("ascii")
                out.transform = WS_LBL_TRANSFORM_WHOLE
                out.transform_prefix_len = len(raw)
                memcpy(out.transform_prefix, <const char *>raw, len(raw))
            else:
                out.transform = WS_LBL_TRANSFORM_OTHER
    out.general = _POOL.set_dfa((plan.general.pattern,))
    for length in plan.possible_lengths:
        if length < 32:
            out.possible |= (<uint32_t>1) << length
    out.longest = plan.longest
    return 0


cdef int _build_cc(uint16_t cc) except -1:
    """A country code's plan (labels._cc_plan) and candidate regions per
    number length (labels._candidates), compiled."""
    global _CANDIDATES, _CAP_CANDIDATES, _N_CANDIDATES
    cdef ws_cc_entry *entry = &_CCS[cc]
    cdef ws_num_candidate *c
    cdef uint32_t first = _N_CANDIDATES
    cdef list rows = []
    cdef uint32_t starts[WS_LBL_NSN_MAX + 2]
    L = _L
    try:
        plan = L._CC_PLANS[cc] if cc in L._CC_PLANS else L._cc_plan(cc)
        if plan is not None:
            _fill_plan(&entry.plan, plan)
            entry.has_plan = 1
        if L._type_helper is None:
            raise _Unsupported("phonenumbers without its type helper")
        for length in range(WS_LBL_NSN_MAX + 1):
            starts[length] = first + len(rows)
            for region, meta, leading, possible, _ in L._candidates(cc, length):
                if leading is None:
                    leading_state = 0
                elif leading is L._ALWAYS:
                    leading_state = WS_LBL_ALWAYS
                else:
                    leading_state = _POOL.set_dfa((leading.pattern,))
                kinds, toll_free = 0, 0
                parts = L._kind_alternatives(meta, length) if possible else None
                if parts is not None:
                    general, alternatives, toll_free_slot = parts
                    patterns = [None] * (1 + len(L._KIND_SLOTS))
                    patterns[0] = general
                    for slot, pattern in alternatives:
                        patterns[1 + slot] = pattern
                    kinds = _POOL.set_dfa(tuple(patterns))
                    toll_free = 1 + toll_free_slot if toll_free_slot >= 0 else 0
                rows.append((leading_state, kinds, _REGION_INDEX[region], possible, toll_free))
        starts[WS_LBL_NSN_MAX + 1] = first + len(rows)
    except _Unsupported:
        entry.python = entry.built = 1
        return _refresh_tables()
    except BaseException:
        _refresh_tables()
        raise
    if _N_CANDIDATES + len(rows) > _CAP_CANDIDATES:
        cap = max(2 * _CAP_CANDIDATES, _N_CANDIDATES + len(rows), 256)
        grown = <ws_num_candidate *>realloc(_CANDIDATES, cap * sizeof(ws_num_candidate))
        if grown == NULL:
            raise MemoryError()
        _CANDIDATES, _CAP_CANDIDATES = grown, cap
    for leading_state, kinds, region, possible, toll_free in rows:
        c = &_CANDIDATES[_N_CANDIDATES]
        c.leading, c.kinds, c.region, c.possible, c.toll_free = leading_state, kinds, region, possible, toll_free
        _N_CANDIDATES += 1
    memcpy(entry.first, starts, sizeof(starts))
    entry.built = 1
    return _refresh_tables()


def label_tables():
    """Size of the number tables built so far (shared by every NativeLabels):
    country codes compiled, automaton states, candidate regions, bytes."""
    if _L is None:
        return {"country_codes": 0, "states": 0, "candidates": 0, "bytes": 0}
    built = sum(_CCS[cc].built for cc in range(WS_LBL_CC_COUNT))
    size = (len(_POOL.trans) * 4 + len(_POOL.tags) * 2 + _CAP_CANDIDATES * sizeof(ws_num_candidate)
            + WS_LBL_CC_COUNT * sizeof(ws_cc_entry) + (_NPANXX_COUNT if _NANP_STATES != NULL else 0))
    return {"country_codes": built, "states": _POOL.states, "candidates": _N_CANDIDATES, "bytes": size}


cdef int _number_into(object number, ws_number *out) except -1:
    """A labels._Number (or None) as the C keeps it."""
    memset(out, 0, sizeof(ws_number))
    if number is None:
        return 0
    nsn = number.nsn.encode("ascii")
    if len(nsn) > WS_LBL_NSN_MAX:
        raise ValueError(f"national number longer than {WS_LBL_NSN_MAX} digits: {number!r}")
    out.present = 1
    out.cc = number.cc
    out.nsn_len = len(nsn)
    memcpy(out.nsn, <const char *>nsn, out.nsn_len)
    out.region = _REGION_INDEX[number.region]
    out.toll_free = number.tollfree
    return 0


cdef object _number_object(const ws_number *num):
    """The labels._Number of a C number (for the NANP state lookup)."""
    nsn = (<const char *>num.nsn)[:num.nsn_len].decode("ascii")
    return _L._Number(f"+{num.cc}{nsn}", num.cc, nsn, _REGION_NAMES[num.region] if num.region else None,
                      bool(num.toll_free))


cdef int _learn_nanp_state(const ws_number *num, uint32_t npanxx) except -1:
    """ws_lbl_zone asked for the state of a number's NPA-NXX: labels._nanp_state's answer, kept."""
    global _NANP_STATES
    if _NANP_STATES == NULL:
        _NANP_STATES = <uint8_t *>calloc(_NPANXX_COUNT, 1)
        if _NANP_STATES == NULL:
            raise MemoryError()
    state = _L._nanp_state(_number_object(num))
    if state is None:
        _NANP_STATES[npanxx] = 1
        return 0
    if state not in _STATE_NAMES:
        if len(_STATE_NAMES) >= 253:
            raise RuntimeError("too many NANP states")
        _STATE_NAMES.append(state)
    _NANP_STATES[npanxx] = 2 + _STATE_NAMES.index(state)
    return 0


cdef inline uint32_t _npanxx(const ws_number *num) noexcept:
    cdef uint32_t v = 0
    for i in range(6):
        v = v * 10 + <uint32_t>(num.nsn[i] - 48)
    return v


cdef inline void _addr_of16(const uint8_t *a16, int64_t port, ws_lbl_addr *out) noexcept:
    """An engine address (IPv4 v4-mapped) as labels._ip reads its text."""
    out.port = port
    if memcmp(a16, <const char *>_V4_MAPPED_12, 12) == 0:
        out.family = 4
        memset(out.addr, 0, 16)
        memcpy(out.addr, a16 + 12, 4)
    else:
        out.family = 6
        memcpy(out.addr, a16, 16)


cdef bytes _V4_MAPPED_12 = bytes(10) + b"\xff\xff"


cdef int _addr_of_ip(object ip, object port, ws_lbl_addr *out) except -1:
    """labels._ip's answer (an ipaddress address, or None) as ws_lbl_addr."""
    memset(out, 0, sizeof(ws_lbl_addr))
    out.port = port
    if ip is None:
        return 0
    packed = ip.packed
    out.family = 4 if len(packed) == 4 else 6
    memcpy(out.addr, <const char *>packed, len(packed))
    return 0


# address text by engine address: a few proxies and gateways send most INVITEs
cdef dict _IP_TEXTS = {}
cdef Py_ssize_t MAX_IP_TEXTS = 4096


cdef str _ip_text_of(const uint8_t *a16):
    cdef bytes key = PyBytes_FromStringAndSize(<const char *>a16, 16)
    cdef PyObject *found = PyDict_GetItem(_IP_TEXTS, key)
    if found != NULL:
        return <str>found
    if len(_IP_TEXTS) >= MAX_IP_TEXTS:
        _IP_TEXTS.clear()
    text = _IP_TEXTS[key] = ip_text(key)
    return text


# header names labels ask for -> (lower-case bytes...), for the scan below
cdef dict _HEADER_NAME_BYTES = {}


cdef bint _may_have_headers(const uint8_t *p, uint32_t n, object names) except -1:
    """False when header_values(p[:n], names) is certainly empty: an ASCII
    header section in which no name occurs, in any case (what header_values
    checks first, here without copying the message)."""
    cdef uint32_t i
    cdef uint8_t seen = 0
    cdef bytes b
    wanted = _HEADER_NAME_BYTES.get(names)
    if wanted is None:
        if len(_HEADER_NAME_BYTES) > 64:
            _HEADER_NAME_BYTES.clear()
        wanted = _HEADER_NAME_BYTES[names] = tuple(name.encode() for name in names)
    for i in range(n):
        seen |= p[i]      # no early exit: the compiler vectorises the loop
    if seen & 0x80:
        return True       # header_values lower-cases non-ASCII text as str: let it decide
    for b in wanted:
        if _has_ci(p, n, b, <uint32_t>len(b)):
            return True
    return False


cdef object _invite_info(object config, const uint8_t *base, const ws_sip_msg *m, const uint8_t *data, uint32_t n,
                         const uint8_t *src16, uint16_t sport, const uint8_t *dst16, uint16_t dport):
    """The InviteInfo of a scanned INVITE, for LabelConfig.labels() (the
    Python path: what the tracker made for every INVITE before the native one)."""
    cdef uint32_t header_len = m.header_len if m.header_len < n else n
    names = config.header_names
    headers = {}
    if names and _may_have_headers(data, header_len, names):
        headers = _header_values(PyBytes_FromStringAndSize(<const char *>data, n), header_len, names)
    # positional, in InviteInfo's field order: keywords cost a dict per INVITE
    return _InviteInfo(_ip_text_of(src16), sport, _ip_text_of(dst16), dport,
                       _text(base, m.request_uri), _text(base, m.from_uri), _text(base, m.to_uri), headers)


cdef inline NativeLabels native_labels(object config):
    """config.native() (the tracker asks per INVITE: its attribute, without the call)."""
    native = config._native
    return native if native is not None else config.native()


cdef class NativeLabels:
    """A LabelConfig compiled for the native path (LabelConfig.native()):
    labels_of() gives an initial INVITE's labels straight from its scanned
    bytes, the same shared CallLabels LabelConfig.labels() gives for it."""

    def __cinit__(self):
        self.scratch = <uint8_t *>malloc(_SCRATCH)
        self.host = <uint8_t *>malloc(_SCRATCH)
        if self.scratch == NULL or self.host == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.scratch)
        free(self.host)
        free(self._nets)
        free(self._rule_conds)
        free(self._conds)
        free(self._ports)
        free(self._trunk_ids)
        free(self._strings)
        ws_lbl_sets_free(&self.sets)

    def __init__(self, config):
        _load_tables()
        L = _L
        self._config = weakref.ref(config)   # weakly: the config keeps this (native()), not a cycle
        self._set_objects = []
        self._python_numbers = {}
        self.default_region = config.default_country
        self.default_cc = config._default_cc
        plan = (L._REGION_PLANS[self.default_region] if self.default_region in L._REGION_PLANS
                else L._region_plan(self.default_region))
        if plan is not None:
            try:
                _fill_plan(&self.region_plan, plan)
                self.has_region_plan = True
            except _Unsupported:
                pass   # national numbers go to Python
        self._compile_rules(config)

    def _compile_rules(self, config):
        """The rules as ws_lbl_rules: arrays of nets, ports, conditions, and
        every string (header names and values, domains, prefixes) in _text."""
        if self._conds != NULL:
            raise RuntimeError("the rules are compiled once")
        L = _L
        rules = (config.trunks, config.providers, config.accounts)
        names = [L.PAI] + sorted(config.header_names - {L.PAI})
        if len(names) > 255 or any(len(r) >= 1 << _RULE_BITS for r in rules):
            self.python_only = True   # beyond a label set key: labels() does it all
        self._rule_names = tuple((L.UNKNOWN,) + tuple(rule.name for rule in section)
                                 for section in (config.accounts, config.trunks, config.providers))
        text = bytearray()
        strings = []

        def span(value: str):
            raw = value.encode("utf-8", "surrogatepass")
            strings.append((len(text), len(raw)))
            text.extend(raw)

        for name in names:
            span(name)
        nets = list(config.platform_networks)
        conds, rule_conds, ports, trunk_ids = [], [], [], []
        trunk_index = {rule.name: i + 1 for i, rule in enumerate(config.trunks)}
        for section in rules:
            for rule in section:
                rule_conds.append((len(conds), len(rule.conds)))
                for c in rule.conds:
                    row = [0, 0] + [(0, 0)] * 6   # keys, header, nets, ports, values, trunks, domains, prefixes
                    if c.nets is not None:
                        row[0] |= WS_COND_NETS
                        row[2] = (len(nets), len(c.nets))
                        nets.extend(c.nets)
                    if c.ports is not None:
                        row[0] |= WS_COND_PORTS
                        row[3] = (len(ports), len(c.ports))
                        ports.extend(sorted(c.ports))
                    if c.header is not None:
                        row[0] |= WS_COND_HEADER
                        row[1] = names.index(c.header[0])
                        row[4] = (len(strings), len(c.header[1]))
                        for value in sorted(c.header[1]):
                            span(value)
                    if c.trunks is not None:
                        row[0] |= WS_COND_TRUNKS
                        row[5] = (len(trunk_ids), len(c.trunks))
                        trunk_ids.extend(trunk_index[t] for t in sorted(c.trunks))
                    if c.pai_domains is not None:
                        row[0] |= WS_COND_DOMAINS
                        row[6] = (len(strings), len(c.pai_domains))
                        for domain in sorted(c.pai_domains):
                            span(domain)
                    if c.prefixes is not None:
                        row[0] |= WS_COND_PREFIXES
                        row[7] = (len(strings), len(c.prefixes))
                        for prefix in c.prefixes:
                            span(prefix)
                    conds.append(row)
        self._text = bytes(text)
        self._nets = <ws_lbl_net *>calloc(max(1, len(nets)), sizeof(ws_lbl_net))
        self._rule_conds = <ws_lbl_list *>calloc(max(1, len(rule_conds)), sizeof(ws_lbl_list))
        self._conds = <ws_lbl_cond *>calloc(max(1, len(conds)), sizeof(ws_lbl_cond))
        self._ports = <int64_t *>calloc(max(1, len(ports)), sizeof(int64_t))
        self._trunk_ids = <uint32_t *>calloc(max(1, len(trunk_ids)), sizeof(uint32_t))
        self._strings = <ws_span *>calloc(max(1, len(strings)), sizeof(ws_span))
        if (self._nets == NULL or self._rule_conds == NULL or self._conds == NULL or self._ports == NULL
                or self._trunk_ids == NULL or self._strings == NULL):
            raise MemoryError()
        cdef ws_lbl_net *net
        cdef ws_lbl_cond *cond
        for i, network in enumerate(nets):
            net = &self._nets[i]
            packed = network.network_address.packed
            net.v6 = len(packed) == 16
            net.bits = network.prefixlen
            memcpy(net.addr, <const char *>packed, len(packed))
        for i, (first, count) in enumerate(rule_conds):
            self._rule_conds[i].first, self._rule_conds[i].count = first, count
        for i, row in enumerate(conds):
            cond = &self._conds[i]
            cond.keys, cond.header = row[0], row[1]
            cond.nets.first, cond.nets.count = row[2]
            cond.ports.first, cond.ports.count = row[3]
            cond.values.first, cond.values.count = row[4]
            cond.trunks.first, cond.trunks.count = row[5]
            cond.domains.first, cond.domains.count = row[6]
            cond.prefixes.first, cond.prefixes.count = row[7]
        for i, port in enumerate(ports):
            self._ports[i] = port
        for i, trunk in enumerate(trunk_ids):
            self._trunk_ids[i] = trunk
        for i, (off, length) in enumerate(strings):
            self._strings[i].off, self._strings[i].len = off, length
        cdef ws_lbl_rules *r = &self.rules
        r.platform, r.n_platform = self._nets, len(config.platform_networks)
        r.n_trunks, r.n_providers, r.n_accounts = len(config.trunks), len(config.providers), len(config.accounts)
        r.trunks = self._rule_conds
        r.providers = self._rule_conds + r.n_trunks
        r.accounts = self._rule_conds + r.n_trunks + r.n_providers
        r.conds, r.nets, r.ports, r.trunk_ids = self._conds, self._nets, self._ports, self._trunk_ids
        r.strings = self._strings
        r.text = <const uint8_t *>(<const char *>self._text)
        r.need_remotes = config._need_remotes
        r.need_addresses = config._need_addresses
        r.need_pai_domain = config._need_pai_domain
        r.values_non_ascii = any(not value.isascii() for rule in config.trunks + config.providers + config.accounts
                                 for c in rule.conds if c.header is not None for value in c.header[1])
        # the header names are the first strings
        self.names.count = len(names)
        self.names.text = r.text
        self.names.name = self._strings
        memset(self.names.first_chars, 0, 256)
        for name in names:
            self.names.first_chars[ord(name[0].lower())] = 1
            self.names.first_chars[ord(name[0].upper())] = 1

    # -- the tracker's entry ----------------------------------------------------

    cdef object labels_of(self, const uint8_t *base, const ws_sip_msg *m, const uint8_t *data, uint32_t n,
                          const uint8_t *src16, uint16_t sport, const uint8_t *dst16, uint16_t dport):
        """The labels of an initial INVITE scanned by ws_sip_parse: spans of m
        are offsets into base, m.header_len counts in data (n bytes)."""
        cdef ws_lbl_addr src, dst
        cdef uint32_t header_len = m.header_len if m.header_len < n else n
        self.n_invites += 1
        if (not self.python_only and header_len <= _SCRATCH
                and ws_lbl_header_values(&self.names, data, header_len, self.scratch, _SCRATCH,
                                         &self.values) == WS_LBL_OK):
            _addr_of16(src16, sport, &src)
            _addr_of16(dst16, dport, &dst)
            found = self._labels(base, m.request_uri, m.to_uri, m.from_uri, self.scratch, &src, &dst, None)
            if found is not None:
                return found
        self.n_python_invites += 1
        config = self._live_config()
        return config.labels(_invite_info(config, base, m, data, n, src16, sport, dst16, dport))

    # -- the steps of LabelConfig.labels() --------------------------------------

    cdef object _labels(self, const uint8_t *ubase, ws_span ruri, ws_span to, ws_span frm, const uint8_t *vtext,
                        const ws_lbl_addr *src, const ws_lbl_addr *dst, tuple texts):
        """LabelConfig.labels() on the URIs (spans into ubase; `texts` their
        str when the caller has them), the header values (self.values, into
        vtext) and the addresses; None when Python must label the whole INVITE."""
        cdef ws_number dest, orig
        cdef ws_lbl_match match
        cdef ws_span idents[32]
        cdef ws_span *ident
        cdef const uint8_t *value
        cdef uint32_t i, j, count, zone = WS_ZONE_UNKNOWN, npanxx = 0, host_len = 0
        cdef int found
        cdef bint has_host = False
        self._number_of_uri(ubase + ruri.off, ruri.len, texts[0] if texts is not None else None, &dest)
        if not dest.present:
            self._number_of_uri(ubase + to.off, to.len, texts[1] if texts is not None else None, &dest)
        orig.present = 0
        for i in range(self.values.count):
            if self.values.name[i] != 0:   # p-asserted-identity is name 0
                continue
            value = vtext + self.values.value[i].off
            if memchr(value, 44, self.values.value[i].len) != NULL:   # a ",": several identities
                found = ws_lbl_split_addresses(value, self.values.value[i].len, idents, 32)
                if found < 0:
                    return None
                count = found
            else:
                idents[0].off, idents[0].len, count = 0, self.values.value[i].len, 1
            for j in range(count):
                ident = &idents[j]
                if not orig.present:
                    self._number_of_uri(value + ident.off, ident.len, None, &orig)
                if self.rules.need_pai_domain and not has_host:
                    has_host = self._uri_host(value + ident.off, ident.len, &host_len)
        if not orig.present:
            self._number_of_uri(ubase + frm.off, frm.len, texts[2] if texts is not None else None, &orig)
        if ws_lbl_match_rules(&self.rules, src, dst, &self.values, vtext, self.host if has_host else NULL, host_len,
                              &orig, &match) != WS_LBL_OK:
            return None
        while ws_lbl_zone(&dest, &orig, _NANP_STATES, _US, _CA, &zone, &npanxx) != WS_LBL_OK:
            self.n_state_lookups += 1
            _learn_nanp_state(&dest if _npanxx(&dest) == npanxx else &orig, npanxx)
        return self._label_set(&match, zone, dest.region if dest.present else 0,
                               orig.region if orig.present else 0)

    cdef int _number_of_uri(self, const uint8_t *p, uint32_t n, object text, ws_number *out) except -1:
        """labels._number_of(the URI at p, n bytes; `text` its str if known)."""
        cdef char dial[WS_LBL_DIAL_MAX + 2]
        cdef uint32_t length = 0
        cdef int rc = ws_lbl_dial_of_uri(p, n, dial, &length)
        if rc == WS_LBL_OK:
            return self._number_of_dial(dial, length, out)
        if rc == WS_LBL_NONE:
            memset(out, 0, sizeof(ws_number))
            return 0
        self.n_python_uris += 1
        if text is None and n:
            text = (<const char *>p)[:n].decode("utf-8", "replace")
        return _number_into(_L._number_of(text, self.default_region, self.default_cc), out)

    cdef int _number_of_dial(self, const char *dial, uint32_t n, ws_number *out) except -1:
        """labels._number(dial, default region, default country code)."""
        cdef uint16_t need = 0
        cdef int rc
        while True:
            rc = ws_number_of_dial(&_TABLES, &self.region_plan if self.has_region_plan else NULL,
                                   self.default_cc, dial, n, out, &need)
            if rc != WS_LBL_NEED_CC:
                break
            _build_cc(need)
        if rc != WS_LBL_PYTHON:
            return 0
        # Python's answer, kept: extensions ("sip:201@pbx") repeat, and parse() decides short ones
        self.n_python_numbers += 1
        key = dial[:n]
        known = self._python_numbers.get(key)
        if known is None:
            _number_into(_L._number(key.decode("ascii"), self.default_region, self.default_cc), out)
            if len(self._python_numbers) >= _PYTHON_NUMBERS:
                self._python_numbers.clear()
            self._python_numbers[key] = (<const char *>out)[:sizeof(ws_number)]
        else:
            memcpy(out, <const char *>known, sizeof(ws_number))
        return 0

    cdef bint _uri_host(self, const uint8_t *p, uint32_t n, uint32_t *length) except -1:
        """labels._uri_host(the identity at p) into self.host; False for None."""
        cdef int rc = ws_lbl_uri_host(p, n, self.host, length)
        if rc != WS_LBL_PYTHON:
            return rc == WS_LBL_OK
        self.n_python_uris += 1
        host = _L._uri_host((<const char *>p)[:n].decode("utf-8", "replace"))
        if host is None:
            return False
        raw = host.encode("utf-8", "surrogatepass")
        if <uint32_t>len(raw) > _SCRATCH:
            raise ValueError("P-Asserted-Identity host longer than the message")
        memcpy(self.host, <const char *>raw, len(raw))
        length[0] = len(raw)
        return True

    cdef object _label_set(self, const ws_lbl_match *match, uint32_t zone, uint16_t dest_region,
                           uint16_t orig_region):
        """The LabelConfig's shared CallLabels of a label set."""
        cdef uint32_t slot
        cdef uint64_t key = (match.account | (<uint64_t>match.trunk << _RULE_BITS)
                             | (<uint64_t>match.provider << (2 * _RULE_BITS))
                             | (<uint64_t>zone << (3 * _RULE_BITS))
                             | (<uint64_t>match.direction << (3 * _RULE_BITS + 3))
                             | (<uint64_t>dest_region << (3 * _RULE_BITS + 5))
                             | (<uint64_t>orig_region << (3 * _RULE_BITS + 5 + _REGION_BITS)))
        if ws_lbl_sets_get(&self.sets, key, &slot):
            return self._set_objects[slot]
        accounts, trunks, providers = self._rule_names
        names = (accounts[match.account], trunks[match.trunk], providers[match.provider], _ZONE_NAMES[zone],
                 _DIRECTION_NAMES[match.direction], _REGION_NAMES[dest_region], _REGION_NAMES[orig_region])
        config = self._live_config()
        found = config._label_sets.get(names)
        if found is None:
            found = config._new_label_set(names)
        if ws_lbl_sets_put(&self.sets, key, len(self._set_objects)) != 0:
            raise MemoryError()
        self._set_objects.append(found)
        return found

    cdef object _live_config(self):
        config = self._config()
        if config is None:
            raise ReferenceError("the LabelConfig of this NativeLabels is gone")
        return config

    @property
    def config(self):
        """The LabelConfig compiled (None once it is gone)."""
        return self._config()

    def forget_label_sets(self):
        """The LabelConfig dropped its shared label sets: so does this."""
        ws_lbl_sets_clear(&self.sets)
        self._set_objects = []

    # -- Python entries (tests, measurements) -----------------------------------

    def labels(self, info):
        """labels_of for an InviteInfo (what LabelConfig.labels(info) gives)."""
        cdef ws_lbl_addr src, dst
        cdef ws_span uris[3]
        cdef bytes utext, vtext
        cdef Py_ssize_t k
        L = _L
        config = self._live_config()
        self.n_invites += 1
        uris_text = (info.request_uri, info.to_uri, info.from_uri)
        pieces, off = [], 0
        for k, uri in enumerate(uris_text):
            raw = uri.encode("utf-8", "surrogatepass") if isinstance(uri, str) else b""
            uris[k].off, uris[k].len = off, len(raw)
            pieces.append(raw)
            off += len(raw)
        utext = b"".join(pieces)
        headers = info.headers or {}
        pieces, off, count = [], 0, 0
        python = self.python_only or not isinstance(info.sport, int) or not isinstance(info.dport, int)
        for k in range(self.names.count):
            name = (<const char *>self._text)[self._strings[k].off:self._strings[k].off + self._strings[k].len]
            found = headers.get(name.decode())
            if isinstance(found, str):
                found = (found,)
            if not found:
                continue
            if not isinstance(found, (list, tuple)):
                python = True
                break
            for value in found:
                if not isinstance(value, str):
                    continue
                raw = value.encode("utf-8", "surrogatepass")
                if not raw.isascii() or count == WS_LBL_MAX_VALUES:
                    python = True
                    break
                self.values.name[count] = k
                self.values.value[count].off, self.values.value[count].len = off, len(raw)
                pieces.append(raw)
                off += len(raw)
                count += 1
        self.values.count = count
        vtext = b"".join(pieces)
        if not python:
            need = config._need_addresses
            _addr_of_ip(L._ip(info.src) if need else None, info.sport, &src)
            _addr_of_ip(L._ip(info.dst) if need else None, info.dport, &dst)
            found = self._labels(<const uint8_t *>(<const char *>utext), uris[0], uris[1], uris[2],
                                 <const uint8_t *>(<const char *>vtext), &src, &dst, uris_text)
            if found is not None:
                return found
        self.n_python_invites += 1
        return config.labels(info)

    def number(self, str dial):
        """labels._number(dial) under this configuration's default country,
        by the native analysis, and whether Python was asked: (_Number or
        None, asked)."""
        cdef ws_number out
        cdef uint64_t before = self.n_python_numbers
        raw = dial.encode("ascii")
        self._number_of_dial(raw, len(raw), &out)
        return (_number_object(&out) if out.present else None), self.n_python_numbers != before

    def label_batch(self, InviteBatch batch, bint python=False):
        """labels_of (python: the Python path, InviteInfo and labels()) for
        every INVITE of a batch, in a loop without Python between them."""
        cdef Py_ssize_t i
        cdef list out = [None] * batch.count
        cdef const uint8_t *data
        cdef uint32_t n
        config = self._live_config()
        for i in range(batch.count):
            data = <const uint8_t *>(<const char *>batch.arena) + batch.offsets[i]
            n = batch.lengths[i]
            if python:
                out[i] = config.labels(_invite_info(config, data, &batch.msgs[i], data, n,
                                                         batch.src + 16 * i, batch.sport[i], batch.dst + 16 * i,
                                                         batch.dport[i]))
            else:
                out[i] = self.labels_of(data, &batch.msgs[i], data, n, batch.src + 16 * i, batch.sport[i],
                                        batch.dst + 16 * i, batch.dport[i])
        return out

    @property
    def stats(self):
        """INVITEs labelled, and how often Python decided: a whole INVITE, a
        URI, a dial string, a NANP state (looked up once per NPA-NXX)."""
        return {"invites": self.n_invites, "python_invites": self.n_python_invites,
                "python_uris": self.n_python_uris, "python_numbers": self.n_python_numbers,
                "state_lookups": self.n_state_lookups}


cdef class InviteBatch:
    """Initial INVITEs scanned once (for NativeLabels.label_batch): each
    (payload, src addr16, sport, dst addr16, dport); the payload is the whole
    datagram. The payloads lie end to end, as in the engine's signalling arena."""
    cdef bytes arena
    cdef uint32_t *offsets
    cdef uint32_t *lengths
    cdef ws_sip_msg *msgs
    cdef uint8_t *src
    cdef uint8_t *dst
    cdef uint16_t *sport
    cdef uint16_t *dport
    cdef readonly Py_ssize_t count

    def __cinit__(self, invites):
        cdef Py_ssize_t i, n = len(invites)
        cdef bytes payload
        cdef ws_sip_msg *m
        self.msgs = <ws_sip_msg *>calloc(max(n, 1), sizeof(ws_sip_msg))
        self.src = <uint8_t *>calloc(max(n, 1), 16)
        self.dst = <uint8_t *>calloc(max(n, 1), 16)
        self.sport = <uint16_t *>calloc(max(n, 1), sizeof(uint16_t))
        self.dport = <uint16_t *>calloc(max(n, 1), sizeof(uint16_t))
        self.offsets = <uint32_t *>calloc(max(n, 1), sizeof(uint32_t))
        self.lengths = <uint32_t *>calloc(max(n, 1), sizeof(uint32_t))
        if (self.msgs == NULL or self.src == NULL or self.dst == NULL or self.sport == NULL or self.dport == NULL
                or self.offsets == NULL or self.lengths == NULL):
            raise MemoryError()
        self.arena = b"".join([invite[0] for invite in invites])
        cdef uint32_t offset = 0
        for i in range(n):
            payload, src16, sport, dst16, dport = invites[i]
            if len(src16) != 16 or len(dst16) != 16:
                raise ValueError("addresses are 16 bytes (IPv4 v4-mapped)")
            self.offsets[i], self.lengths[i] = offset, len(payload)
            ws_sip_parse(<const uint8_t *>(<const char *>self.arena) + offset, len(payload), 1, NULL, &self.msgs[i])
            offset += len(payload)
            m = &self.msgs[i]
            if m.status != WS_SIP_OK or not m.is_request or m.method != WS_SIP_INVITE or m.to_tag.len:
                raise ValueError(f"INVITE {i} is not an initial INVITE the scan accepts")
            memcpy(self.src + 16 * i, <const char *>src16, 16)
            memcpy(self.dst + 16 * i, <const char *>dst16, 16)
            self.sport[i], self.dport[i] = sport, dport
        self.count = n

    def __dealloc__(self):
        free(self.offsets)
        free(self.lengths)
        free(self.msgs)
        free(self.src)
        free(self.dst)
        free(self.sport)
        free(self.dport)
