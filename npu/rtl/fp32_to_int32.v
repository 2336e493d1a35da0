// fp32_to_int32: y = int32(rint(a)) saturated to [-2^31, 2^31 - 1], rounding half to even, as the
// functional simulator's fcvt.i.f (np.rint of the float64 value, then min/max). `is_nan` flags a
// NaN input, which the core reports as a fault (y is then 0). Combinational (latency 0 cycles).
//
// Method: a = m * 2^(e - 23) with m the 24-bit significand; for -1 <= e <= 30 the value in
// fixed point with 32 fraction bits is m << (e + 9) (at most 63 bits); round the integer part on
// the fraction's top bit and the sticky OR of the rest. |a| < 0.5 (e < -1) rounds to 0; e >= 31
// (including inf) saturates.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_to_int32 (
    input  wire [31:0] a,
    output reg  [31:0] y,
    output wire        is_nan
);
  wire        sign = a[31];
  wire [7:0]  exp_field = a[30:23];
  assign is_nan = (exp_field == 8'hFF) && (a[22:0] != 23'd0);
  wire signed [9:0] e = $signed({2'b00, exp_field}) - $signed(10'd`DNPU_FP32_EXPONENT_BIAS);
  wire [23:0] significand = {1'b1, a[22:0]};
  wire [5:0]  shift = e[5:0] + 6'd9;  // e + 9, used when -1 <= e <= 30: 8..39
  wire [63:0] fixed = {40'd0, significand} << shift;
  wire [31:0] whole = fixed[63:32];
  wire        round_up = fixed[31] && ((|fixed[30:0]) || whole[0]);
  wire [31:0] magnitude = whole + {31'd0, round_up};  // <= 2^31
  always @* begin
    if (is_nan || e < -10'sd1)
      y = 32'd0;
    else if (e > 10'sd30)
      y = sign ? 32'h80000000 : 32'h7FFFFFFF;
    else if (sign)
      y = ~magnitude + 32'd1;  // 2^31 -> -2^31
    else
      y = magnitude[31] ? 32'h7FFFFFFF : magnitude;
  end
endmodule
`default_nettype wire
