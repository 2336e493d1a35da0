// fp32_recip: 1/a as numerics.hw_recip computes it, bit for bit. Combinational (latency 0 cycles).
//   1. flush a subnormal input to signed zero (DAZ); split |a| = m * 2^e, m in [1, 2);
//   2. seed y = RECIP_TABLE[top RECIP_TABLE_BITS mantissa bits] (recip_seed_rom, generated);
//   3. RECIP_NEWTON_STEPS times: d = 1 - m * y; y = y + y * d (fp32_mul / fp32_add);
//   4. y gets a's sign and is scaled by 2^-e through the exponent field (underflow -> signed 0).
// Special values: +-0 and subnormals -> +-inf, +-inf -> +-0, NaN -> canonical NaN.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_recip (
    input  wire [31:0] a,
    output reg  [31:0] y
);
  localparam integer STEPS = `DNPU_RECIP_NEWTON_STEPS;
  localparam integer TABLE_BITS = `DNPU_RECIP_TABLE_BITS;

  wire [7:0] exp_field = a[30:23];
  wire is_zero = (exp_field == 8'd0);  // zero or subnormal (DAZ)
  wire is_inf = (exp_field == 8'hFF) && (a[22:0] == 23'd0);
  wire is_nan = (exp_field == 8'hFF) && (a[22:0] != 23'd0);
  wire [31:0] m = {1'b0, 8'd`DNPU_FP32_EXPONENT_BIAS, a[22:0]};

  wire [32*(STEPS+1)-1:0] ys;  // stage s output in bits [32s+31:32s]
  recip_seed_rom u_seed (.index(a[22 -: TABLE_BITS]), .data(ys[31:0]));
  genvar s;
  generate
    for (s = 0; s < STEPS; s = s + 1) begin : newton
      wire [31:0] y_in = ys[32*s +: 32];
      wire [31:0] my, d, yd;
      fp32_mul u_my (.a(m), .b(y_in), .y(my));
      fp32_add u_d (.a(`DNPU_FP32_ONE), .b({~my[31], my[30:0]}), .y(d));
      fp32_mul u_yd (.a(y_in), .b(d), .y(yd));
      fp32_add u_y (.a(y_in), .b(yd), .y(ys[32*(s+1) +: 32]));
    end
  endgenerate

  wire [31:0] y_final = ys[32*STEPS +: 32];
  wire signed [9:0] minus_e = $signed(10'd`DNPU_FP32_EXPONENT_BIAS) - $signed({2'd0, exp_field});
  wire [31:0] scaled;
  fp32_scale_pow2 u_scale (.a({a[31], y_final[30:0]}), .n(minus_e), .y(scaled));
  wire unused_ok = y_final[31];  // positive: the sign comes from a

  always @* begin
    if (is_nan) y = `DNPU_FP32_CANONICAL_NAN;
    else if (is_inf) y = {a[31], 31'd0};
    else if (is_zero) y = {a[31], 8'hFF, 23'd0};
    else y = scaled;
  end
endmodule
`default_nettype wire
