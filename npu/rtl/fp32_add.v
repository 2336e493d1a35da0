// fp32_add: IEEE 754 binary32 addition y = a + b, round to nearest even, with subnormal inputs and
// results (gradual underflow): exactly the float32 addition numpy performs, which
// npu/hw/numerics.py uses for every fp32 add (accumulators, vector unit, the hw_* functions).
// Subtraction is a + (b with its sign bit flipped).
// Special values: NaN in or inf - inf -> the canonical NaN (numpy's NaN payload is the host
// CPU's choice; the tests compare NaN as a class); inf + finite -> that inf; exact zero results
// are +0 except -0 + -0 = -0.
// Combinational (latency 0 cycles).
//
// Method: order the operands by magnitude, align the smaller significand with guard, round and
// sticky bits, add or subtract, normalise (never below the subnormal exponent), round once.
//
// Define DNPU_MUTANT_FP32_ROUND to round half up instead of half to even (mutation check).
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_add (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output reg  [31:0] y
);
  wire a_max_exp = (a[30:23] == 8'hFF);
  wire b_max_exp = (b[30:23] == 8'hFF);
  wire a_nan = a_max_exp && (a[22:0] != 23'd0);
  wire b_nan = b_max_exp && (b[22:0] != 23'd0);
  wire a_inf = a_max_exp && (a[22:0] == 23'd0);
  wire b_inf = b_max_exp && (b[22:0] == 23'd0);
  wire subtract = a[31] ^ b[31];

  // larger has the larger magnitude; on a tie either order gives the same result.
  wire swap = (b[30:0] > a[30:0]);
  wire [31:0] larger = swap ? b : a;
  wire [30:0] smaller = swap ? a[30:0] : b[30:0];  // its sign only matters through `subtract`
  // Subnormals have exponent field 0 but scale 2^-126 like field 1, and no hidden bit.
  wire [7:0] larger_exp = (larger[30:23] == 8'd0) ? 8'd1 : larger[30:23];
  wire [7:0] smaller_exp = (smaller[30:23] == 8'd0) ? 8'd1 : smaller[30:23];
  wire [23:0] larger_sig = {larger[30:23] != 8'd0, larger[22:0]};
  wire [23:0] smaller_sig = {smaller[30:23] != 8'd0, smaller[22:0]};
  wire [7:0] shift = larger_exp - smaller_exp;

  // Significands with 3 extra bits below the LSB: guard, round, sticky.
  wire [26:0] larger_ext = {larger_sig, 3'b000};
  wire [50:0] smaller_wide = {smaller_sig, 27'd0} >> shift;  // only used when shift < 27
  reg  [26:0] smaller_ext;
  always @* begin
    if (shift >= 8'd27) smaller_ext = {26'd0, smaller_sig != 24'd0};
    else smaller_ext = {smaller_wide[50:25], smaller_wide[24] | (smaller_wide[23:0] != 24'd0)};
  end

  wire [27:0] sum = subtract ? {1'b0, larger_ext} - {1'b0, smaller_ext} : {1'b0, larger_ext} + {1'b0, smaller_ext};

  // Leading-zero count of sum[26:0] (27 when zero).
  wire [4:0] lz;
  leading_zero_count #(.WIDTH(27), .COUNT_BITS(5)) sum_zeros (.value(sum[26:0]), .count(lz));

  // Normalise: a carry shifts right by one (folding the lost bit into sticky); otherwise shift
  // left by the leading zeros, but never below exponent 1 (the result is then subnormal).
  reg [26:0] norm;
  reg [8:0] exp_norm;
  reg [7:0] left;
  always @* begin
    left = 8'd0;
    if (sum[27]) begin
      norm = {sum[27:2], sum[1] | sum[0]};
      exp_norm = {1'b0, larger_exp} + 9'd1;
    end else begin
      left = ({3'd0, lz} < larger_exp - 8'd1) ? {3'd0, lz} : larger_exp - 8'd1;
      norm = sum[26:0] << left;
      exp_norm = {1'b0, larger_exp} - {1'b0, left};
    end
  end

  wire [7:0] exp_field = norm[26] ? exp_norm[7:0] : 8'd0;
  wire guard = norm[2];
  wire sticky = norm[1] | norm[0];
`ifdef DNPU_MUTANT_FP32_ROUND
  wire round_up = guard;
`else
  wire round_up = guard & (sticky | norm[3]);
`endif
  // A carry out of the mantissa moves into the exponent field (and 0xFE.. + 1 gives inf).
  wire [30:0] rounded = {exp_field, norm[25:3]} + {30'd0, round_up};

  always @* begin
    if (a_nan || b_nan || (a_inf && b_inf && subtract)) y = `DNPU_FP32_CANONICAL_NAN;
    else if (a_inf) y = a;
    else if (b_inf) y = b;
    else if (sum == 28'd0) y = {a[31] & b[31], 31'd0};
    else if (exp_norm >= 9'd255) y = {larger[31], 8'hFF, 23'd0};
    else y = {larger[31], rounded};
  end
endmodule
`default_nettype wire
