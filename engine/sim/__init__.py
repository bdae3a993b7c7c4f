"""Simulators: the demo PBX (`engine/sim/pbx.py`), used by the one-command demo, tests and
benchmarks; the call-centre simulator that judges pacing (`engine/sim/callcentre.py`, with
example workloads in `engine/sim/workloads/`; docs/pacing.md)."""
