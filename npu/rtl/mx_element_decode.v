// mx_element_decode: the float32 value of one MX element code in a block with E8M0 scale code s,
// as numerics.mx_dequantize computes it: element x 2^(s - 127), rounded once to float32. The
// rounding never changes a finite value here: every element is at most 8 significant bits and the
// smallest product (the smallest element subnormal or integer step times 2^-127) is at least
// 2^-143, above float32's 2^-149, so the result is exact, or beyond float32's range and +-inf.
// Specials: scale 0xFF (a NaN block) or a NaN element -> the canonical NaN 0x7FC00000; an E5M2
// inf element -> +-inf; a float element -0 -> -0.0. Element formats as in mx_element_encode.
// Combinational (latency 0 cycles).
//
// Method: the element is magnitude M (an integer, at most 8 bits) times 2^lsb with lsb =
// -FRACTION_BITS (integers) or max(exponent field, 1) - bias - MANTISSA_BITS (floats); the value
// is M x 2^t with t = lsb + s - 127. Normalising M (leading-zero count) gives the float32
// exponent t + position of M's leading one; below -126 the result is the subnormal M << (t + 149).
`default_nettype none
`include "dnpu_numerics.vh"
`include "dnpu_mx.vh"
// Parameter defaults: the MXINT8 element format.
module mx_element_decode #(
    parameter IS_INT = `DNPU_MX_MXINT8_IS_INT,
    parameter BITS = `DNPU_MX_MXINT8_BITS,
    parameter MANTISSA_BITS = `DNPU_MX_MXINT8_MANTISSA_BITS,
    parameter EXPONENT_BIAS = `DNPU_MX_MXINT8_EXPONENT_BIAS,
    parameter FRACTION_BITS = `DNPU_MX_MXINT8_FRACTION_BITS,
    parameter HAS_INF = `DNPU_MX_MXINT8_HAS_INF,
    parameter HAS_NAN = `DNPU_MX_MXINT8_HAS_NAN
) (
    input  wire [BITS-1:0] code,
    input  wire [7:0]      scale,
    output reg  [31:0]     value
);
  wire sign;
  wire [7:0] magnitude;
  wire signed [11:0] lsb_exponent;
  wire element_nan, element_inf;

  generate
    if (IS_INT != 0) begin : g_int
      localparam signed [11:0] FRACTION = FRACTION_BITS;
      assign sign = code[BITS-1];
      wire [BITS-1:0] absolute = sign ? ~code + {{(BITS - 1){1'b0}}, 1'b1} : code;
      // The most negative code (e.g. 0x80 = -2 in MXINT8) has absolute value 2^(BITS-1): its
      // BITS-bit pattern read unsigned is right.
      wire [15:0] absolute_wide = {{(16 - BITS){1'b0}}, absolute};
      assign magnitude = absolute_wide[7:0];
      wire unused_ok = &{1'b0, absolute_wide[15:8]};
      assign lsb_exponent = -FRACTION;
      assign element_nan = 1'b0;
      assign element_inf = 1'b0;
    end else begin : g_float
      localparam EXPONENT_BITS = BITS - 1 - MANTISSA_BITS;
      localparam signed [11:0] BIAS = EXPONENT_BIAS;
      localparam signed [11:0] MBITS = MANTISSA_BITS;
      assign sign = code[BITS-1];
      wire [EXPONENT_BITS-1:0] field = code[BITS-2:MANTISSA_BITS];
      wire [MANTISSA_BITS-1:0] mantissa = code[MANTISSA_BITS-1:0];
      wire top = &field;
      wire normal = field != {EXPONENT_BITS{1'b0}};
      assign magnitude = {{(7 - MANTISSA_BITS){1'b0}}, normal, mantissa};
      assign lsb_exponent = (normal ? $signed({{(12 - EXPONENT_BITS){1'b0}}, field}) : 12'sd1) - BIAS - MBITS;
      if (HAS_INF != 0) begin : g_ieee  // E5M2: all-ones exponent is inf (mantissa 0) or NaN
        assign element_inf = top && mantissa == {MANTISSA_BITS{1'b0}};
        assign element_nan = top && mantissa != {MANTISSA_BITS{1'b0}};
      end else if (HAS_NAN != 0) begin : g_ocp_nan  // E4M3: only S.1111.111 is NaN
        assign element_inf = 1'b0;
        assign element_nan = top && &mantissa;
      end else begin : g_no_specials  // E2M1
        assign element_inf = 1'b0;
        assign element_nan = 1'b0;
        wire unused_ok = &{1'b0, top};
      end
    end
  endgenerate

  wire [3:0] leading_zeros;
  leading_zero_count #(.WIDTH(8), .COUNT_BITS(4)) u_lzc (.value(magnitude), .count(leading_zeros));
  wire [7:0] normalised = magnitude << leading_zeros[2:0];
  wire signed [11:0] t = lsb_exponent + $signed({4'd0, scale}) - 12'sd127;
  wire signed [11:0] exponent = t + 12'sd7 - $signed({8'd0, leading_zeros});  // floor(log2(value))
  wire signed [11:0] subnormal_shift = t + 12'sd149;
  wire [22:0] subnormal = {15'd0, magnitude} << subnormal_shift[4:0];

  always @* begin
    if (scale == `DNPU_E8M0_NAN || element_nan)
      value = `DNPU_FP32_CANONICAL_NAN;
    else if (element_inf)
      value = {sign, 8'hFF, 23'd0};
    else if (magnitude == 8'd0)
      value = {sign, 31'd0};
    else if (exponent > 12'sd127)
      value = {sign, 8'hFF, 23'd0};
    else if (exponent >= -12'sd126)
      value = {sign, exponent[7:0] + 8'd127, normalised[6:0], 16'd0};
    else
      value = {sign, 8'd0, subnormal};
  end
  wire unused_ok = &{1'b0, normalised[7], subnormal_shift[11:5]};
endmodule
`default_nettype wire
