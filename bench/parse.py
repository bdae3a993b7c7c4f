"""How many SIP messages per second one core parses: the Cython parser, its twin, pyVoIP.

    .venv/bin/python bench/parse.py            # the full run, well under a minute
    .venv/bin/python bench/parse.py --quick    # about five seconds, noisier

The corpus is bench/corpus.py (one call between the dialer and an Asterisk PBX). Three
implementations run in the same process, each parsing every message and touching the same
fields: method (requests) or status (responses), Call-ID, CSeq, From tag and the top Via's
branch.

- `engine.sip._parser.parse` (the Cython extension) and `engine.sip.parser.parse` (its pure
  Python twin): `msg.method` or `msg.status`, `msg.call_id`, `msg.cseq` (CSeq number and method),
  `msg.from_tag`, `msg.branch`. These parsers build header values on demand, so touching the
  fields is part of the work measured.
- pyVoIP 1.6.8 `SIPMessage(data)`, which parses everything eagerly in its constructor; the same
  fields are then read from the structures it built: `msg.method` (requests) or `msg.status` (a
  `SIPStatus` member, responses), `msg.headers["Call-ID"]` (str), `msg.headers["CSeq"]` (dict
  with "check", the number, and "method"), `msg.headers["From"]["tag"]` and
  `msg.headers["Via"][0]["branch"]` (its list of Via dicts, top one first). Before timing, these
  values are checked to equal the ones our parsers read, message by message.

pyVoIP only accepts the request methods in `pyVoIP.SIPCompatibleMethods` (INVITE, ACK, BYE,
CANCEL), so it rejects REFER and NOTIFY; the benchmark finds out which messages it rejects at
run time, says so, and compares against pyVoIP on the "common" part (the messages all three
parse). Parts: "all" (the whole corpus), "typical_responses" (100, 180, 200 with SDP, 202,
401) and "common".

Method: time.perf_counter around a loop over the part's messages, repeated enough times for one
repetition to last a fixed time; a warm-up first, then several repetitions interleaved across
the implementations (so drift hits all alike); the figure is the median repetition, the best
one is reported too. The garbage collector stays on, as it is in the service. The process is
pinned to one CPU where the OS allows it. Nothing here asserts a timing: the targets (Cython
>= 1,000,000 msg/s on typical responses, >= 20x pyVoIP on the common corpus) are reported as
met or not. The last line of the output is one JSON object with every figure.

The Cython numbers are only presented when `engine.sip` loaded the extension
(`engine.sip.parser_kind == "cython"`) and `engine.sip._parser` is a compiled module; otherwise
they are null, the reason is printed and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "bench"):  # the checkout's engine/ (installed or not), corpus.py
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import corpus  # noqa: E402  (bench/corpus.py, next to this file)

import engine.sip  # noqa: E402
from engine.sip import parser as py_parser  # noqa: E402

try:
    from engine.sip import _parser as c_parser
except ImportError as exc:  # reported below; the Cython numbers are then withheld
    c_parser = None
    C_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    C_IMPORT_ERROR = None

# `import pyVoIP.SIP` on its own fails: pyVoIP.SIP imports pyVoIP.VoIP.status, whose package
# imports pyVoIP.VoIP.VoIP, which uses `SIP.SIPMessage` at import time while pyVoIP.SIP is
# still half initialised. Importing pyVoIP.VoIP first lets the cycle resolve.
import pyVoIP  # noqa: E402
import pyVoIP.VoIP  # noqa: E402
from pyVoIP.SIP import SIPMessage  # noqa: E402

TARGET_RATE = 1_000_000  # Cython, typical responses, messages per second
TARGET_RATIO = 20.0  # Cython over pyVoIP on the common corpus

#: (data, is_response) for each message of a part.
Items = list[tuple[bytes, bool]]


# --- the timed loops --------------------------------------------------------------------------
# One function per kind of implementation, so that the loop itself is the same code for the
# Cython parser and its twin; the loop overhead (tuple unpacking, the tuple of touched fields)
# is the same for all three.


def run_engine(parse: Callable[[bytes], object], items: Items, loops: int) -> float:
    """Seconds to parse `items` `loops` times with an engine.sip parser, touching the fields."""
    start = time.perf_counter()
    for _ in range(loops):
        for data, is_response in items:
            msg = parse(data)
            fields = (  # noqa: F841
                msg.status if is_response else msg.method,
                msg.call_id,
                msg.cseq,
                msg.from_tag,
                msg.branch,
            )
    return time.perf_counter() - start


def run_pyvoip(items: Items, loops: int) -> float:
    """Seconds to parse `items` `loops` times with pyVoIP's SIPMessage, touching the fields."""
    start = time.perf_counter()
    for _ in range(loops):
        for data, is_response in items:
            msg = SIPMessage(data)
            headers = msg.headers
            fields = (  # noqa: F841
                msg.status if is_response else msg.method,
                headers["Call-ID"],
                headers["CSeq"],
                headers["From"]["tag"],
                headers["Via"][0]["branch"],
            )
    return time.perf_counter() - start


