// mx_element_encode: one MX element code of a float32 value v in a block with shared exponent e:
// v / 2^e rounded to the element format (RNE) and clamped to its finite range, as numerics'
// _encode_exact does (the division by 2^e is exact, so the only rounding is the element's).
// Parameters are the element format (npu/rtl/generated/dnpu_mx.vh):
//   IS_INT = 1: two's complement integers of BITS bits with FRACTION_BITS fraction bits (MXINT8,
//     MXINT4), symmetric saturation to +-(2^(BITS-1) - 1);
//   IS_INT = 0: sign | exponent | MANTISSA_BITS mantissa with EXPONENT_BIAS and IEEE-style
//     subnormals (E4M3, E5M2, E2M1), magnitudes above code MAX_MAGNITUDE saturate to it.
// v is finite here: a block holding NaN or inf is replaced by mx_block_encoder. Subnormal v are
// rounded exactly like normal ones (no flush). A negative value that rounds to zero keeps its sign
// bit in a float format (-0), and is 0 in an integer format.
// Combinational (latency 0 cycles).
//
// Method: v = significand * 2^(x - 23) with a 24-bit significand (hidden bit for normal v, x = -126
// for subnormal v). Integers: code = RNE(significand / 2^(23 + e - FRACTION_BITS - x)). Floats:
// normalise (leading-zero count), y = floor(log2(v / 2^e)), ye = max(y, 1 - bias), n =
// RNE(significand / 2^(23 - MANTISSA_BITS + ye - y)); the magnitude code is
// ((ye + bias - 1) << MANTISSA_BITS) + n, where a carry out of the mantissa correctly bumps the
// exponent field (and a subnormal that rounds up becomes the smallest normal).
`default_nettype none
`include "dnpu_mx.vh"
// Parameter defaults: the MXINT8 element format.
module mx_element_encode #(
    parameter IS_INT = `DNPU_MX_MXINT8_IS_INT,
    parameter BITS = `DNPU_MX_MXINT8_BITS,
    parameter MANTISSA_BITS = `DNPU_MX_MXINT8_MANTISSA_BITS,
    parameter EXPONENT_BIAS = `DNPU_MX_MXINT8_EXPONENT_BIAS,
    parameter FRACTION_BITS = `DNPU_MX_MXINT8_FRACTION_BITS,
    parameter MAX_MAGNITUDE = `DNPU_MX_MXINT8_MAX_MAGNITUDE
) (
    input  wire [31:0]       value,
    input  wire signed [8:0] shared_exp,
    output wire [BITS-1:0]   code
);
  wire sign = value[31];
  wire normal = value[30:23] != 8'd0;
  wire [23:0] significand = {normal, value[22:0]};
  wire signed [11:0] x = normal ? $signed({4'd0, value[30:23]}) - 12'sd127 : -12'sd126;
  wire signed [11:0] e = {{3{shared_exp[8]}}, shared_exp};
  localparam [BITS-2:0] LARGEST = MAX_MAGNITUDE;
  wire [BITS-2:0] magnitude;

  generate
    if (IS_INT != 0) begin : g_int
      localparam signed [11:0] FRACTION = FRACTION_BITS;
      wire signed [11:0] shift = 12'sd23 + e - FRACTION - x;
      // In a block |v| / 2^e < 2, so the shift is at least 22 - FRACTION (16 for MXINT8); a shift
      // below 0 (not reachable from mx_block_encoder) would mean a huge value: saturate.
      wire [4:0] shift_clamped = shift > 12'sd31 ? 5'd31 : shift[4:0];
      wire [24:0] rounded;
      rne_shift_right #(.WIDTH(24), .SHIFT_BITS(5)) u_round (
          .value(significand), .shift(shift_clamped), .rounded(rounded));
      wire saturate = shift < 12'sd0 || rounded > {{(25 - BITS + 1){1'b0}}, LARGEST};
      assign magnitude = saturate ? LARGEST : rounded[BITS-2:0];
      wire [BITS-1:0] positive = {1'b0, magnitude};
      assign code = sign ? ~positive + {{(BITS - 1){1'b0}}, 1'b1} : positive;
    end else begin : g_float
      localparam signed [11:0] EMIN = 1 - EXPONENT_BIAS;
      localparam signed [11:0] BIAS = EXPONENT_BIAS;
      localparam signed [11:0] MBITS = MANTISSA_BITS;
      wire [4:0] leading_zeros;
      leading_zero_count #(.WIDTH(24), .COUNT_BITS(5)) u_lzc (.value(significand), .count(leading_zeros));
      wire [23:0] normalised = significand << leading_zeros;
      wire signed [11:0] y = x - $signed({7'd0, leading_zeros}) - e;
      wire signed [11:0] y_element = y < EMIN ? EMIN : y;
      wire signed [11:0] shift = 12'sd23 - MBITS + (y_element - y);
      wire [4:0] shift_clamped = shift > 12'sd31 ? 5'd31 : shift[4:0];
      wire [24:0] rounded;
      rne_shift_right #(.WIDTH(24), .SHIFT_BITS(5)) u_round (
          .value(normalised), .shift(shift_clamped), .rounded(rounded));
      // ye + bias - 1 >= 0; n <= 2^(MANTISSA_BITS + 1).
      wire signed [15:0] field = {{4{y_element[11]}}, y_element} + {{4{BIAS[11]}}, BIAS} - 16'sd1;
      wire signed [15:0] wide = (field <<< MANTISSA_BITS) + $signed({1'b0, rounded[14:0]});
      wire zero = value[30:0] == 31'd0;
      wire saturate = wide > $signed({{(16 - BITS + 1){1'b0}}, LARGEST});
      assign magnitude = zero ? {(BITS - 1){1'b0}} : (saturate ? LARGEST : wide[BITS-2:0]);
      assign code = {sign, magnitude};
      wire unused_ok = &{1'b0, rounded[24:15]};
    end
  endgenerate
endmodule
`default_nettype wire
