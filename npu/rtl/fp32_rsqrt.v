// fp32_rsqrt: 1/sqrt(a) as numerics.hw_rsqrt computes it, bit for bit. Combinational (latency 0).
//   1. flush a subnormal input to signed zero (DAZ); a = m' * 2^(2k), m' in [1, 4):
//      e = unbiased exponent, k = floor(e / 2), m' = m * 2^(e mod 2);
//   2. seed y = RSQRT_TABLE[(e mod 2), top RSQRT_TABLE_BITS mantissa bits] (rsqrt_seed_rom);
//   3. RSQRT_NEWTON_STEPS times: h = 0.5 * y; t = (m' * y) * y; y = y + h * (1 - t);
//   4. y scaled by 2^-k through the exponent field (always normal).
// Special values: +0 -> +inf, -0 (and negative subnormals) -> -inf, a < 0 -> NaN, +inf -> +0,
// NaN -> canonical NaN.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_rsqrt (
    input  wire [31:0] a,
    output reg  [31:0] y
);
  localparam integer STEPS = `DNPU_RSQRT_NEWTON_STEPS;
  localparam integer TABLE_BITS = `DNPU_RSQRT_TABLE_BITS;

  wire [7:0] exp_field = a[30:23];
  wire is_zero = (exp_field == 8'd0);  // zero or subnormal (DAZ)
  wire is_inf = (exp_field == 8'hFF) && (a[22:0] == 23'd0);
  wire is_nan = (exp_field == 8'hFF) && (a[22:0] != 23'd0);

  wire signed [9:0] e = $signed({2'd0, exp_field}) - $signed(10'd`DNPU_FP32_EXPONENT_BIAS);
  wire parity = e[0];
  wire signed [9:0] k = e >>> 1;  // floor division, also for negative exponents
  wire [7:0] m_exp = 8'd`DNPU_FP32_EXPONENT_BIAS + {7'd0, parity};
  wire [31:0] m = {1'b0, m_exp, a[22:0]};

  wire [32*(STEPS+1)-1:0] ys;  // stage s output in bits [32s+31:32s]
  rsqrt_seed_rom u_seed (.index({parity, a[22 -: TABLE_BITS]}), .data(ys[31:0]));
  genvar s;
  generate
    for (s = 0; s < STEPS; s = s + 1) begin : newton
      wire [31:0] y_in = ys[32*s +: 32];
      wire [31:0] h, my, t, d, hd;
      fp32_mul u_h (.a(`DNPU_FP32_HALF), .b(y_in), .y(h));
      fp32_mul u_my (.a(m), .b(y_in), .y(my));
      fp32_mul u_t (.a(my), .b(y_in), .y(t));
      fp32_add u_d (.a(`DNPU_FP32_ONE), .b({~t[31], t[30:0]}), .y(d));
      fp32_mul u_hd (.a(h), .b(d), .y(hd));
      fp32_add u_y (.a(y_in), .b(hd), .y(ys[32*(s+1) +: 32]));
    end
  endgenerate

  wire [31:0] scaled;
  fp32_scale_pow2 u_scale (.a(ys[32*STEPS +: 32]), .n(-k), .y(scaled));

  always @* begin
    if (is_nan || (a[31] && !is_zero)) y = `DNPU_FP32_CANONICAL_NAN;
    else if (is_zero) y = {a[31], 8'hFF, 23'd0};
    else if (is_inf) y = 32'd0;
    else y = scaled;
  end
endmodule
`default_nettype wire
