# Call labels computed natively: a LabelConfig compiled into the C tables of
# ext/labels/ws_labels.h (LabelConfig.native() makes one, and keeps it).
# Implemented in labels/labels.pyx (included by _engine.pyx before the
# tracker, sip/dialogs.pyx, which calls labels_of at each initial INVITE).
# phonenumbers' metadata, compiled per country code on first need, is shared
# by every NativeLabels (module state in labels.pyx).


cdef class NativeLabels:
    cdef object _config                    # weakref to the warpsniff.labels.LabelConfig compiled
    cdef bint python_only                  # beyond what the tables hold: every INVITE goes to labels()
    # the configuration's rules (ws_lbl_rules points into the arrays below)
    cdef ws_lbl_rules rules
    cdef ws_lbl_names names                # LabelConfig.header_names, p-asserted-identity first
    cdef bytes _text                       # names, header values, domains, prefixes: spans point here
    cdef ws_lbl_net *_nets                 # platform addresses first, then the conditions'
    cdef ws_lbl_list *_rule_conds          # trunks, providers, accounts: each rule's conditions
    cdef ws_lbl_cond *_conds
    cdef int64_t *_ports
    cdef uint32_t *_trunk_ids
    cdef ws_span *_strings
    cdef tuple _rule_names                 # (accounts, trunks, providers), each ("unknown", names...)
    # numbers
    cdef dict _python_numbers              # dial string -> the ws_number Python gave (bytes)
    cdef ws_num_plan region_plan           # the default region's plan (_REGION_PLANS)
    cdef bint has_region_plan
    cdef uint16_t default_cc
    cdef object default_region
    # one INVITE's header values, and the P-Asserted-Identity host
    cdef uint8_t *scratch
    cdef uint8_t *host
    cdef ws_lbl_values values
    # label sets handed out: key -> slot in _set_objects (the LabelConfig's shared CallLabels)
    cdef ws_lbl_sets sets
    cdef list _set_objects
    # how often Python decided (the `stats` property)
    cdef uint64_t n_invites, n_python_invites, n_python_uris, n_python_numbers, n_state_lookups

    cdef object labels_of(self, const uint8_t *base, const ws_sip_msg *m, const uint8_t *data, uint32_t n,
                          const uint8_t *src16, uint16_t sport, const uint8_t *dst16, uint16_t dport)
    cdef object _labels(self, const uint8_t *ubase, ws_span ruri, ws_span to, ws_span frm, const uint8_t *vtext,
                        const ws_lbl_addr *src, const ws_lbl_addr *dst, tuple texts)
    cdef int _number_of_uri(self, const uint8_t *p, uint32_t n, object text, ws_number *out) except -1
    cdef int _number_of_dial(self, const char *dial, uint32_t n, ws_number *out) except -1
    cdef bint _uri_host(self, const uint8_t *p, uint32_t n, uint32_t *length) except -1
    cdef object _live_config(self)
    cdef object _label_set(self, const ws_lbl_match *match, uint32_t zone, uint16_t dest_region,
                           uint16_t orig_region)
