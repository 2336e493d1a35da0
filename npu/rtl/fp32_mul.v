// fp32_mul: IEEE 754 binary32 multiplication y = a * b, round to nearest even, with subnormal
// inputs and results (gradual underflow): the float32 multiply numpy performs and
// npu/hw/numerics.py uses. Special values: NaN in or 0 * inf -> the canonical NaN (the tests
// compare NaN as a class); inf * nonzero -> signed inf; overflow -> signed inf; a result below
// the smallest subnormal rounds to signed zero.
// Combinational (latency 0 cycles).
//
// Method: exact 48-bit product of the significands, normalise it so its leading one is bit 47,
// shift right further for a subnormal result (collecting sticky bits), round once.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_mul (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output reg  [31:0] y
);
  wire sign = a[31] ^ b[31];
  wire a_max_exp = (a[30:23] == 8'hFF);
  wire b_max_exp = (b[30:23] == 8'hFF);
  wire a_nan = a_max_exp && (a[22:0] != 23'd0);
  wire b_nan = b_max_exp && (b[22:0] != 23'd0);
  wire a_inf = a_max_exp && (a[22:0] == 23'd0);
  wire b_inf = b_max_exp && (b[22:0] == 23'd0);
  wire a_zero = (a[30:0] == 31'd0);
  wire b_zero = (b[30:0] == 31'd0);

  wire [9:0] a_exp = (a[30:23] == 8'd0) ? 10'd1 : {2'd0, a[30:23]};
  wire [9:0] b_exp = (b[30:23] == 8'd0) ? 10'd1 : {2'd0, b[30:23]};
  wire [23:0] a_sig = {a[30:23] != 8'd0, a[22:0]};
  wire [23:0] b_sig = {b[30:23] != 8'd0, b[22:0]};
  wire [47:0] product = a_sig * b_sig;

  // Leading-zero count of the product (nonzero operands: at most 46).
  wire [5:0] lz;
  leading_zero_count #(.WIDTH(48), .COUNT_BITS(6)) product_zeros (.value(product), .count(lz));
  wire [47:0] normalised = product << lz;
  // Biased exponent of normalised[47]: a_exp + b_exp - 127 + 1 - lz (signed, 10 bits).
  wire signed [9:0] exp_norm = $signed(a_exp + b_exp) - $signed(10'd126) - $signed({4'd0, lz});

  // Subnormal result: shift right by 1 - exp_norm more places; exponent field 0.
  reg [47:0] denorm;
  reg [47:0] lost;
  reg [7:0] right;
  always @* begin
    right = 8'd0;
    lost = 48'd0;
    denorm = normalised;
    if (exp_norm <= 10'sd0) begin
      right = (exp_norm < -10'sd48) ? 8'd49 : 8'd1 - exp_norm[7:0];
      {denorm, lost} = {normalised, 48'd0} >> right;
    end
  end
  wire [7:0] exp_field = (exp_norm <= 10'sd0) ? 8'd0 : exp_norm[7:0];
  wire guard = denorm[23];
  wire sticky = (denorm[22:0] != 23'd0) || (lost != 48'd0);
  wire round_up = guard & (sticky | denorm[24]);
  wire [30:0] rounded = {exp_field, denorm[46:24]} + {30'd0, round_up};
  wire unused_ok = denorm[47];  // the hidden bit, implied by exp_field

  always @* begin
    if (a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero)) y = `DNPU_FP32_CANONICAL_NAN;
    else if (a_inf || b_inf) y = {sign, 8'hFF, 23'd0};
    else if (a_zero || b_zero) y = {sign, 31'd0};
    else if (exp_norm >= 10'sd255) y = {sign, 8'hFF, 23'd0};
    else y = {sign, rounded};
  end
endmodule
`default_nettype wire
