// fp32_silu: a * sigmoid(a) as numerics.hw_silu computes it, bit for bit. Combinational (latency 0).
//   x = DAZ(a); y = FTZ(x * hw_sigmoid(x)) (one fp32 multiply); x = -inf gives -0 (the limit).
// A NaN input gives a NaN (fp32_mul's canonical one).
`default_nettype none
module fp32_silu (
    input  wire [31:0] a,
    output reg  [31:0] y
);
  wire [31:0] x = (a[30:23] == 8'd0) ? {a[31], 31'd0} : a;
  wire [31:0] sigmoid, product;
  fp32_sigmoid u_sigmoid (.a(x), .y(sigmoid));
  fp32_mul u_mul (.a(x), .b(sigmoid), .y(product));

  always @* begin
    if (x == {1'b1, 8'hFF, 23'd0}) y = {1'b1, 31'd0};
    else if (product[30:23] == 8'd0) y = {product[31], 31'd0};
    else y = product;
  end
endmodule
`default_nettype wire
