// int32_to_fp32: a two's-complement int32 as the nearest binary32 (round to nearest, ties to
// even), as numpy's int32 -> float32 conversion (`astype(np.float32)`) rounds: the first step of
// vldi (INT SRAM row -> vector row). Combinational.
`default_nettype none
module int32_to_fp32 (
    input  wire [31:0] a,
    output reg  [31:0] y
);
  wire negative = a[31];
  wire [31:0] magnitude = negative ? (~a + 32'd1) : a;  // -2^31 gives 2^31, as unsigned
  wire [5:0] zeros;
  leading_zero_count #(.WIDTH(32), .COUNT_BITS(6)) u_lzc (.value(magnitude), .count(zeros));
  // Leading one moved to bit 31: bits [30:8] are the mantissa, bit 7 rounds, [6:0] are sticky.
  wire [31:0] normalised = magnitude << zeros[4:0];
  wire round_bit = normalised[7];
  wire sticky = |normalised[6:0];
  wire round_up = round_bit && (sticky || normalised[8]);
  wire [24:0] significand = {1'b0, normalised[31:8]} + {24'd0, round_up};  // may carry to 2^24
  wire [7:0] exponent = 8'd158 - {2'b00, zeros};  // 127 + 31 - zeros

  wire unused = significand[23];  // the hidden bit

  always @* begin
    if (magnitude == 32'd0) y = 32'd0;
    else if (significand[24]) y = {negative, exponent + 8'd1, 23'd0};
    else y = {negative, exponent, significand[22:0]};
  end
endmodule
`default_nettype wire
