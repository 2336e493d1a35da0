// smoothing_factor: one lane of vsmscale, numerics.smoothing_factor(stats, mode) for a max|x|
// statistic m. Combinational.
//   usable = m finite and m > 0; safe = usable ? m : 1.0 (the lane's rsqrt / multiply take safe)
//   p2aNN: 2^floor(q * floor(log2 safe) / 4), q = 1..4 for NN = 25..100 (an exact power of two,
//          subnormal below 2^-126); sqrt: safe * hw_rsqrt(safe) (`sqrt_product`, computed by the
//          lane's fp32_rsqrt and fp32_mul); ident: safe; unusable m: 1.0.
// An undefined mode (above SMOOTH_IDENT) sets `bad_mode` and gives 1.0.
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_numerics.vh"
module smoothing_factor (
    input  wire [31:0] stats,
    input  wire [2:0]  mode,
    input  wire [31:0] sqrt_product,  // safe * hw_rsqrt(safe), from the lane
    output wire [31:0] safe,
    output reg  [31:0] y,
    output wire        bad_mode
);
  wire [7:0] field = stats[30:23];
  wire usable = !stats[31] && (stats[30:0] != 31'd0) && (field != 8'hFF);
  assign safe = usable ? stats : `DNPU_FP32_ONE;

  // floor(log2 safe): field - 127 for a normal value, (position of the top mantissa bit) - 149
  // for a subnormal one (safe is never zero).
  wire [4:0] mantissa_zeros;  // leading zeros of the 23-bit mantissa (plus 9 padding bits)
  wire [5:0] padded_zeros;
  leading_zero_count #(.WIDTH(32), .COUNT_BITS(6)) u_lzc (.value({safe[22:0], 9'h1FF}), .count(padded_zeros));
  assign mantissa_zeros = padded_zeros[4:0];
  wire signed [10:0] floor_log2 = (field != 8'd0) ? ($signed({3'b000, field}) - 11'sd127)
                                                  : (-11'sd127 - $signed({6'd0, mantissa_zeros}));
  reg [2:0] quarters;
  always @* begin
    case (mode)
      `DNPU_SMOOTH_P2A25: quarters = 3'd1;
      `DNPU_SMOOTH_P2A50: quarters = 3'd2;
      `DNPU_SMOOTH_P2A75: quarters = 3'd3;
      default: quarters = 3'd4;  // DNPU_SMOOTH_P2A100
    endcase
  end
  wire signed [13:0] scaled = floor_log2 * $signed({1'b0, quarters});
  wire signed [11:0] exponent = scaled[13:2];  // arithmetic shift: floor(scaled / 4), in [-149, 127]
  wire signed [11:0] biased = exponent + 12'sd127;
  wire [22:0] subnormal_mantissa = 23'd1 << (exponent + 12'sd149);
  wire [31:0] power_of_two = (biased > 12'sd0) ? {1'b0, biased[7:0], 23'd0} : {9'd0, subnormal_mantissa};

  wire unused = padded_zeros[5] | (|scaled[1:0]);

  assign bad_mode = (mode > 3'd`DNPU_SMOOTH_IDENT);
  always @* begin
    if (!usable || bad_mode) y = `DNPU_FP32_ONE;
    else if (mode == `DNPU_SMOOTH_SQRT) y = sqrt_product;
    else if (mode == `DNPU_SMOOTH_IDENT) y = safe;
    else y = power_of_two;
  end
endmodule
`default_nettype wire
