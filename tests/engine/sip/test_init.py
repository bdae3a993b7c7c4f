"""Which parser `engine.sip` loads: the Cython one when built, the twin when asked."""

import os
import subprocess
import sys
from pathlib import Path

import engine.sip


def test_the_built_extension_is_the_one_loaded():
    built = list(Path(engine.sip.__file__).parent.glob("_parser*.so"))
    assert built, "the Cython parser was not built: run `./dev test`, which builds it"
    assert engine.sip.parser_kind == "cython"
    assert engine.sip.parse.__module__ == "engine.sip._parser"


def test_autocall_no_extensions_loads_the_twin():
    code = "import engine.sip as s; print(s.parser_kind, s.parse.__module__)"
    env = dict(os.environ, AUTOCALL_NO_EXTENSIONS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["python", "engine.sip.parser"], out.stderr


def test_both_share_the_error_type():
    from engine.sip import _parser, parser

    assert _parser.ParseError is parser.ParseError is engine.sip.ParseError
