// fp32_compare: IEEE 754 ordered comparison of two binary32 values, as numpy's float32 `>`, `==`,
// `<` compute them: subnormals compared exactly, -0 == +0, and every comparison with a NaN false
// (`unordered` says one operand is a NaN). Combinational.
//
// Method: with the sign bit flipped for positive values and every bit flipped for negative ones,
// the unsigned order of the patterns is the numeric order; only the two zeros need the equality
// fix-up.
`default_nettype none
module fp32_compare (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire        greater,    // a > b
    output wire        equal,      // a == b
    output wire        less,       // a < b
    output wire        unordered   // a or b is a NaN
);
  wire a_nan = (a[30:23] == 8'hFF) && (a[22:0] != 23'd0);
  wire b_nan = (b[30:23] == 8'hFF) && (b[22:0] != 23'd0);
  wire both_zero = (a[30:0] == 31'd0) && (b[30:0] == 31'd0);
  wire [31:0] a_key = a[31] ? ~a : {1'b1, a[30:0]};
  wire [31:0] b_key = b[31] ? ~b : {1'b1, b[30:0]};
  assign unordered = a_nan || b_nan;
  assign equal = !unordered && (both_zero || a == b);
  assign greater = !unordered && !both_zero && (a_key > b_key);
  assign less = !unordered && !both_zero && (a_key < b_key);
endmodule
`default_nettype wire
