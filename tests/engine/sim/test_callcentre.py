"""The call-centre simulator against queueing results, its determinism, its workload errors,
and `autocall simulate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import _pacer, pacer
from engine.sim.callcentre import Workload, WorkloadError, example_workloads, simulate
from webapp.cli import main

ROOT = Path(__file__).resolve().parents[3]


def workload(**changes) -> Workload:
    data = {
        "name": "test",
        "duration": 3600,
        "operators": 5,
        "answer_probability": 0.4,
        "ring_time": {
            "answered": {"lognormal": {"mean": 8, "sigma": 0.5}},
            "unanswered": {"constant": 25},
        },
        "talk_time": {"pareto": {"mean": 90, "shape": 2.5}},
        "wrap_up_time": {"uniform": [5, 15]},
        "ceilings": {"max_calls_at_once": 200, "calls_per_second": 100},
    }
    data.update(changes)
    return Workload.from_dict(data)


def test_examples_cover_the_team_sizes():
    teams = {max(n for _, n in Workload.load(p).schedule) for p in example_workloads()}
    assert {3, 10, 25, 60, 200} <= teams
    drifting = [
        p for p in example_workloads() if isinstance(Workload.load(p).answer_probability, list)
    ]
    assert len(drifting) >= 3  # answer rates that drift through the shift


def test_a_drifting_answer_probability_is_followed():
    """The answer probability joined by straight lines between its points, held before the
    first and after the last; progressive dialing on it answers as often as it says."""
    drift = [{"at": 3600, "p": 0.1}, {"at": 0, "p": 0.5}]  # sorted on load
    w = workload(duration=7200, operators=20, answer_probability=drift)
    assert w.answer_probability_at(0) == 0.5
    assert w.answer_probability_at(1800) == pytest.approx(0.3)
    assert w.answer_probability_at(5000) == w.answer_probability_at(3600) == 0.1
    first = workload(duration=3600, operators=20, answer_probability=drift)
    early, whole = simulate(first, "progressive", 2), simulate(w, "progressive", 2)
    late_answered = whole["answered"] - early["answered"]  # the same customers until 3600 s
    late_attempts = whole["attempts"] - early["attempts"]
    assert early["answered"] / early["attempts"] == pytest.approx(0.3, abs=0.04)
    assert late_answered / late_attempts == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize("path", example_workloads(), ids=lambda p: p.stem)
def test_progressive_dialing_never_abandons(path):
    result = simulate(Workload.load(path), "progressive", seed=4)
    assert result["answered"] > 0
    assert result["abandoned"] == 0
    # and the multiplier's classic failing: above 1.0 on a small team it does abandon
    if "team-3-high" in path.stem:
        assert simulate(Workload.load(path), "multiplier", 4, 2.0)["abandoned"] > 0


@pytest.mark.parametrize("p", [1.0, 0.25])
def test_multiplier_one_with_instant_answers_matches_the_closed_form(p):
    """Rings take no time: a free operator waits for the next tick (half a tick on average,
    handle times being continuous) and then one tick per unanswered attempt before the
    answered one (geometric: 1/p - 1 of them). Occupancy = h / (h + idle)."""
    tick, handle = 1.0, 60.0
    w = workload(
        duration=40000,
        operators=10,
        answer_probability=p,
        tick=tick,
        ring_time={"answered": {"constant": 0}, "unanswered": {"constant": 0}},
        talk_time={"exponential": handle},
        wrap_up_time={"constant": 0},
    )
    result = simulate(w, "multiplier", seed=1, multiplier=1.0)
    idle = tick * (0.5 + 1 / p - 1)
    assert result["abandoned"] == 0
    assert result["occupancy"] == pytest.approx(handle / (handle + idle), abs=0.004)


def test_a_workload_written_with_the_ceilings_older_name_still_loads():
    older = workload(ceilings={"max_in_flight": 7, "calls_per_second": 3})
    assert (older.max_calls_at_once, older.calls_per_second) == (7, 3)


def test_same_seed_same_run_and_other_seed_other_run():
    w = workload()
    assert simulate(w, "predictive", 3) == simulate(w, "predictive", 3)
    assert simulate(w, "predictive", 3)["attempts"] != simulate(w, "predictive", 4)["attempts"]


def test_operators_going_off_line_stop_the_dialing():
    w = workload(operators=[{"at": 0, "on_line": 5}, {"at": 600, "on_line": 0}], duration=3600)
    result = simulate(w, "predictive", 1)
    assert 0 < result["on_line_seconds"] < 5 * 600 + 5 * 1800  # the busy leave when done
    late = simulate(
        workload(operators=[{"at": 0, "on_line": 5}, {"at": 600, "on_line": 0}], duration=600),
        "predictive",
        1,
    )
    assert result["attempts"] - late["attempts"] < 10  # hardly any call after they left


def test_the_leads_run_out():
    assert simulate(workload(leads=37), "predictive", 1)["attempts"] == 37


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"operators": "ten"}, "operators: a number, or a schedule"),
        ({"answer_probability": 1.5}, "answer_probability: between 0 and 1"),
        ({"answer_probability": []}, "answer_probability: a number, or"),
        ({"answer_probability": [{"at": 0, "p": 2}]}, "answer_probability[0].p: between 0"),
        ({"answer_probability": [{"at": 0}]}, 'answer_probability[0]: expected {"at"'),
        ({"talk_time": {"gauss": 3}}, "talk_time: unknown distribution 'gauss'"),
        ({"talk_time": {"pareto": {"mean": 90, "shape": 1}}}, "pareto.shape: must be over 1"),
        ({"duration": -5}, "duration: must be at least 1"),
        ({"colour": "red"}, "unknown key(s) colour"),
    ],
)
def test_a_bad_workload_says_what_is_wrong(change, words):
    with pytest.raises(WorkloadError) as error:
        workload(**change)
    assert words in str(error.value)


def test_cli_simulate_prints_one_json_line(capsys):
    path = str(example_workloads()[0])
    assert main(["simulate", path, "--mode", "predictive", "--seed", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    for key in (
        "attempts",
        "answered",
        "abandoned",
        "abandon_rate",
        "occupancy",
        "operator_idle_seconds",
        "leads_reached_per_operator_hour",
    ):
        assert key in result
    assert result["abandon_rate"] == pytest.approx(
        result["abandoned"] / result["answered"], abs=1e-5
    )
    assert main(["simulate", path, "--mode", "predictive", "--seed", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == result  # deterministic


def test_cli_simulate_refuses_a_bad_file_with_status_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"duration": 60, "operators": 3,')
    run = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "simulate", str(bad), "--mode", "predictive"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "is not JSON" in run.stderr and run.stdout == ""
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "webapp.cli",
            "simulate",
            str(tmp_path / "none.json"),
            "--mode",
            "adaptive",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "cannot read the workload" in missing.stderr


class Recorder:
    """A pacer that records every call made to it, and what the decisions were."""

    def __init__(self, inner):
        self.inner = inner
        self.stream = []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def record(*args):
            result = method(*args)
            self.stream.append((name, args, result))
            return result

        return record


@pytest.mark.parametrize("mode", ["progressive", "multiplier", "adaptive", "predictive"])
@pytest.mark.parametrize("name", ["team-3-low-answer", "team-50-shift", "team-25-drift"])
def test_twins_agree_decision_for_decision_on_a_recorded_stream(mode, name):
    w = Workload.load(next(p for p in example_workloads() if p.stem == name))
    w.duration = 1800
    args = (mode, 1.5, w.max_calls_at_once, w.calls_per_second, 0.0, w.abandon_rate_cap)
    recorder = Recorder(pacer.Pacer(*args))
    simulate(w, mode, 9, 1.5, pacer=recorder)
    decisions = [e for e in recorder.stream if e[0] == "calls_to_start"]
    assert sum(e[2] for e in decisions) > 50
    compiled, twin = _pacer.Pacer(*args), pacer.Pacer(*args)
    for i, (name_, call_args, result) in enumerate(recorder.stream):
        got_c = getattr(compiled, name_)(*call_args)
        got_py = getattr(twin, name_)(*call_args)
        assert got_c == got_py == result, f"event {i}: {name_}{call_args}"


@pytest.mark.parametrize("wrap_up", [{"constant": 0}, {"constant": 10}, {"uniform": [5, 15]}])
def test_the_pacer_hears_of_wrap_ups_as_the_engine_tells_them(wrap_up):
    """Each tick the pacer is told how many operators are in wrap-up (never more than are
    busy), and each operator free again comes with the wrap-up time; without wrap-up nobody
    is ever in it."""
    w = workload(wrap_up_time=wrap_up, duration=1800)
    recorder = Recorder(
        pacer.Pacer(
            "predictive", 1.0, w.max_calls_at_once, w.calls_per_second, 0.0, w.abandon_rate_cap
        )
    )
    simulate(w, "predictive", 4, pacer=recorder)
    ticks = [args for name, args, _ in recorder.stream if name == "calls_to_start"]
    handled = [args for name, args, _ in recorder.stream if name == "handled"]
    assert handled and all(0 <= wrap <= handle for handle, _now, wrap in handled)
    assert all(0 <= wrapping <= on_line - free for free, _f, _now, on_line, wrapping in ticks)
    if wrap_up == {"constant": 0}:
        assert all(wrap == 0 for _h, _n, wrap in handled)
        assert all(wrapping == 0 for *_, wrapping in ticks)
    else:
        assert all(wrap == pytest.approx(10, abs=5) for _h, _n, wrap in handled)
        assert max(wrapping for *_, wrapping in ticks) >= 1
