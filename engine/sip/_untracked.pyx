# cython: language_level=3
"""Tuples of plain values kept out of the garbage collector's sight from the moment they are
made (engine/sip/transaction.py keeps millions of them for up to 32 s at a few thousand calls
per second).

CPython stops tracking such a tuple only when a collection looks at it, and a dict or queue
holding it is tracked, and walked by every full collection, from the moment a tracked tuple
goes in. `untracked(t)` does at once what the collector would do later: it untracks `t` when
every item is a str, bytes, int, float, bool, None or an untracked tuple (nothing that can be
part of a cycle), and otherwise leaves it as it is. Either way it returns `t`.
"""

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)
    int PyObject_GC_IsTracked(object op)


cdef inline bint _plain(object item):
    cdef type kind = type(item)
    if kind is str or kind is bytes or kind is int or kind is float or kind is bool:
        return True
    if item is None:
        return True
    return kind is tuple and not PyObject_GC_IsTracked(item)


def untracked(tuple values):
    for item in values:
        if not _plain(item):
            return values
    PyObject_GC_UnTrack(<void*>values)
    return values
