// int32_to_fp32: y = float32(a) for a two's-complement int32 a, rounded to nearest even, as numpy's
// np.float32(int) (the functional simulator's fcvt.f.i). Exact for |a| <= 2^24; 0 -> +0.
// Combinational (latency 0 cycles).
//
// Method: magnitude, normalise (leading one to bit 31), keep 24 significand bits, round on the
// guard bit (bit 7) and the sticky OR of bits 6..0; a carry out of the significand bumps the
// exponent through the {exponent, fraction} addition.
`default_nettype none
`include "dnpu_numerics.vh"
module int32_to_fp32 (
    input  wire [31:0] a,
    output wire [31:0] y
);
  wire        sign = a[31];
  wire [31:0] magnitude = sign ? (~a + 32'd1) : a;  // -2^31 -> 2^31 (only bit 31 set)
  wire [5:0]  zeros;
  leading_zero_count #(.WIDTH(32), .COUNT_BITS(6)) u_lzc (.value(magnitude), .count(zeros));
  wire [31:0] normalised = magnitude << zeros[4:0];
  wire        unused_leading_one = normalised[31];  // the implicit bit
  wire        guard = normalised[7];
  wire        sticky = |normalised[6:0];
  wire        round_up = guard && (sticky || normalised[8]);
  // biased exponent of 2^(31 - zeros); zeros <= 31 for a non-zero magnitude
  wire [7:0]  exponent = 8'd`DNPU_FP32_EXPONENT_BIAS + 8'd31 - {2'b00, zeros};
  wire [30:0] rounded = {exponent, normalised[30:8]} + {30'd0, round_up};
  assign y = (magnitude == 32'd0) ? 32'h00000000 : {sign, rounded};
endmodule
`default_nettype wire
