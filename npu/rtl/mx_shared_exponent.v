// mx_shared_exponent: the shared exponent of an MX block by numerics.mx_shared_exponent.
//   ocp:     e = floor(log2(amax)) - EMAX, clamped to [-127, 127]; an all-zero block gets -127.
//   no_clip: e + 1 where the OCP exponent would clip the block maximum, i.e. where RNE(amax / 2^e)
//            exceeds the element's max. With e unclamped that is amax's normalised fraction
//            >= NO_CLIP_FRACTION (generated from numerics); a block clamped at -127 never clips,
//            and at +127 there is no coarser scale.
// Combinational (latency 0 cycles).
`default_nettype none
`include "dnpu_mx.vh"
// Parameter defaults: the MXINT8 element format.
module mx_shared_exponent #(
    parameter EMAX = `DNPU_MX_MXINT8_EMAX,
    parameter NO_CLIP_FRACTION = `DNPU_MX_MXINT8_NO_CLIP_FRACTION
) (
    input  wire               zero,
    input  wire signed [9:0]  amax_log2,
    input  wire [22:0]        amax_fraction,
    input  wire               no_clip,
    output wire signed [8:0]  shared_exp   // -127 .. 127: the E8M0 code is shared_exp + 127
);
  localparam [22:0] THRESHOLD = NO_CLIP_FRACTION;
  localparam signed [10:0] ELEMENT_EMAX = EMAX;
  wire signed [10:0] raw = {amax_log2[9], amax_log2} - ELEMENT_EMAX;
  wire clamped_low = zero || raw < -11'sd127;
  wire signed [10:0] ocp = clamped_low ? -11'sd127 : (raw > 11'sd127 ? 11'sd127 : raw);
  wire step_up = no_clip && !clamped_low && amax_fraction >= THRESHOLD && ocp < 11'sd127;
  wire signed [10:0] chosen = step_up ? ocp + 11'sd1 : ocp;
  assign shared_exp = chosen[8:0];
  wire unused_ok = &{1'b0, chosen[10:9]};
endmodule
`default_nettype wire
