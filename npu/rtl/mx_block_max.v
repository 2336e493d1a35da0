// mx_block_max: what the shared exponent of an MX block needs from its BLOCK float32 values
// (numerics.mx_quantize): whether any value is NaN or inf (the block then gets the NaN scale),
// and amax = max |v| as floor(log2(amax)) and the 23-bit fraction of amax normalised to
// [1, 2). Subnormal values count (the DMA encoder does not flush them): their floor(log2) is
// found with a leading-zero count. Magnitudes compare as unsigned 31-bit patterns.
// Combinational (latency 0 cycles).
`default_nettype none
module mx_block_max #(
    parameter BLOCK = 32
) (
    input  wire [32*BLOCK-1:0] values,
    output reg                 special,      // some value is NaN or +-inf
    output wire                zero,         // amax == 0
    output wire signed [9:0]   amax_log2,    // floor(log2(amax)), -149 .. 127 (amax > 0)
    output wire [22:0]         amax_fraction // amax / 2^floor(log2(amax)) - 1, in units of 2^-23
);
  reg [30:0] amax;
  integer i;
  always @* begin
    special = 1'b0;
    amax = 31'd0;
    for (i = 0; i < BLOCK; i = i + 1) begin
      if (values[32*i+23 +: 8] == 8'hFF) special = 1'b1;
      if (values[32*i +: 31] > amax) amax = values[32*i +: 31];
    end
  end
  wire normal = amax[30:23] != 8'd0;
  wire [23:0] significand = {normal, amax[22:0]};
  wire [4:0] leading_zeros;
  leading_zero_count #(.WIDTH(24), .COUNT_BITS(5)) u_lzc (.value(significand), .count(leading_zeros));
  wire [23:0] normalised = significand << leading_zeros;
  wire signed [9:0] exponent = normal ? $signed({2'b00, amax[30:23]}) - 10'sd127 : -10'sd126;
  assign zero = amax == 31'd0;
  assign amax_log2 = exponent - $signed({5'd0, leading_zeros});
  assign amax_fraction = normalised[22:0];
  wire unused_ok = &{1'b0, normalised[23]};
endmodule
`default_nettype wire