# --- checks before timing ---------------------------------------------------------------------


def cython_status() -> tuple[bool, str]:
    """Whether the Cython extension is what engine.sip loaded, and a sentence saying so."""
    if c_parser is None:
        return False, f"engine.sip._parser could not be imported ({C_IMPORT_ERROR})"
    origin = getattr(c_parser, "__file__", "") or ""
    if not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return False, f"engine.sip._parser is not a compiled extension ({origin})"
    if engine.sip.parser_kind != "cython":
        why = (
            "AUTOCALL_NO_EXTENSIONS=1"
            if os.environ.get("AUTOCALL_NO_EXTENSIONS") == "1"
            else "the extension did not load"
        )
        return False, f"engine.sip loaded the {engine.sip.parser_kind} parser ({why})"
    return True, f"engine.sip.parser_kind = cython ({Path(origin).name})"


def engine_fields(msg, is_response: bool) -> tuple:
    first = msg.status if is_response else msg.method
    return (first, msg.call_id, (msg.cseq.number, msg.cseq.method), msg.from_tag, msg.branch)


def pyvoip_fields(msg: SIPMessage, is_response: bool) -> tuple:
    first = int(msg.status) if is_response else msg.method
    cseq = msg.headers["CSeq"]
    return (
        first,
        msg.headers["Call-ID"],
        (int(cseq["check"]), cseq["method"]),
        msg.headers["From"]["tag"],
        msg.headers["Via"][0]["branch"],
    )


def check_corpus(with_cython: bool) -> dict[str, str]:
    """Every message parses with our parsers and they read the same fields; pyVoIP, where it
    parses, reads them alike too. Returns the messages pyVoIP rejects, with its error."""
    rejected = {}
    for label, data in corpus.MESSAGES.items():
        reference = py_parser.parse(data)
        is_response = isinstance(reference, py_parser.Response)
        expected = engine_fields(reference, is_response)
        if with_cython:
            got = engine_fields(c_parser.parse(data), is_response)
            if got != expected:
                sys.exit(f"{label}: the Cython parser reads {got}, the twin {expected}")
        try:
            msg = SIPMessage(data)
            got = pyvoip_fields(msg, is_response)
        except Exception as exc:  # any failure of pyVoIP's counts as "cannot parse"
            rejected[label] = f"{type(exc).__name__}: {exc}"
            continue
        if got != expected:
            sys.exit(f"{label}: pyVoIP reads {got}, engine.sip reads {expected}")
    return rejected


# --- measuring ---------------------------------------------------------------------------------


def calibrate(run: Callable[[int], float], rep_seconds: float) -> int:
    """Warm up, then the number of loops for one repetition to last about `rep_seconds`."""
    loops = 1
    while True:
        elapsed = run(loops)
        if elapsed >= rep_seconds / 4 or loops >= 1 << 24:
            break
        loops *= 2
    return max(1, round(loops * rep_seconds / elapsed))


def measure(series: dict[str, tuple[Callable[[int], float], int]], repeat: int, rep_seconds):
    """Rates (median, best) per series; the repetitions are interleaved across the series."""
    loops = {key: calibrate(run, rep_seconds) for key, (run, _) in series.items()}
    times: dict[str, list[float]] = {key: [] for key in series}
    for _ in range(repeat):
        for key, (run, _) in series.items():
            times[key].append(run(loops[key]))
    rates = {}
    for key, (_, count) in series.items():
        messages = loops[key] * count
        rates[key] = (
            messages / statistics.median(times[key]),
            messages / min(times[key]),
        )
    return rates


def pin_to_one_cpu() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return "not pinned"
    return f"pinned to CPU {cpu}"


# --- output ----------------------------------------------------------------------------------

IMPLEMENTATIONS = {
    "cython": "Cython (engine.sip._parser)",
    "python": "pure Python (engine.sip.parser)",
    "pyvoip": f"pyVoIP {pyVoIP.__version__} SIPMessage",
}


