"""The compiled modules are the ones the engine runs in a test run (`./dev test` builds them),
and AUTOCALL_NO_EXTENSIONS=1 switches every one of them to its twin (engine/compiled.py), as
yarl and aiohttp test their extensions."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import types

import pytest

#: Where the engine uses each compiled module: what it runs, as `module:attribute` (with "()":
#: what calling it returns).
USES = {
    "engine._pacer": ["engine.dialer:Pacer", "engine.sim.callcentre:pacer_class()"],
    "engine.sip._parser": [
        "engine.sip:parse",
        "engine.sip:Request",
        "engine.sip:Response",
        "engine.sip.stream:frame",
    ],
    "engine.sip._udp": ["engine.sip.transport:_udp"],
    "engine.sip._untracked": ["engine.sip.transaction:untracked"],
}
#: The module each use comes from with the switch on: the twin (None: Python's own methods).
TWINS = {
    "engine._pacer": "engine.pacer",
    "engine.sip._parser": "engine.sip.parser",
    "engine.sip._udp": None,
    "engine.sip._untracked": "engine.sip.untracked",
}


def used(use: str) -> str | None:
    """The module the engine's `use` comes from."""
    module, attribute = use.split(":")
    value = getattr(importlib.import_module(module), attribute.removesuffix("()"))
    if attribute.endswith("()"):
        value = value()
    if value is None or isinstance(value, types.ModuleType):
        return value and value.__name__
    return value.__module__


def in_new_process(switched: bool) -> dict[str, str | None]:
    env = dict(os.environ)
    env.pop("AUTOCALL_NO_EXTENSIONS", None)
    if switched:
        env["AUTOCALL_NO_EXTENSIONS"] = "1"
    code = (
        "import json; from tests.engine.test_compiled import USES, used; "
        "print(json.dumps({u: used(u) for uses in USES.values() for u in uses}))"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("name", sorted(USES))
def test_each_extension_is_built_and_is_the_one_in_use(name):
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin.endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)
    ), f"{name} is not built: run `./dev test`, or `setup.py build_ext --inplace`"
    assert {use: used(use) for use in USES[name]} == dict.fromkeys(USES[name], name)


def test_a_new_process_uses_every_extension_too():
    assert in_new_process(switched=False) == {
        use: name for name, uses in USES.items() for use in uses
    }


def test_autocall_no_extensions_switches_each_to_its_twin():
    assert in_new_process(switched=True) == {
        use: TWINS[name] for name, uses in USES.items() for use in uses
    }
