// fp32_scale_pow2: y = a * 2^n for a normal float32 a by adding n to its exponent field, as
// numerics._scale_by_power_of_two does: a field of 255 or more gives signed inf, 0 or less
// gives signed zero (no subnormal results). Used by exp, reciprocal and rsqrt.
// Combinational (latency 0 cycles).
`default_nettype none
module fp32_scale_pow2 (
    input  wire [31:0] a,
    input  wire signed [9:0] n,
    output reg  [31:0] y
);
  wire signed [10:0] field = $signed({3'd0, a[30:23]}) + {n[9], n};
  always @* begin
    if (field >= 11'sd255) y = {a[31], 8'hFF, 23'd0};
    else if (field <= 11'sd0) y = {a[31], 31'd0};
    else y = {a[31], field[7:0], a[22:0]};
  end
endmodule
`default_nettype wire
