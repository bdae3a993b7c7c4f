"""Fuzz the SIP parsers (atheris): the Cython `engine.sip._parser` against its pure twin.

A long run, keeping what it finds in fuzz/corpus-run/ (gitignored) and stopping after an hour:

    mkdir -p fuzz/corpus-run
    .venv/bin/python fuzz/fuzz_parser.py -max_total_time=3600 -max_len=65536 -timeout=10 \\
        -artifact_prefix=fuzz/ fuzz/corpus-run

A bounded run (what tests/fuzz/test_fuzz_parser.py does), and replaying one crash file:

    .venv/bin/python fuzz/fuzz_parser.py -runs=20000 -max_total_time=60
    .venv/bin/python fuzz/fuzz_parser.py fuzz/crash-<sha1>

Arguments are libFuzzer's (`-help=1` lists them). The seeds are added to every run through
`-seed_inputs`: the messages of bench/corpus.py (written to files under the temporary directory)
and the 49 RFC 4475 torture messages in ../shared/data/sip/rfc4475/*.dat (relative to the
repository root). fuzz/sip.dict (SIP tokens) is passed as `-dict` unless one is given. With a
corpus directory, what the fuzzer learns is saved there; without one it stays in memory. A
failing input is written to `<artifact_prefix>crash-<sha1>` (default: the current directory).

For every input:
- each parser either returns a message or raises `engine.sip.ParseError`; any other exception
  escapes and libFuzzer reports it as a crash (non-zero exit, input saved as crash-<sha1>);
- both agree: both raise ParseError with the same text, or both return a message of the same
  kind with equal start_line, headers and body, the same answers from the typed accessors
  (call_id, cseq, from_tag, to_tag, branch, vias, contacts, ...; see ACCESSORS) and from
  get()/get_all() for every header present, and the same bytes(msg);
- bytes(msg) parses again, with the same parser, to an equal message.

Coverage: atheris instruments the Python modules imported inside `atheris.instrument_imports()`
below (engine.sip, engine.sip.message and the pure parser), so coverage feedback comes from
the pure twin and the value grammar. The Cython extension is compiled C without libFuzzer's
instrumentation: it is exercised on every input, but it does not steer the fuzzer.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RFC4475 = ROOT.parent / "shared" / "data" / "sip" / "rfc4475"
DICTIONARY = Path(__file__).resolve().with_name("sip.dict")

with atheris.instrument_imports(include=["engine"]):
    import engine.sip  # noqa: F401  (the package, engine.sip.message)
    from engine.sip import parser as _py
    from engine.sip.message import ParseError

from engine.sip import _parser as _c  # noqa: E402  (compiled; not instrumented)

# Looked up at call time, so a test can swap one for a broken one and see the harness fail.
c_parse = _c.parse
py_parse = _py.parse

#: Read on every parsed message and compared. The first five are the hot ones the Cython parser
#: implements itself; the others parse header values on demand, where a ValueError is an answer
#: (compared like a value) and any other exception escapes.
ACCESSORS = (
    "call_id",
    "cseq",
    "from_tag",
    "to_tag",
    "branch",
    "vias",
    "from_",
    "to",
    "contacts",
    "record_routes",
    "refer_to",
    "referred_by",
    "content_length",
    "content_type",
    "expires",
    "www_authenticate",
    "proxy_authenticate",
    "event",
    "subscription_state",
    "sipfrag",
)

#: How many distinct header names get() and get_all() are compared for.
GET_NAMES = 64


class Disagreement(AssertionError):
    """The two parsers, or a parser and its own round trip, do not agree."""


def outcome(parse, data: bytes):
    """(message, None) or (None, the ParseError's text); any other exception propagates."""
    try:
        return parse(data), None
    except ParseError as e:
        return None, str(e)


def read(msg, name: str):
    try:
        return getattr(msg, name)
    except ValueError as e:
        return f"<{type(e).__name__}: {e}>"


def view(msg, full: bool = True) -> dict:
    """What must be equal between the two parsers (full) and across a round trip (the message
    and the hot accessors only: the rest derive from the headers through the same code)."""
    fields = {
        "kind": type(msg).__name__,
        "start_line": msg.start_line,
        "headers": list(msg.headers),
        "body": msg.body,
    }
    for name in ACCESSORS if full else ACCESSORS[:5]:
        fields[name] = read(msg, name)
    if not full:
        return fields
    # Each name as written (case and compact forms included), at most GET_NAMES of them: a
    # lookup scans the headers, so all names of a message with thousands would be quadratic.
    names = list(dict.fromkeys(name for name, _ in msg.headers))[:GET_NAMES]
    for name in names:
        fields[f"get({name!r})"] = msg.get(name)
        fields[f"get_all({name!r})"] = msg.get_all(name)
    return fields


def differences(first: dict, second: dict) -> str:
    keys = [k for k in {**first, **second} if first.get(k, "<absent>") != second.get(k, "<absent>")]
    return "\n".join(
        f"  {k}: {first.get(k, '<absent>')!r} != {second.get(k, '<absent>')!r}" for k in keys
    )


def round_trip(name: str, parse, msg, data: bytes) -> bytes:
    raw = bytes(msg)
    again, error = outcome(parse, raw)
    if error is not None:
        raise Disagreement(
            f"{name}: bytes(msg) does not parse again: {error}\n"
            f"input: {data!r}\nbytes(msg): {raw!r}"
        )
    first, second = view(msg, full=False), view(again, full=False)
    if first != second or again != msg:
        raise Disagreement(
            f"{name}: bytes(msg) parses to a different message\ninput: {data!r}\n"
            f"bytes(msg): {raw!r}\nfirst parse != second parse:\n{differences(first, second)}"
        )
    return raw


def TestOneInput(data: bytes) -> None:
    c_msg, c_error = outcome(c_parse, data)
    py_msg, py_error = outcome(py_parse, data)
    if c_error is not None or py_error is not None:
        if c_error != py_error:
            raise Disagreement(
                f"the parsers disagree on {data!r}\n"
                f"cython: {c_error or 'parsed: ' + repr(c_msg)}\n"
                f"python: {py_error or 'parsed: ' + repr(py_msg)}"
            )
        return
    c_view, py_view = view(c_msg), view(py_msg)
    if c_view != py_view:
        raise Disagreement(
            f"the parsers read {data!r} differently (cython != python):\n"
            f"{differences(c_view, py_view)}"
        )
    c_raw = round_trip("cython", c_parse, c_msg, data)
    py_raw = round_trip("python", py_parse, py_msg, data)
    if c_raw != py_raw:
        raise Disagreement(
            f"bytes(msg) differs between the parsers for {data!r}\n"
            f"cython: {c_raw!r}\npython: {py_raw!r}"
        )


def seed_files() -> list[str]:
    """The seed inputs: bench/corpus.py's messages (as files) and the RFC 4475 messages."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import corpus
    finally:
        sys.path.remove(str(ROOT / "bench"))
    folder = Path(tempfile.gettempdir()) / f"autocall-fuzz-seeds-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    files = []
    for data in corpus.MESSAGES.values():
        path = folder / hashlib.sha1(data).hexdigest()
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)
        files.append(str(path))
    torture = sorted(RFC4475.glob("*.dat"))
    if not torture:
        print(f"fuzz_parser: no RFC 4475 seeds in {RFC4475}", file=sys.stderr)
    files += [str(path) for path in torture]
    return files


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if not any(arg.startswith("-seed_inputs=") for arg in argv):
        argv.insert(1, "-seed_inputs=" + ",".join(seed_files()))
    if not any(arg.startswith("-dict=") for arg in argv):
        argv.insert(1, f"-dict={DICTIONARY}")
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