def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a ~5 s run instead of ~30-45 s")
    args = ap.parse_args(argv)
    repeat, rep_seconds = (3, 0.2) if args.quick else (7, 0.5)

    cython_ok, cython_note = cython_status()
    pinning = pin_to_one_cpu()
    rejected = check_corpus(with_cython=cython_ok)

    labels = list(corpus.MESSAGES)
    parts = {
        "all": labels,
        "typical_responses": list(corpus.TYPICAL_RESPONSES),
        "common": [label for label in labels if label not in rejected],
    }
    if any(label in rejected for label in corpus.TYPICAL_RESPONSES):
        parts["typical_responses_common"] = [
            label for label in corpus.TYPICAL_RESPONSES if label not in rejected
        ]
    is_response = {
        label: isinstance(py_parser.parse(data), py_parser.Response)
        for label, data in corpus.MESSAGES.items()
    }

    series = {}
    for part, members in parts.items():
        items = [(corpus.MESSAGES[label], is_response[label]) for label in members]
        if cython_ok:
            series["cython", part] = (
                lambda n, items=items: run_engine(c_parser.parse, items, n),
                len(items),
            )
        series["python", part] = (
            lambda n, items=items: run_engine(py_parser.parse, items, n),
            len(items),
        )
        if not any(label in rejected for label in members):
            series["pyvoip", part] = (lambda n, items=items: run_pyvoip(items, n), len(items))

    started = time.perf_counter()
    rates = measure(series, repeat, rep_seconds)
    elapsed = time.perf_counter() - started

    median = {impl: {part: None for part in parts} for impl in IMPLEMENTATIONS}
    best = {impl: {part: None for part in parts} for impl in IMPLEMENTATIONS}
    for (impl, part), (med, top) in rates.items():
        median[impl][part] = med
        best[impl][part] = top
    ratios = {
        "cython/python": {p: ratio(median["cython"][p], median["python"][p]) for p in parts},
        "cython/pyvoip": {p: ratio(median["cython"][p], median["pyvoip"][p]) for p in parts},
    }
    vs_part = "common"
    rate_value = median["cython"]["typical_responses"]
    ratio_value = ratios["cython/pyvoip"][vs_part]
    targets = {
        "cython_msgs_per_s_typical_responses": {
            "value": None if rate_value is None else round(rate_value),
            "target": TARGET_RATE,
            "met": rate_value is not None and rate_value >= TARGET_RATE,
        },
        "cython_over_pyvoip": {
            "part": vs_part,
            "value": None if ratio_value is None else round(ratio_value, 2),
            "target": TARGET_RATIO,
            "met": ratio_value is not None and ratio_value >= TARGET_RATIO,
        },
    }

    # The table.
    stat = f"median of {repeat} repetitions of ~{rep_seconds:g} s"
    print(f"SIP parse benchmark: messages per second on one core ({stat}; best in brackets)")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {pinning}; "
        f"pyVoIP {pyVoIP.__version__}; measuring took {elapsed:.1f} s"
    )
    if cython_ok:
        print(f"Cython parser: {cython_note}")
    else:
        print(f"Cython parser: NOT LOADED, its numbers are withheld: {cython_note}")
    print(f"corpus: {len(labels)} messages from bench/corpus.py: {', '.join(labels)}")
    if rejected:
        print("pyVoIP cannot parse:")
        for label, error in rejected.items():
            print(f"  {label}: {error}")
    print()
    heads = [f"{part} ({len(members)})" for part, members in parts.items()]
    width = max(24, *(len(h) for h in heads))
    print(f"{'':34}" + "".join(f"{h:>{width}}" for h in heads))
    for impl, name in IMPLEMENTATIONS.items():
        cells = []
        for part in parts:
            med, top = median[impl][part], best[impl][part]
            cells.append("n/a" if med is None else f"{fmt_rate(med)} [{fmt_rate(top)}]")
        print(f"{name:34}" + "".join(f"{c:>{width}}" for c in cells))
    for key, values in ratios.items():
        print(f"{key:34}" + "".join(f"{fmt_ratio(values[p]):>{width}}" for p in parts))
    print()
    print("targets:")
    t1, t2 = targets.values()
    print(
        f"  Cython >= {TARGET_RATE:,} msg/s on typical responses: "
        f"{fmt_rate(rate_value)} -> {'met' if t1['met'] else 'NOT met'}"
    )
    print(
        f"  Cython >= {TARGET_RATIO:g}x pyVoIP on the {vs_part} corpus: "
        f"{fmt_ratio(ratio_value)} -> {'met' if t2['met'] else 'NOT met'}"
    )

    def rounded(table):
        return {
            impl: {p: None if v is None else round(v) for p, v in row.items()}
            for impl, row in table.items()
        }

    result = {
        "benchmark": "sip-parse",
        "parser_kind": engine.sip.parser_kind,
        "cython_loaded": cython_ok,
        "python": platform.python_version(),
        "pyvoip": pyVoIP.__version__,
        "quick": args.quick,
        "statistic": "median",
        "repetitions": repeat,
        "parts": parts,
        "pyvoip_cannot_parse": sorted(rejected),
        "msgs_per_s": rounded(median),
        "best_msgs_per_s": rounded(best),
        "ratios": {
            key: {p: None if v is None else round(v, 2) for p, v in values.items()}
            for key, values in ratios.items()
        },
        "targets": targets,
    }
    print(json.dumps(result, separators=(",", ":")))
    return 0 if cython_ok else 2


if __name__ == "__main__":
    sys.exit(main())
