// fp32_exp: e^a as numerics.hw_exp computes it, bit for bit. Combinational (latency 0 cycles).
//   1. flush a subnormal input to signed zero (DAZ); clamp to [EXP_CLAMP_LO, EXP_CLAMP_HI]
//      (NaN is remembered and computed as +0);
//   2. n = rint(x * LOG2E)                       (float32 multiply, round half to even)
//   3. r = (x - n * LN2_HI) - n * LN2_LO
//   4. p = Horner over the coefficients c_DEGREE..c_0: p = p * r + c_k (no fused multiply-add)
//   5. y = p * 2^n through the exponent field (fp32_scale_pow2); NaN in -> canonical NaN.
// Every float operation is an fp32_mul / fp32_add instance; the constants come from
// generated/dnpu_numerics.vh.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_exp (
    input  wire [31:0] a,
    output wire [31:0] y
);
  localparam [31:0] CLAMP_LO = `DNPU_EXP_CLAMP_LO;
  localparam [31:0] CLAMP_HI = `DNPU_EXP_CLAMP_HI;
  localparam integer DEGREE = `DNPU_EXP_DEGREE;
  localparam [32*(DEGREE+1)-1:0] COEFFS = `DNPU_EXP_COEFFS;

  // p < q for non-NaN float32 bit patterns (+0 and -0 are equal).
  function automatic less(input [31:0] p, input [31:0] q);
    if (p[31] != q[31]) less = p[31] && ((p[30:0] | q[30:0]) != 31'd0);
    else if (p[31]) less = p[30:0] > q[30:0];
    else less = p[30:0] < q[30:0];
  endfunction

  // 1. DAZ, NaN, clamp.
  wire [31:0] x_daz = (a[30:23] == 8'd0) ? {a[31], 31'd0} : a;
  wire is_nan = (a[30:23] == 8'hFF) && (a[22:0] != 23'd0);
  reg [31:0] x;
  always @* begin
    if (is_nan) x = 32'd0;
    else if (less(x_daz, CLAMP_LO)) x = CLAMP_LO;
    else if (less(CLAMP_HI, x_daz)) x = CLAMP_HI;
    else x = x_daz;
  end

  // 2. n = rint(x * LOG2E). After the clamp |t| < 2^8, so the integer part fits 9 bits.
  wire [31:0] t;
  fp32_mul u_t (.a(x), .b(`DNPU_EXP_LOG2E), .y(t));
  wire [7:0] t_exp = t[30:23];
  wire [7:0] t_shift = 8'd150 - t_exp;  // 2^23 / 2^(t_exp - 127): places right of the binary point
  wire [47:0] t_wide = {1'b1, t[22:0], 24'd0} >> t_shift;  // meaningful for 126 <= t_exp <= 149
  wire [23:0] t_int = t_wide[47:24];
  wire t_half = t_wide[23];
  wire t_sticky = (t_wide[22:0] != 23'd0);
  wire [8:0] n_mag = (t_exp < 8'd126) ? 9'd0 : t_int[8:0] + {8'd0, t_half & (t_sticky | t_int[0])};
  wire signed [9:0] n = t[31] ? -$signed({1'b0, n_mag}) : $signed({1'b0, n_mag});
  wire unused_ok = &{1'b0, t_int[23:9], n_shifted[31:23]};

  // n as a float32 (exact; rint keeps the sign, so -0.3 gives n = -0).
  reg [3:0] n_msb;
  integer i;
  always @* begin
    n_msb = 4'd0;
    for (i = 0; i < 9; i = i + 1) if (n_mag[i]) n_msb = i[3:0];
  end
  wire [31:0] n_shifted = {n_mag, 23'd0} >> n_msb;  // leading one lands on bit 23
  wire [31:0] n_float = (n_mag == 9'd0) ? {t[31], 31'd0} : {t[31], 8'd127 + {4'd0, n_msb}, n_shifted[22:0]};

  // 3. r = (x - n * LN2_HI) - n * LN2_LO.
  wire [31:0] n_hi, n_lo, r_hi, r;
  fp32_mul u_n_hi (.a(n_float), .b(`DNPU_EXP_LN2_HI), .y(n_hi));
  fp32_add u_r_hi (.a(x), .b({~n_hi[31], n_hi[30:0]}), .y(r_hi));
  fp32_mul u_n_lo (.a(n_float), .b(`DNPU_EXP_LN2_LO), .y(n_lo));
  fp32_add u_r (.a(r_hi), .b({~n_lo[31], n_lo[30:0]}), .y(r));

  // 4. Horner: p[DEGREE] = c_DEGREE; p[k] = p[k+1] * r + c_k.
  wire [32*(DEGREE+1)-1:0] p;  // p_k in bits [32k+31:32k]
  assign p[32*DEGREE +: 32] = COEFFS[32*DEGREE +: 32];
  genvar k;
  generate
    for (k = DEGREE - 1; k >= 0; k = k - 1) begin : horner
      wire [31:0] pr;
      fp32_mul u_pr (.a(p[32*(k+1) +: 32]), .b(r), .y(pr));
      fp32_add u_pc (.a(pr), .b(COEFFS[32*k +: 32]), .y(p[32*k +: 32]));
    end
  endgenerate

  // 5. Scale by 2^n.
  wire [31:0] scaled;
  fp32_scale_pow2 u_scale (.a(p[31:0]), .n(n), .y(scaled));
  assign y = is_nan ? `DNPU_FP32_CANONICAL_NAN : scaled;
endmodule
`default_nettype wire
