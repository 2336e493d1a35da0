// rne_shift_right: rounded = value / 2^shift rounded to the nearest integer, ties to even (the
// element rounding of numerics' MX encoders: np.rint of an exactly scaled value). The dropped
// bits give the guard bit (the first one) and the sticky bit (the OR of the rest); the result is
// incremented when guard and (sticky or the lowest kept bit). Shifts up to 2 * WIDTH are exact;
// beyond WIDTH the result is 0. Combinational (latency 0 cycles).
//
// Define DNPU_MUTANT_MX_ROUND to round half up instead (the increment ignores sticky and the
// lowest kept bit): tests/test_rtl_dma.py builds that variant and expects mismatches.
`default_nettype none
module rne_shift_right #(
    parameter WIDTH = 24,
    parameter SHIFT_BITS = 5
) (
    input  wire [WIDTH-1:0]      value,
    input  wire [SHIFT_BITS-1:0] shift,
    output wire [WIDTH:0]        rounded
);
  // value, then WIDTH zero bits for the dropped part, shifted right together.
  wire [2*WIDTH-1:0] extended = {value, {WIDTH{1'b0}}} >> shift;
  wire [WIDTH-1:0] kept = extended[2*WIDTH-1:WIDTH];
  wire guard = extended[WIDTH-1];
  wire sticky = |extended[WIDTH-2:0];
`ifdef DNPU_MUTANT_MX_ROUND
  wire round_up = guard;
  wire unused_ok = &{1'b0, sticky};
`else
  wire round_up = guard && (sticky || kept[0]);
`endif
  assign rounded = {1'b0, kept} + {{WIDTH{1'b0}}, round_up};
endmodule
`default_nettype wire
