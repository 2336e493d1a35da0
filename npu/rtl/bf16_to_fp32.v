// bf16_to_fp32: widen a bf16 code to the float32 bit pattern it stands for (numerics.decode(.., "bf16")).
// bf16 is the top half of a float32, so the conversion is exact: append 16 zero bits.
// Combinational (latency 0 cycles).
`default_nettype none
module bf16_to_fp32 (
    input  wire [15:0] a,
    output wire [31:0] y
);
  assign y = {a, 16'h0000};
endmodule
`default_nettype wire
