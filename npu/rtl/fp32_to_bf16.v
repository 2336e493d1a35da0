// fp32_to_bf16: round a float32 to bf16 as numerics._encode_bf16 does.
// Round to nearest, ties to even, on the bit pattern: (u + 0x7FFF + u[16]) >> 16. A carry out of the
// mantissa bumps the exponent, so the largest finite values round up to inf as IEEE does;
// subnormals round like any other pattern (no flush). NaN becomes the canonical bf16 NaN.
// Combinational (latency 0 cycles).
//
// Define DNPU_MUTANT_BF16_ROUND to drop the ties-to-even term (round half up instead): the
// mutation check in tests/test_rtl_numerics.py builds that variant and expects mismatches.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_to_bf16 (
    input  wire [31:0] a,
    output wire [15:0] y
);
  wire is_nan = (a[30:23] == 8'hFF) && (a[22:0] != 23'd0);
`ifdef DNPU_MUTANT_BF16_ROUND
  wire [31:0] tie_to_even = 32'd0;
`else
  wire [31:0] tie_to_even = {31'd0, a[16]};  // the lowest kept bit breaks ties towards even
`endif
  wire [31:0] rounded = a + 32'h00007FFF + tie_to_even;
  assign y = is_nan ? `DNPU_BF16_CANONICAL_NAN : rounded[31:16];
  // rounded[15:0] are the discarded bits.
  wire unused_ok = &{1'b0, rounded[15:0]};
endmodule
`default_nettype wire
