# cython: language_level=3
# The Python face's own state: the engine handle, a parsed SIP message, the
# call labels (labels/labels.pxd) and the dialog state machine
# (sip/dialogs.pxd). The C state they wrap is declared in wsnative.pxd.

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from wsnative cimport *


cdef class Engine:
    cdef ws_engine *e
    cdef ws_reader reader
    cdef bint reader_open
    cdef object path
    cdef ws_ring ring
    cdef bint ring_open
    cdef object spool_dir


cdef class SipHeaders:
    # the scan's result; its spans are offsets into `text` (the message,
    # or the fields of a header object given by hand), except body and
    # header_len, which count in the message itself
    cdef ws_sip_msg m
    cdef bytes text

    cdef str _field(self, ws_span sp)


include "labels/labels.pxd"
include "sip/dialogs.pxd"
include "quality/call_media.pxd"
include "metrics/aggregate.pxd"
