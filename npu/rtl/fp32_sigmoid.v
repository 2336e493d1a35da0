// fp32_sigmoid: 1 / (1 + e^-a) as numerics.hw_sigmoid computes it, bit for bit. Combinational
// (latency 0 cycles).  x = DAZ(a); y = FTZ(hw_recip(1 + hw_exp(-x))).
// Built from fp32_exp, fp32_add and fp32_recip; -inf -> 0, +inf -> 1, NaN -> canonical NaN.
`default_nettype none
`include "dnpu_numerics.vh"
module fp32_sigmoid (
    input  wire [31:0] a,
    output wire [31:0] y
);
  wire [31:0] x = (a[30:23] == 8'd0) ? {a[31], 31'd0} : a;
  wire [31:0] e, one_plus_e, recip;
  fp32_exp u_exp (.a({~x[31], x[30:0]}), .y(e));
  fp32_add u_add (.a(`DNPU_FP32_ONE), .b(e), .y(one_plus_e));
  fp32_recip u_recip (.a(one_plus_e), .y(recip));
  assign y = (recip[30:23] == 8'd0) ? {recip[31], 31'd0} : recip;
endmodule
`default_nettype wire
