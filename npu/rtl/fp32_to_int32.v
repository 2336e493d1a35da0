// fp32_to_int32: a binary32 value rounded to an integer (nearest, ties to even) and saturated to
// the int32 range, as vsti computes it (`clip(rint(x), INT32_MIN, INT32_MAX)`): +-inf saturate,
// -0 gives 0. A NaN has no integer value: `invalid` is set (vsti faults) and y is 0.
// Combinational.
`default_nettype none
module fp32_to_int32 (
    input  wire [31:0] a,
    output reg  [31:0] y,
    output wire        invalid
);
  wire [7:0] field = a[30:23];
  assign invalid = (field == 8'hFF) && (a[22:0] != 23'd0);
  // |a| = significand * 2^(field - 150). For field in [126, 157] (|a| in [0.5, 2^31)) place it
  // in a 64-bit fixed-point number with 32 fraction bits: shift = field - 150 + 32 in [8, 39].
  wire [23:0] significand = {1'b1, a[22:0]};
  wire [5:0] shift = field[5:0] - 6'd54;  // field - 118, taken modulo 64; used for field >= 126 only
  wire [63:0] fixed = {40'd0, significand} << shift;
  wire [31:0] whole = fixed[63:32];
  wire round_up = fixed[31] && ((|fixed[30:0]) || whole[0]);
  wire [31:0] magnitude = whole + {31'd0, round_up};  // < 2^31 for field <= 157

  always @* begin
    if (invalid) y = 32'd0;
    else if (field >= 8'd158) y = a[31] ? 32'h80000000 : 32'h7FFFFFFF;  // |a| >= 2^31 or inf
    else if (field < 8'd126) y = 32'd0;                                  // |a| < 0.5 rounds to 0
    else y = a[31] ? (~magnitude + 32'd1) : magnitude;
  end
endmodule
`default_nettype wire
