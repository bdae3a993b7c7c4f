"""Fixtures of the SIP tests.

Every parser test runs against both implementations: the Cython one and its pure twin.
The Cython module is imported unconditionally: if it was not built, these tests error out
rather than quietly testing the twin twice.
"""

import pytest

from engine.sip import _parser, parser

IMPLEMENTATIONS = {"c-parser": _parser, "py-parser": parser}


@pytest.fixture(params=list(IMPLEMENTATIONS.values()), ids=list(IMPLEMENTATIONS))
def impl(request):
    """The parser module under test; use `impl.parse`, `impl.Request`, `impl.Response`."""
    return request.param
