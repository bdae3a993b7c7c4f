# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""SIP message parser compiled with Cython: the fast twin of `engine.sip.parser`.

One pass over the header section records byte offsets of every header (a C array kept in the
message); values become Python strings only when asked for. The checks are the same as the
pure-Python parser's and decide validity here, in C. When a message is invalid the reference
parser is run on it to word the error, so both raise the very same ParseError; invalid input
is rare, and the error path may be slow.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy

from engine.sip import parser as _reference
from engine.sip.message import (
    COMPACT_FORMS,
    LIST_HEADERS,
    VALIDATED_HEADERS,
    CSeq,
    HeaderAccess,
    ParseError,
    header_key,
    parse_cseq,
    split_list,
    unfold,
)

import sys

if sys.byteorder != "little":
    # special_bytes() finds the first flagged byte with a count of trailing zeros.
    raise ImportError("engine.sip._parser assumes a little-endian machine; using the twin")

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject* cls, Py_ssize_t items)

cdef extern from *:
    int __builtin_ctzll(unsigned long long x) nogil

cdef inline bint same_lower(const char* text, const char* lower, Py_ssize_t n) noexcept nogil:
    """Whether `text` equals `lower` (lower case) ignoring ASCII case. Setting bit 5 lowers
    letters and leaves digits, '-', '.', '/' and ':' alone: enough for names and versions."""
    cdef Py_ssize_t k
    for k in range(n):
        if (text[k] | 32) != lower[k]:
            return False
    return True

ctypedef unsigned char uchar

cdef enum:
    INLINE_FIELDS = 16        # headers kept inside the message object; more are allocated
    MAX_MESSAGE_SIZE = 65536  # a UDP datagram is at most 64 KiB

# --- character classes -------------------------------------------------------------------------

cdef enum:
    C_TOKEN = 1
    C_PVALUE = 2      # gen-value: token / host (adds ':' '[' ']')
    C_HOST = 4
    C_WSP = 8
    C_DIGIT = 16
    C_CTRL = 32       # may stand in a line only after a backslash
    C_HIGH = 64
    C_ALPHA = 128
    C_SPECIAL = 256   # ends or may spoil a line: LF, CR, control characters, non-ASCII
    C_ADDR_SPEC_STOP = 512  # '?' and ',': a URI holding them must be inside <>
    C_SCHEME = 1024   # what follows a scheme's first letter: letters, digits, '+', '-', '.'

cdef unsigned short CLS[256]


cdef void _init_classes():
    cdef int c
    for c in range(256):
        CLS[c] = 0
    for c in range(ord("0"), ord("9") + 1):
        CLS[c] |= C_TOKEN | C_PVALUE | C_HOST | C_DIGIT
    for c in range(ord("a"), ord("z") + 1):
        CLS[c] |= C_TOKEN | C_PVALUE | C_HOST | C_ALPHA
        CLS[c - 32] |= C_TOKEN | C_PVALUE | C_HOST | C_ALPHA
    for c in b"-.!%*_+`'~":
        CLS[c] |= C_TOKEN | C_PVALUE
    CLS[ord("-")] |= C_HOST
    CLS[ord(".")] |= C_HOST
    for c in b"[]:":
        CLS[c] |= C_PVALUE
    CLS[ord(" ")] |= C_WSP
    CLS[ord("\t")] |= C_WSP
    for c in range(0x20):
        if c != 9 and c != 10 and c != 13:
            CLS[c] |= C_CTRL
    CLS[0x7F] |= C_CTRL
    for c in range(0x80, 0x100):
        CLS[c] |= C_HIGH
    for c in range(256):
        if CLS[c] & (C_CTRL | C_HIGH) or c == 10 or c == 13:
            CLS[c] |= C_SPECIAL
        if CLS[c] & (C_ALPHA | C_DIGIT) or c in b"+-.":
            CLS[c] |= C_SCHEME
    CLS[ord("?")] |= C_ADDR_SPEC_STOP
    CLS[ord(",")] |= C_ADDR_SPEC_STOP


_init_classes()

cdef inline uint64_t special_bytes(uint64_t x) noexcept nogil:
    """Flags (bit 7 of each byte) the bytes of a little-endian 8-byte chunk that need a look:
    below 0x20, 0x7F, or 0x80 and above. The lowest flag is exact (borrows only run upward)."""
    cdef uint64_t high = x & 0x8080808080808080ULL
    cdef uint64_t low = (x - 0x2020202020202020ULL) & ~x & 0x8080808080808080ULL
    cdef uint64_t y = x ^ 0x7F7F7F7F7F7F7F7FULL
    cdef uint64_t delete = (y - 0x0101010101010101ULL) & ~y & 0x8080808080808080ULL
    return high | low | delete


# --- header identities -------------------------------------------------------------------------
# Known headers get a small integer id, found in C from the name as written (any case, compact
# form or not), so lookups and checks never build a Python string for the name.

