// mx_block_encoder: one MX block of BLOCK float32 values -> its DRAM bytes in one element format
// (npu.hw.rows.encode_rows): byte 0 the E8M0 scale, then the BLOCK element codes packed densely,
// first code in the low bits (code i at bits [8 + BITS*i +: BITS]). The shared exponent follows
// the MX scale rule: OCP, or no-clip when `no_clip` is set (mx_shared_exponent); a block holding
// NaN or inf gets the NaN scale 0xFF and zero elements. The block-wide amax comes from
// mx_block_max, computed once for all formats. Combinational (latency 0 cycles).
`default_nettype none
`include "dnpu_mx.vh"
// Parameter defaults: the MXINT8 element format.
module mx_block_encoder #(
    parameter BLOCK = 32,
    parameter IS_INT = `DNPU_MX_MXINT8_IS_INT,
    parameter BITS = `DNPU_MX_MXINT8_BITS,
    parameter MANTISSA_BITS = `DNPU_MX_MXINT8_MANTISSA_BITS,
    parameter EXPONENT_BIAS = `DNPU_MX_MXINT8_EXPONENT_BIAS,
    parameter FRACTION_BITS = `DNPU_MX_MXINT8_FRACTION_BITS,
    parameter EMAX = `DNPU_MX_MXINT8_EMAX,
    parameter MAX_MAGNITUDE = `DNPU_MX_MXINT8_MAX_MAGNITUDE,
    parameter NO_CLIP_FRACTION = `DNPU_MX_MXINT8_NO_CLIP_FRACTION
) (
    input  wire [32*BLOCK-1:0]     values,
    input  wire                    special,
    input  wire                    zero,
    input  wire signed [9:0]       amax_log2,
    input  wire [22:0]             amax_fraction,
    input  wire                    no_clip,
    output wire [8+BITS*BLOCK-1:0] block_bytes
);
  wire signed [8:0] shared_exp;
  mx_shared_exponent #(.EMAX(EMAX), .NO_CLIP_FRACTION(NO_CLIP_FRACTION)) u_exponent (
      .zero(zero), .amax_log2(amax_log2), .amax_fraction(amax_fraction), .no_clip(no_clip),
      .shared_exp(shared_exp));
  wire [8:0] biased = shared_exp + 9'sd127;
  wire [BITS*BLOCK-1:0] codes;
  genvar i;
  generate
    for (i = 0; i < BLOCK; i = i + 1) begin : g_lane
      mx_element_encode #(
          .IS_INT(IS_INT), .BITS(BITS), .MANTISSA_BITS(MANTISSA_BITS), .EXPONENT_BIAS(EXPONENT_BIAS),
          .FRACTION_BITS(FRACTION_BITS), .MAX_MAGNITUDE(MAX_MAGNITUDE)
      ) u_element (.value(values[32*i +: 32]), .shared_exp(shared_exp), .code(codes[BITS*i +: BITS]));
    end
  endgenerate
  assign block_bytes = special ? {{(BITS*BLOCK){1'b0}}, `DNPU_E8M0_NAN} : {codes, biased[7:0]};
  wire unused_ok = &{1'b0, biased[8]};
endmodule
`default_nettype wire
