// mx_block_decoder: the DRAM bytes of one MX block (byte 0 the E8M0 scale, then BLOCK packed
// element codes, code i at bits [8 + BITS*i +: BITS]) -> BLOCK float32 values
// (npu.hw.rows.decode_rows, numerics.mx_dequantize), one mx_element_decode per element.
// Combinational (latency 0 cycles).
`default_nettype none
`include "dnpu_mx.vh"
// Parameter defaults: the MXINT8 element format.
module mx_block_decoder #(
    parameter BLOCK = 32,
    parameter IS_INT = `DNPU_MX_MXINT8_IS_INT,
    parameter BITS = `DNPU_MX_MXINT8_BITS,
    parameter MANTISSA_BITS = `DNPU_MX_MXINT8_MANTISSA_BITS,
    parameter EXPONENT_BIAS = `DNPU_MX_MXINT8_EXPONENT_BIAS,
    parameter FRACTION_BITS = `DNPU_MX_MXINT8_FRACTION_BITS,
    parameter HAS_INF = `DNPU_MX_MXINT8_HAS_INF,
    parameter HAS_NAN = `DNPU_MX_MXINT8_HAS_NAN
) (
    input  wire [8+BITS*BLOCK-1:0] block_bytes,
    output wire [32*BLOCK-1:0]     values
);
  genvar i;
  generate
    for (i = 0; i < BLOCK; i = i + 1) begin : g_lane
      mx_element_decode #(
          .IS_INT(IS_INT), .BITS(BITS), .MANTISSA_BITS(MANTISSA_BITS), .EXPONENT_BIAS(EXPONENT_BIAS),
          .FRACTION_BITS(FRACTION_BITS), .HAS_INF(HAS_INF), .HAS_NAN(HAS_NAN)
      ) u_element (.code(block_bytes[8 + BITS*i +: BITS]), .scale(block_bytes[7:0]), .value(values[32*i +: 32]));
    end
  endgenerate
endmodule
`default_nettype wire