cdef enum:
    H_OTHER = 0
    H_FROM = 1
    H_TO
    H_REFER_TO
    H_REFERRED_BY
    H_REPLY_TO
    H_CONTACT
    H_ROUTE
    H_RECORD_ROUTE
    H_VIA
    H_CSEQ
    H_MAX_FORWARDS
    H_EXPIRES
    H_MIN_EXPIRES
    H_RETRY_AFTER
    H_WARNING
    H_DATE
    H_CONTENT_LENGTH
    H_CALL_ID
    H_FIRST_UNVALIDATED = H_CALL_ID

_ID_KEYS = [
    "from", "to", "refer-to", "referred-by", "reply-to", "contact", "route", "record-route",
    "via", "cseq", "max-forwards", "expires", "min-expires", "retry-after", "warning", "date",
    "content-length", "call-id",
]
# Every compact form's header has an id too, so a field with id 0 is never a compact form.
_ID_KEYS += sorted(set(COMPACT_FORMS.values()) - set(_ID_KEYS))
_ID_KEYS += ["subscription-state", "www-authenticate", "proxy-authenticate"]
assert _ID_KEYS[H_CALL_ID - 1] == "call-id"
assert set(VALIDATED_HEADERS) == set(_ID_KEYS[: H_FIRST_UNVALIDATED - 1])

#: key -> id for lookups from Python (`get("Via")`).
cdef dict KEY_IDS = {key: i + 1 for i, key in enumerate(_ID_KEYS)}
cdef list ID_KEYS = [None] + _ID_KEYS

cdef enum:
    MAX_NAMES = 64
    MAX_NAME_LEN = 24
cdef const char* NAME_PTR[MAX_NAMES]
cdef int NAME_LEN[MAX_NAMES]
cdef int NAME_ID[MAX_NAMES]
cdef int N_NAMES = 0
cdef int BY_LEN[MAX_NAME_LEN + 2]  # names sorted by length: those of length L are [BY_LEN[L], BY_LEN[L+1])
cdef list _name_bytes = []  # keeps the bytes behind NAME_PTR alive


cdef void _index_names():
    global N_NAMES
    cdef bytes raw
    cdef int length
    names = [(key, hid) for key, hid in KEY_IDS.items()]
    names += [(short, KEY_IDS[key]) for short, key in COMPACT_FORMS.items()]
    names.sort(key=lambda item: len(item[0]))
    assert len(names) <= MAX_NAMES and max(len(name) for name, _ in names) <= MAX_NAME_LEN
    for name, hid in names:
        raw = name.encode("ascii")
        _name_bytes.append(raw)
        NAME_PTR[N_NAMES] = PyBytes_AS_STRING(raw)
        NAME_LEN[N_NAMES] = len(raw)
        NAME_ID[N_NAMES] = hid
        N_NAMES += 1
    for length in range(MAX_NAME_LEN + 2):
        BY_LEN[length] = sum(1 for name, _ in names if len(name) < length)


_index_names()


cdef inline int header_id(const char* name, Py_ssize_t n) noexcept nogil:
    cdef int i
    if n > MAX_NAME_LEN:
        return H_OTHER
    for i in range(BY_LEN[n], BY_LEN[n + 1]):
        if same_lower(name, NAME_PTR[i], n):
            return NAME_ID[i]
    return H_OTHER


# --- grammar checks on a value's bytes (mirror engine.sip.message) -----------------------------


