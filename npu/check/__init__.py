"""Cross-checks of one layer against another, above everything they compare.

- `verify` / `verify_kv`: compiled generations on the functional simulator against the
  NPU-arithmetic reference (and, with BAOS KV, against the accuracy simulator), token for token;
- `exact`: the accuracy simulator's exact mode - task accuracy decoded by the NPU-arithmetic
  reference next to the fast (PyTorch) accuracy simulator;
- `crossval`: the analytical program model against the cycle-accurate simulator;
- `rtl`: the RTL (npu_top) against the functional simulator bit for bit and the cycle simulator
  in cycles, on programs and on the compiled steps of a generation.
Each imports the two sides it compares; nothing below imports a check.
"""
