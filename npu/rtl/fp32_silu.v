// fp32_silu: a * sigmoid(a) as numerics.hw_silu computes it, bit for bit. Combinational (latency 0).
//   x = DAZ(a); s = FTZ(hw_recip(1 + hw_exp(-x))); y = FTZ(x * s); x = -inf gives -0.
// Built from fp32_exp, fp32_add, fp32_recip and fp32_mul; a NaN input gives a NaN (fp32_mul's
// canonical one).
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_silu (
    input  wire [31:0] a,
    output reg  [31:0] y
);
  wire [31:0] x = (a[30:23] == 8'd0) ? {a[31], 31'd0} : a;
  wire [31:0] e, one_plus_e, recip, product;
  fp32_exp u_exp (.a({~x[31], x[30:0]}), .y(e));
  fp32_add u_add (.a(`DNPU_FP32_ONE), .b(e), .y(one_plus_e));
  fp32_recip u_recip (.a(one_plus_e), .y(recip));
  wire [31:0] sigmoid = (recip[30:23] == 8'd0) ? {recip[31], 31'd0} : recip;
  fp32_mul u_mul (.a(x), .b(sigmoid), .y(product));

  always @* begin
    if (x == {1'b1, 8'hFF, 23'd0}) y = {1'b1, 31'd0};
    else if (product[30:23] == 8'd0) y = {product[31], 31'd0};
    else y = product;
  end
endmodule
`default_nettype wire
