"""A bounded run of the parser fuzz harness (fuzz/fuzz_parser.py), and proof that it can fail.

The harness runs as a subprocess because atheris/libFuzzer owns the process it fuzzes in and
exits it. A crash, an escaped exception other than ParseError, or a disagreement between the
Cython parser and its twin makes it exit non-zero; its output is in the assertion message.

The bounded run uses a fixed libFuzzer seed so that it is repeatable (the same parsers give the
same verdict); AUTOCALL_FUZZ_SEED=<n> picks another one, AUTOCALL_FUZZ_SEED=0 a random one.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "fuzz" / "fuzz_parser.py"


def run_harness(tmp_path: Path, *args: str, prelude: str = "", timeout: float = 120):
    """Run the harness's main() in a fresh interpreter, after `prelude` (code that may
    replace one of its parsers); libFuzzer writes artifacts and new inputs under tmp_path."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(HARNESS.parent)!r})\n"
        "import fuzz_parser\n"
        f"{prelude}\n"
        "fuzz_parser.main()\n"
    )
    argv = [
        sys.executable,
        "-c",
        code,
        f"-artifact_prefix={tmp_path}/",
        "-timeout=20",
        *args,
        str(corpus),
    ]
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=timeout
    )


def test_a_bounded_fuzz_run_finds_nothing(tmp_path):
    seed = os.environ.get("AUTOCALL_FUZZ_SEED", "1")
    result = run_harness(
        tmp_path, "-runs=20000", "-max_total_time=60", f"-seed={seed}", timeout=180
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"the fuzzer found a problem:\n{output[-20000:]}"
    assert "seed corpus: files: " in output  # the seeds were loaded
    assert "\nDone " in output  # libFuzzer's last words after a run without findings


# The seed corpus holds a NOTIFY (bench/corpus.py), so each broken parser below trips on the
# seeds, before any mutation.
BROKEN_PARSERS = {
    "different error": (
        "real = fuzz_parser.py_parse\n"
        "def broken(data):\n"
        "    if b'NOTIFY' in data:\n"
        "        raise fuzz_parser.ParseError('sabotaged')\n"
        "    return real(data)\n"
        "fuzz_parser.py_parse = broken\n",
        "the parsers disagree",
    ),
    "another exception": (
        "real = fuzz_parser.c_parse\n"
        "def broken(data):\n"
        "    if b'NOTIFY' in data:\n"
        "        raise IndexError('sabotaged')\n"
        "    return real(data)\n"
        "fuzz_parser.c_parse = broken\n",
        "IndexError: sabotaged",
    ),
    "different message": (
        "real = fuzz_parser.py_parse\n"
        "def broken(data):\n"
        "    return real(data.replace(b'\\r\\nEvent: refer', b'\\r\\nEvent: refex', 1))\n"
        "fuzz_parser.py_parse = broken\n",
        "the parsers read",
    ),
    "round trip": (
        "real = fuzz_parser.py_parse\n"
        "made = set()\n"
        "def broken(data):\n"
        "    if data in made:\n"
        "        raise fuzz_parser.ParseError('sabotaged')\n"
        "    msg = real(data)\n"
        "    made.add(bytes(msg))\n"
        "    return msg\n"
        "fuzz_parser.py_parse = broken\n",
        "bytes(msg) does not parse again",
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN_PARSERS), ids=list(BROKEN_PARSERS))
def test_the_harness_fails_when_the_parsers_disagree(tmp_path, broken):
    prelude, expected = BROKEN_PARSERS[broken]
    result = run_harness(tmp_path, "-runs=2000", "-max_total_time=30", prelude=prelude)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"the harness missed a broken parser:\n{output[-5000:]}"
    assert expected in output, output[-5000:]
    assert list(tmp_path.glob("crash-*")), "libFuzzer saved no crash input"