cdef inline Py_ssize_t skip_ws(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and CLS[s[i]] & C_WSP:
        i += 1
    return i


cdef inline Py_ssize_t quoted_end(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Index just past the quoted string opening at s[i]; -1 when unterminated."""
    i += 1
    while i < n:
        if s[i] == b"\\":
            i += 2
        elif s[i] == b'"':
            return i + 1
        else:
            i += 1
    return -1


cdef inline Py_ssize_t find(const uchar* s, Py_ssize_t i, Py_ssize_t n, uchar c) noexcept nogil:
    cdef const void* hit
    if i >= n:
        return -1
    hit = memchr(s + i, c, n - i)
    return -1 if hit == NULL else <Py_ssize_t>(<const uchar*>hit - s)


cdef bint check_uri(const uchar* s, Py_ssize_t a, Py_ssize_t b, bint in_angles) noexcept nogil:
    cdef Py_ssize_t i
    # Spaces never; '?' and ',' only inside <> (RFC 3261 section 20).
    cdef unsigned short refused = C_WSP if in_angles else C_WSP | C_ADDR_SPEC_STOP
    if a >= b:
        return False
    for i in range(a, b):
        if CLS[s[i]] & refused:
            return False
    if not CLS[s[a]] & C_ALPHA:
        return False
    i = a + 1
    while i < b and CLS[s[i]] & C_SCHEME:
        i += 1
    return i < b and s[i] == b":"


cdef struct Span:
    # A header parameter sought while its header is checked (the From tag, the top branch),
    # so that reading it later costs one decode.
    const char* name  # lower case
    Py_ssize_t name_len
    bint found
    const uchar* start  # its value; NULL when it has none
    const uchar* end


cdef Py_ssize_t check_params(const uchar* s, Py_ssize_t i, Py_ssize_t n,
                             Span* want) noexcept nogil:
    """`*( SEMI param )` from s[i:]; returns n when valid, -1 when not. Notes where the
    first parameter named `want.name` has its value, when `want` is given."""
    cdef Py_ssize_t start
    cdef bint sought
    while True:
        i = skip_ws(s, i, n)
        if i >= n:
            return n
        if s[i] != b";":
            return -1
        i = skip_ws(s, i + 1, n)
        start = i
        while i < n and CLS[s[i]] & C_TOKEN:
            i += 1
        if i == start:
            return -1
        sought = (want != NULL and not want.found and i - start == want.name_len
                  and same_lower(<const char*>s + start, want.name, want.name_len))
        if sought:
            want.found = True
            want.start = NULL
        i = skip_ws(s, i, n)
        if i < n and s[i] == b"=":
            i = skip_ws(s, i + 1, n)
            start = i
            if i < n and s[i] == b'"':
                i = quoted_end(s, i, n)
                if i < 0:
                    return -1
            else:
                while i < n and CLS[s[i]] & C_PVALUE:
                    i += 1
                if i == start:
                    return -1
            if sought:
                want.start = s + start
                want.end = s + i


cdef inline void strip(const uchar* s, Py_ssize_t* a, Py_ssize_t* b) noexcept nogil:
    while a[0] < b[0] and CLS[s[a[0]]] & C_WSP:
        a[0] += 1
    while b[0] > a[0] and CLS[s[b[0] - 1]] & C_WSP:
        b[0] -= 1


cdef Py_ssize_t address_params(const uchar* s, Py_ssize_t n) noexcept nogil:
    """Where the header parameters of a stripped address start; -1 when it is not valid."""
    cdef Py_ssize_t i, end, close, j
    if n == 0:
        return -1
    if s[0] == b'"':
        end = quoted_end(s, 0, n)
        if end < 0:
            return -1
        i = skip_ws(s, end, n)
        if i >= n or s[i] != b"<":
            return -1
    else:
        i = find(s, 0, n, b"<")
        if i < 0:
            end = find(s, 0, n, b";")
            if end < 0:
                end = n
            j = end
            while j > 0 and CLS[s[j - 1]] & C_WSP:
                j -= 1
            return end if check_uri(s, 0, j, False) else -1
        for j in range(i):
            if not CLS[s[j]] & (C_WSP | C_TOKEN):
                return -1
    close = find(s, i, n, b">")
    if close < 0 or not check_uri(s, i + 1, close, True):
        return -1
    return close + 1


cdef bint check_address(const uchar* s, Py_ssize_t a, Py_ssize_t b, Span* want) noexcept nogil:
    strip(s, &a, &b)
    cdef Py_ssize_t at = address_params(s + a, b - a)
    return at >= 0 and check_params(s + a, at, b - a, want) >= 0


cdef bint check_via(const uchar* s, Py_ssize_t a, Py_ssize_t b, Span* want) noexcept nogil:
    cdef Py_ssize_t i, start, after, j, port
    cdef int part
    strip(s, &a, &b)
    s += a
    cdef Py_ssize_t n = b - a
    i = 0
    for part in range(3):
        if part:
            i = skip_ws(s, i, n)
            if i >= n or s[i] != b"/":
                return False
            i = skip_ws(s, i + 1, n)
        start = i
        while i < n and CLS[s[i]] & C_TOKEN:
            i += 1
        if i == start:
            return False
    after = i
    i = skip_ws(s, i, n)
    if i == after or i >= n:
        return False
    if s[i] == b"[":
        j = find(s, i, n, b"]")
        if j < 0:
            return False
        i = j + 1
    else:
        start = i
        while i < n and CLS[s[i]] & C_HOST:
            i += 1
        if i == start:
            return False
    j = skip_ws(s, i, n)
    if j < n and s[j] == b":":
        i = skip_ws(s, j + 1, n)
        start = i
        port = 0
        while i < n and CLS[s[i]] & C_DIGIT:
            if i - start < 6:
                port = port * 10 + (s[i] - 48)
            i += 1
        if i == start or i - start > 5 or port > 65535:
            return False
    return check_params(s, i, n, want) >= 0


cdef Py_ssize_t list_item_end(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """End of the list element starting at s[i] (a ',' outside quotes and <>), as split_list."""
    cdef bint angle = False
    cdef Py_ssize_t end
    while i < n:
        if s[i] == b'"':
            end = quoted_end(s, i, n)
            if end < 0:
                return n
            i = end
            continue
        if s[i] == b"<":
            angle = True
        elif s[i] == b">":
            angle = False
        elif s[i] == b"," and not angle:
            return i
        i += 1
    return n


cdef bint check_list(const uchar* s, Py_ssize_t a, Py_ssize_t b, int hid,
                     Span* want) noexcept nogil:
    """Each element of a list header; `want` is looked for in the first element only."""
    cdef Py_ssize_t end, x, y
    cdef bint ok
    cdef bint single = find(s, a, b, b",") < 0
    while True:
        end = b if single else list_item_end(s, a, b)
        x = a
        y = end
        strip(s, &x, &y)
        if x == y:
            return False
        if hid == H_VIA:
            ok = check_via(s, x, y, want)
        elif hid == H_WARNING:
            ok = (y - x >= 3 and CLS[s[x]] & CLS[s[x + 1]] & CLS[s[x + 2]] & C_DIGIT
                  and (y - x == 3 or CLS[s[x + 3]] & C_WSP))
        else:
            ok = check_address(s, x, y, want)
        want = NULL
        if not ok:
            return False
        if end >= b:
            return True
        a = end + 1


cdef bint check_number(const uchar* s, Py_ssize_t a, Py_ssize_t b, unsigned long long limit) noexcept nogil:
    cdef unsigned long long value = 0
    cdef Py_ssize_t i
    strip(s, &a, &b)
    if a == b or b - a > 10:
        return False
    for i in range(a, b):
        if not CLS[s[i]] & C_DIGIT:
            return False
        value = value * 10 + (s[i] - 48)
    return value <= limit


cdef bint check_digits(const uchar* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t i
    if a == b:
        return False
    for i in range(a, b):
        if not CLS[s[i]] & C_DIGIT:
            return False
    return True


cdef bint check_cseq(const uchar* s, Py_ssize_t a, Py_ssize_t b, const uchar* method,
                     Py_ssize_t method_len) noexcept nogil:
    cdef Py_ssize_t i, start
    cdef unsigned long long number = 0
    strip(s, &a, &b)
    i = a
    while i < b and CLS[s[i]] & C_DIGIT:
        if i - a < 11:
            number = number * 10 + (s[i] - 48)
        i += 1
    if i == a or i >= b or not CLS[s[i]] & C_WSP:
        return False
    if i - a > 10 or number >= 2147483648ULL:
        return False
    i = skip_ws(s, i, b)
    start = i
    while i < b and CLS[s[i]] & C_TOKEN:
        i += 1
    if i == start or i != b:
        return False
    if method != NULL:
        if b - start != method_len:
            return False
        for i in range(method_len):
            if s[start + i] != method[i]:
                return False
    return True


cdef const char* WKDAYS = b"MonTueWedThuFriSatSun"
cdef const char* MONTHS = b"JanFebMarAprMayJunJulAugSepOctNovDec"


cdef bint one_of(const uchar* s, const char* table, int count) noexcept nogil:
    cdef int k
    for k in range(count):
        if s[0] == table[3 * k] and s[1] == table[3 * k + 1] and s[2] == table[3 * k + 2]:
            return True
    return False


cdef bint check_date(const uchar* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # "Sat, 13 Nov 2010 23:29:00 GMT": the fixed layout of RFC 1123 as RFC 3261 20.17 wants.
    cdef const char* layout = b"www, dd mmm yyyy hh:mm:ss GMT"
    cdef int k
    cdef char c
    strip(s, &a, &b)
    if b - a != 29:
        return False
    s += a
    for k in range(29):
        c = layout[k]
        if c == b"d" or c == b"y" or c == b"h" or c == b"m" and k > 16 or c == b"s":
            if not CLS[s[k]] & C_DIGIT:
                return False
        elif c != b"w" and c != b"m" and s[k] != c:
            return False
    return one_of(s, WKDAYS, 7) and one_of(s + 8, MONTHS, 12)


cdef bint check_value(int hid, const uchar* s, Py_ssize_t a, Py_ssize_t b, const uchar* method,
                      Py_ssize_t method_len, Span* want) noexcept nogil:
    cdef Py_ssize_t x, y
    if hid <= H_REPLY_TO:
        return check_address(s, a, b, want)
    if hid == H_CONTACT:
        x = a
        y = b
        strip(s, &x, &y)
        if y - x == 1 and s[x] == b"*":
            return True
        return check_list(s, a, b, hid, NULL)
    if hid == H_ROUTE or hid == H_RECORD_ROUTE or hid == H_VIA or hid == H_WARNING:
        return check_list(s, a, b, hid, want)
    if hid == H_CSEQ:
        return check_cseq(s, a, b, method, method_len)
    if hid == H_MAX_FORWARDS:
        return check_number(s, a, b, 255)
    if hid == H_EXPIRES or hid == H_MIN_EXPIRES:
        return check_number(s, a, b, 4294967295ULL)
    if hid == H_RETRY_AFTER:
        a = skip_ws(s, a, b)
        x = a
        while x < b and CLS[s[x]] & C_DIGIT:
            x += 1
        return check_number(s, a, x, 4294967295ULL)
    if hid == H_DATE:
        return check_date(s, a, b)
    if hid == H_CONTENT_LENGTH:
        return check_digits(s, a, b)
    return True


cdef bint check_request_line(const uchar* s, Py_ssize_t n, Py_ssize_t* sp1, Py_ssize_t* sp2) noexcept nogil:
    cdef Py_ssize_t i, k, at, scheme_end
    sp1[0] = find(s, 0, n, b" ")
    if sp1[0] <= 0:
        return False
    sp2[0] = find(s, sp1[0] + 1, n, b" ")
    if sp2[0] < 0 or sp2[0] == sp1[0] + 1 or sp2[0] == n - 1 or find(s, sp2[0] + 1, n, b" ") >= 0:
        return False
    for i in range(sp1[0]):
        if not CLS[s[i]] & C_TOKEN:
            return False
    if n - sp2[0] - 1 != 7 or not same_lower(<const char*>s + sp2[0] + 1, b"sip/2.0", 7):
        return False
    # The Request-URI: no <>, no whitespace, a scheme, and no headers in a SIP URI.
    i = sp1[0] + 1
    if s[i] == b"<":
        return False
    if find(s, i, sp2[0], b"\t") >= 0:
        return False
    if not CLS[s[i]] & C_ALPHA:
        return False
    k = i + 1
    while k < sp2[0] and CLS[s[k]] & C_SCHEME:
        k += 1
    if k >= sp2[0] or s[k] != b":":
        return False
    scheme_end = k
    if (scheme_end - i == 3 and same_lower(<const char*>s + i, b"sip", 3)) or (
            scheme_end - i == 4 and same_lower(<const char*>s + i, b"sips", 4)):
        at = sp2[0] - 1
        while at > i and s[at] != b"@":
            at -= 1
        if find(s, at if s[at] == b"@" else i, sp2[0], b"?") >= 0:
            return False
    return True


cdef bint check_status_line(const uchar* s, Py_ssize_t n, Py_ssize_t* reason_start) noexcept nogil:
    cdef Py_ssize_t sp1 = find(s, 0, n, b" ")
    cdef Py_ssize_t version_end = n if sp1 < 0 else sp1
    if version_end != 7 or not same_lower(<const char*>s, b"sip/2.0", 7) or sp1 < 0:
        return False
    if n < sp1 + 4 or not (b"1" <= s[sp1 + 1] <= b"6") or not (
            CLS[s[sp1 + 2]] & CLS[s[sp1 + 3]] & C_DIGIT):
        return False
    if n == sp1 + 4:
        reason_start[0] = n
        return True
    if s[sp1 + 4] != b" ":
        return False
    reason_start[0] = sp1 + 5
    return True

# --- messages ----------------------------------------------------------------------------------

cdef enum:
    NOTE_FROM_TAG = 0
    NOTE_TO_TAG = 1
    NOTE_BRANCH = 2
    NOTED_UNKNOWN = 0  # the header was folded: ask the reference grammar
    NOTED_NONE = 1  # no such header, parameter or value
    NOTED_VALUE = 2


cdef struct Field:
    # Offsets into the message; 32 bits are plenty for a datagram and keep messages small.
    uint32_t name_start
    uint32_t name_end
    uint32_t value_start    # stripped of surrounding whitespace when not folded
    uint32_t value_end
    uint8_t hid
    uint8_t folded


cdef inline str _key_of(str name):
    """The lookup key of header `name`: `name` itself when it is one already (the engine asks
    with keys, and `header_key` is a Python call)."""
    return name if name in KEY_IDS else header_key(name)


cdef class _Message:
    cdef bytes _data
    cdef Field* _fields
    cdef Py_ssize_t _count
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _body_start
    cdef Py_ssize_t _body_end
    cdef uint8_t _noted_state[3]  # per NOTE_*: NOTED_UNKNOWN / NOTED_NONE / NOTED_VALUE
    cdef uint32_t _noted_at[6]  # per NOTE_*: the value's start and end offsets
    cdef Field _inline[INLINE_FIELDS]

    def __cinit__(self):
        self._fields = self._inline
        self._capacity = INLINE_FIELDS
        self._count = 0

    def __dealloc__(self):
        if self._fields != self._inline:
            PyMem_Free(self._fields)

    cdef Field* _add(self) except NULL:
        cdef Field* grown
        if self._count == self._capacity:
            if self._fields == self._inline:
                grown = <Field*>PyMem_Malloc(2 * self._capacity * sizeof(Field))
                if grown != NULL:
                    for i in range(self._count):
                        grown[i] = self._inline[i]
            else:
                grown = <Field*>PyMem_Realloc(self._fields, 2 * self._capacity * sizeof(Field))
            if grown == NULL:
                raise MemoryError()
            self._fields = grown
            self._capacity *= 2
        self._count += 1
        return &self._fields[self._count - 1]

    cdef str _value(self, Field* f):
        cdef const char* p = PyBytes_AS_STRING(self._data)
        if f.folded:
            return unfold(self._data[f.value_start:f.value_end]).decode("utf-8")
        return PyUnicode_DecodeUTF8(p + f.value_start, f.value_end - f.value_start, NULL)

    cdef Field* _first(self, int hid):
        cdef Py_ssize_t i
        for i in range(self._count):
            if self._fields[i].hid == hid:
                return &self._fields[i]
        return NULL

    cdef str _key(self, Field* f):
        if f.hid:
            return ID_KEYS[f.hid]
        return self._data[f.name_start:f.name_end].decode("utf-8").lower()

    def get(self, str name):
        """The first value of header `name` (any case, compact form or not), or None."""
        cdef str key = _key_of(name)
        cdef int hid = KEY_IDS.get(key, 0)
        cdef Py_ssize_t i
        for i in range(self._count):
            if self._fields[i].hid == hid and (hid or self._key(&self._fields[i]) == key):
                return self._value(&self._fields[i])
        return None

    def get_all(self, str name):
        """Every value of header `name`, comma-separated lists split where the grammar allows."""
        cdef str key = _key_of(name)
        cdef int hid = KEY_IDS.get(key, 0)
        cdef Py_ssize_t i
        cdef list values = []
        for i in range(self._count):
            if self._fields[i].hid == hid and (hid or self._key(&self._fields[i]) == key):
                values.append(self._value(&self._fields[i]))
        if key in LIST_HEADERS:
            return [item for value in values for item in split_list(value) if item]
        return values

    def lines(self, str name):
        """Every value of header `name` as it came, one per header line (lists not split):
        what a response copies (Via, section 8.2.6.2)."""
        cdef str key = _key_of(name)
        cdef int hid = KEY_IDS.get(key, 0)
        cdef Py_ssize_t i
        return [self._value(&self._fields[i]) for i in range(self._count)
                if self._fields[i].hid == hid and (hid or self._key(&self._fields[i]) == key)]

    @property
    def headers(self):
        """Every header as (name as received, value unfolded), in order."""
        cdef Py_ssize_t i
        return [
            (self._data[self._fields[i].name_start:self._fields[i].name_end].decode("utf-8"),
             self._value(&self._fields[i]))
            for i in range(self._count)
        ]

    @property
    def body(self):
        return self._data[self._body_start:self._body_end]

    def response_head(self, str start_line, str to_tag=None):
        """A response's start line and what it copies of this request, as bytes (see
        `HeaderAccess.response_head`): the Via lines and the From, To, Call-ID and CSeq values
        copied as they came, without making a string of any."""
        cdef bytes data = self._data
        cdef list parts = [start_line.encode("utf-8"), b"\r\n"]
        cdef Field* f
        cdef Py_ssize_t i
        cdef int k
        for i in range(self._count):
            f = &self._fields[i]
            if f.hid == H_VIA:
                if f.folded:
                    return HeaderAccess.response_head(self, start_line, to_tag)
                parts += (b"Via: ", data[f.value_start:f.value_end], b"\r\n")
        for k in range(4):
            f = self._first(_COPIED_IDS[k])
            parts.append(_COPIED_NAMES[k])
            if f != NULL:
                if f.folded:
                    return HeaderAccess.response_head(self, start_line, to_tag)
                parts.append(data[f.value_start:f.value_end])
            if k == 1 and to_tag and self._noted(NOTE_TO_TAG) is None:
                parts += (b";tag=", to_tag.encode("utf-8"))
            parts.append(b"\r\n")
        return b"".join(parts)

    @property
    def call_id(self):
        cdef Field* f = self._first(H_CALL_ID)
        return None if f == NULL else self._value(f)

    @property
    def cseq(self):
        cdef Field* f = self._first(H_CSEQ)
        cdef const uchar* s
        cdef Py_ssize_t i, start, end
        cdef long number = 0
        if f == NULL:
            return None
        if f.folded:
            return parse_cseq(self._value(f))
        s = <const uchar*>PyBytes_AS_STRING(self._data)
        i = f.value_start
        while CLS[s[i]] & C_DIGIT:
            number = number * 10 + (s[i] - 48)
            i += 1
        start = skip_ws(s, i, f.value_end)
        return _cseq(number, PyUnicode_DecodeUTF8(<const char*>s + start, f.value_end - start, NULL))

    cdef object _noted(self, int which):
        """A parameter noted while parsing (see Span), or _NOT_NOTED when its header was
        folded and only the reference grammar reads it."""
        if self._noted_state[which] == NOTED_VALUE:
            return PyUnicode_DecodeUTF8(
                PyBytes_AS_STRING(self._data) + self._noted_at[2 * which],
                self._noted_at[2 * which + 1] - self._noted_at[2 * which], NULL)
        if self._noted_state[which] == NOTED_NONE:
            return None
        return _NOT_NOTED

    @property
    def from_tag(self):
        tag = self._noted(NOTE_FROM_TAG)
        return self.from_.tag if tag is _NOT_NOTED else tag

    @property
    def to_tag(self):
        tag = self._noted(NOTE_TO_TAG)
        return self.to.tag if tag is _NOT_NOTED else tag

    @property
    def branch(self):
        branch = self._noted(NOTE_BRANCH)
        return self.via.branch if branch is _NOT_NOTED else branch


cdef object _NOT_NOTED = object()
cdef int _COPIED_IDS[4]
_COPIED_IDS[:] = [H_FROM, H_TO, H_CALL_ID, H_CSEQ]
cdef tuple _COPIED_NAMES = (b"From: ", b"To: ", b"Call-ID: ", b"CSeq: ")


cdef object _cseq(long number, str method):
    """A CSeq named tuple, allocated as tuple.__new__(CSeq, ...) would, without the call."""
    cdef object n = number
    cdef object result = PyType_GenericAlloc(<PyTypeObject*>CSeq, 2)
    Py_INCREF(n)
    PyTuple_SET_ITEM(result, 0, n)
    Py_INCREF(method)
    PyTuple_SET_ITEM(result, 1, method)
    return result


cdef class _Request(_Message):
    cdef public str method
    cdef public str uri

    @property
    def start_line(self):
        return f"{self.method} {self.uri} SIP/2.0"


cdef class _Response(_Message):
    cdef public int status
    cdef public str reason

    @property
    def start_line(self):
        return f"SIP/2.0 {self.status} {self.reason}"


class Request(_Request, HeaderAccess):
    __slots__ = ()


class Response(_Response, HeaderAccess):
    __slots__ = ()


# The Python classes above are made by calling their type's tp_new slot directly: the
# generic `__new__` call costs more than the rest of parsing a short response.
cdef type _REQUEST = Request
cdef type _RESPONSE = Response
cdef tuple _NO_ARGS = ()


cdef inline _Message _new(type cls):
    return <_Message>(<PyTypeObject*>cls).tp_new(cls, <PyObject*>_NO_ARGS, NULL)


cdef object _explain(bytes data):
    """Word the error for an invalid message with the reference parser."""
    try:
        _reference.parse(data)
    except ParseError as e:
        return e
    return ParseError(
        "the compiled parser rejected a message the reference parser accepts; please report it"
    )


def parse(data):
    """Parse one SIP message (a UDP datagram). Raises ParseError saying what is wrong."""
    if isinstance(data, str):
        raise TypeError("parse() takes bytes, not str")
    cdef bytes raw = data if type(data) is bytes else bytes(data)
    cdef const uchar* p = <const uchar*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t pos = 0, lf, end, q, colon, name_end, a, b, sp1, sp2, reason_start
    cdef Py_ssize_t body_start, content_length = -1, method_len = 0
    cdef const uchar* method = NULL
    cdef bint high, first = True
    cdef uchar c
    cdef uint64_t chunk
    cdef Span notes[3]
    cdef Span* want
    cdef bint seen[3]
    cdef int k
    cdef _Message msg = None
    cdef Field* f
    cdef Py_ssize_t i

    if size > MAX_MESSAGE_SIZE:
        raise _explain(raw)
    while pos < size and (p[pos] == 13 or p[pos] == 10):
        pos += 1
    if pos == size:
        raise _explain(raw)

    while True:
        # One line: find its end and vet its bytes in the same pass.
        high = False
        q = pos
        while True:
            # Eight bytes at a time to the next byte that needs a look, then that byte.
            while q + 8 <= size:
                memcpy(&chunk, p + q, 8)
                chunk = special_bytes(chunk)
                if chunk:
                    q += __builtin_ctzll(chunk) >> 3
                    break
                q += 8
            if q >= size:
                raise _explain(raw)
            c = p[q]
            if CLS[c] & C_SPECIAL:
                if c == 10:
                    break
                if CLS[c] & C_HIGH:
                    high = True
                elif c == 13:
                    if not (q + 1 < size and p[q + 1] == 10):
                        raise _explain(raw)
                elif q == pos or p[q - 1] != 92:
                    raise _explain(raw)
            q += 1
        lf = q
        end = lf - 1 if lf > pos and p[lf - 1] == 13 else lf
        if end == pos:
            body_start = lf + 1
            break
        if high:
            try:
                PyUnicode_DecodeUTF8(<const char*>p + pos, end - pos, NULL)
            except UnicodeDecodeError:
                raise _explain(raw)
        if first:
            first = False
            if end - pos >= 4 and same_lower(<const char*>p + pos, b"sip/", 4):
                if not check_status_line(p + pos, end - pos, &reason_start):
                    raise _explain(raw)
                msg = _new(_RESPONSE)
                (<_Response>msg).status = (
                    (p[pos + 8] - 48) * 100 + (p[pos + 9] - 48) * 10 + (p[pos + 10] - 48))
                (<_Response>msg).reason = PyUnicode_DecodeUTF8(
                    <const char*>p + pos + reason_start, end - pos - reason_start, NULL)
            else:
                if not check_request_line(p + pos, end - pos, &sp1, &sp2):
                    raise _explain(raw)
                msg = _new(_REQUEST)
                (<_Request>msg).method = PyUnicode_DecodeUTF8(<const char*>p + pos, sp1, NULL)
                (<_Request>msg).uri = PyUnicode_DecodeUTF8(
                    <const char*>p + pos + sp1 + 1, sp2 - sp1 - 1, NULL)
                method = p + pos
                method_len = sp1
            msg._data = raw
        elif CLS[p[pos]] & C_WSP:
            if msg._count == 0:
                raise _explain(raw)
            f = &msg._fields[msg._count - 1]
            f.value_end = end
            f.folded = True
        else:
            colon = find(p, pos, end, b":")
            if colon < 0:
                raise _explain(raw)
            name_end = colon
            while name_end > pos and CLS[p[name_end - 1]] & C_WSP:
                name_end -= 1
            if name_end == pos:
                raise _explain(raw)
            for i in range(pos, name_end):
                if not CLS[p[i]] & C_TOKEN:
                    raise _explain(raw)
            f = msg._add()
            f.name_start = pos
            f.name_end = name_end
            f.hid = header_id(<const char*>p + pos, name_end - pos)
            f.folded = False
            a = colon + 1
            b = end
            strip(p, &a, &b)
            f.value_start = a
            f.value_end = b
        pos = lf + 1

    # The checks of the values that the grammar constrains, and the body's length. On the
    # way, note the From and To tags and the top Via's branch (the first header of each).
    notes[NOTE_FROM_TAG].name = b"tag"
    notes[NOTE_TO_TAG].name = b"tag"
    notes[NOTE_BRANCH].name = b"branch"
    for k in range(3):
        notes[k].name_len = 6 if k == NOTE_BRANCH else 3
        notes[k].found = False
        seen[k] = False
        notes[k].start = NULL
        msg._noted_state[k] = NOTED_NONE
    for i in range(msg._count):
        f = &msg._fields[i]
        if f.hid == H_OTHER or f.hid > H_CONTENT_LENGTH:
            continue
        k = (NOTE_FROM_TAG if f.hid == H_FROM else NOTE_TO_TAG if f.hid == H_TO
             else NOTE_BRANCH if f.hid == H_VIA else -1)
        want = NULL
        if k >= 0 and not seen[k]:
            seen[k] = True
            if f.folded:
                msg._noted_state[k] = NOTED_UNKNOWN
            else:
                want = &notes[k]
        if f.folded:
            value = msg._value(f)
            try:
                VALIDATED_HEADERS[ID_KEYS[f.hid]](value)
            except ValueError:
                raise _explain(raw)
            if f.hid == H_CSEQ and method != NULL and parse_cseq(value).method != (
                    <_Request>msg).method:
                raise _explain(raw)
            if f.hid == H_CONTENT_LENGTH and content_length < 0:
                content_length = min(int(value), size)
            continue
        if not check_value(f.hid, p, f.value_start, f.value_end, method, method_len, want):
            raise _explain(raw)
        if want != NULL and want.start != NULL:
            msg._noted_state[k] = NOTED_VALUE
            msg._noted_at[2 * k] = want.start - p
            msg._noted_at[2 * k + 1] = want.end - p
        if f.hid == H_CONTENT_LENGTH and content_length < 0:
            content_length = 0
            for q in range(f.value_start, f.value_end):
                if content_length <= size:
                    content_length = content_length * 10 + (p[q] - 48)
    msg._body_start = body_start
    if content_length < 0:
        msg._body_end = size
    elif content_length > size - body_start:
        raise _explain(raw)
    else:
        msg._body_end = body_start + content_length
    return msg


cdef inline bint is_length_name(const uchar* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Whether s[a:b] names the Content-Length, in full or compact ("l"), in any case."""
    if b - a == 1:
        return (s[a] | 32) == 108  # l
    return b - a == 14 and s[a + 7] == 45 and same_lower(<const char*>s + a, b"content-length", 14)


def frame(data, Py_ssize_t start=0):
    """Find the next message in a stream's buffer from `start` (RFC 3261 section 18.3): the
    twin of `engine.sip.parser.frame`, which words the errors."""
    cdef const uchar[::1] view = data
    cdef Py_ssize_t size = view.shape[0], begin = start, lf, limit, body_start = -1
    cdef Py_ssize_t pos, end, colon, name_end, a, b, length = -1
    if begin >= size:
        return begin, -1
    cdef const uchar* p = &view[0]
    while begin < size and (p[begin] == 13 or p[begin] == 10):
        begin += 1
    limit = min(size, begin + MAX_MESSAGE_SIZE)
    lf = begin
    while True:
        lf = find(p, lf, limit, 10)
        if lf < 0:
            if size - begin >= MAX_MESSAGE_SIZE:
                return _reference.frame(data, start)  # raises, worded
            return begin, -1
        if lf + 1 < size and p[lf + 1] == 10:
            body_start = lf + 2
            break
        if lf + 2 < size and p[lf + 1] == 13 and p[lf + 2] == 10:
            body_start = lf + 3
            break
        if lf + 2 >= size:
            return begin, -1
        lf += 1
    # The header lines after the start line, for the first Content-Length.
    pos = find(p, begin, body_start, 10) + 1
    while pos < body_start and length < 0:
        end = find(p, pos, body_start, 10)
        if p[pos] != 32 and p[pos] != 9:
            colon = find(p, pos, end, 58)
            if colon >= 0:
                name_end = colon
                while name_end > pos and (p[name_end - 1] == 32 or p[name_end - 1] == 9):
                    name_end -= 1
                if is_length_name(p, pos, name_end):
                    a = colon + 1
                    b = end
                    while a < b and (p[a] == 32 or p[a] == 9):
                        a += 1
                    while b > a and (p[b - 1] == 32 or p[b - 1] == 9 or p[b - 1] == 13):
                        b -= 1
                    if a == b or b - a >= 10:
                        return _reference.frame(data, start)
                    length = 0
                    while a < b:
                        if p[a] < 48 or p[a] > 57:
                            return _reference.frame(data, start)
                        length = length * 10 + (p[a] - 48)
                        a += 1
        pos = end + 1
    if length < 0 or body_start + length - begin > MAX_MESSAGE_SIZE:
        return _reference.frame(data, start)
    end = body_start + length
    return begin, (end if end <= size else -1)
