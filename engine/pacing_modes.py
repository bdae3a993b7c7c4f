"""The pacing modes: one list for the engine, the simulator and the portal (engine/pacer.py
says what each does; the portal offers three of them, webapp/models/tenant.py). A module of
its own, so that the portal reads the names without loading the pacer."""

from enum import StrEnum


class PacingMode(StrEnum):
    PROGRESSIVE = "progressive"
    MULTIPLIER = "multiplier"
    ADAPTIVE = "adaptive"
    PREDICTIVE = "predictive"
    #: The operator sees the lead first and presses Call (engine/preview.py); not a pacer's
    #: mode: one lead per free operator, dialed only when its operator says so.
    PREVIEW = "preview"


#: The names of the modes a pacer decides (all but preview), for `in` with a plain string
#: (Python 3.11's `in PacingMode` takes members only) and for messages and `--mode` choices (a
#: member's repr names its class).
MODES = tuple(mode.value for mode in PacingMode if mode != PacingMode.PREVIEW)
