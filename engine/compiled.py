"""One switch between the engine's Cython extensions and their pure-Python twins.

Each compiled module has a twin that gives the same answers in plain Python:

| compiled | twin |
| --- | --- |
| `engine/_pacer.pyx` | `engine/pacer.py` (decision for decision) |
| `engine/sip/_parser.pyx` | `engine/sip/parser.py` (the reference parser) |
| `engine/sip/_untracked.pyx` | `engine/sip/untracked.py` (the collector untracks later) |
| `engine/sip/_udp.pyx` | none: engine/sip/transport.py keeps Python's socket methods |

`load` gives the compiled module, unless the environment sets AUTOCALL_NO_EXTENSIONS=1 or the
extension is not built (`setup.py build_ext --inplace`; `./dev` builds them); then the twin.
Every place that picks between the two asks it, once, when its module is imported.
tests/engine/test_compiled.py fails when a test run did not use every compiled module.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import overload

#: The environment variable that switches every extension to its twin when it is "1".
SWITCH = "AUTOCALL_NO_EXTENSIONS"


@overload
def load(compiled: str, twin: str) -> ModuleType: ...
@overload
def load(compiled: str, twin: None = None) -> ModuleType | None: ...


def load(compiled: str, twin: str | None = None) -> ModuleType | None:
    """The module `compiled` (a dotted name), or the module `twin` when the extension is
    switched off or not built (None when it has no twin module)."""
    if os.environ.get(SWITCH) != "1":
        try:
            return importlib.import_module(compiled)
        except ImportError:  # not built
            pass
    return None if twin is None else importlib.import_module(twin)
