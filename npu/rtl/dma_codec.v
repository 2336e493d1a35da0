// dma_codec: the DMA unit's format conversion, one block of BLOCK elements per cycle in either
// direction, for every DRAM format of the ISA table (npu/isa/table.py DRAM_FORMATS), bit for bit
// as npu/sim/functional/dma.py, npu/hw/rows.py and npu/hw/numerics.py define it.
//
//   store = 1 (dst*, dstkv.v, and the no-clip twins dst*nc / dstkvnc.v): SRAM values -> DRAM bytes
//     kv:      values x hw_recip(scale) first (fp32_recip, fp32_mul: the smoothing of dstkv.v);
//     fp32:    the float32 bits; bf16: fp32_to_bf16 (RNE, NaN -> 0x7FC0); int32: the words as they are;
//     MX:      byte 0 the E8M0 scale, then the packed element codes (mx_block_encoder), with the
//              MX scale rule no_clip ? no-clip : OCP (numerics.mx_shared_exponent).
//   store = 0 (dld*, dldkv.*): DRAM bytes -> SRAM values
//     fp32:    the bits; bf16: bf16_to_fp32; int32: the words; MX: mx_block_decoder;
//     kv:      decoded x scale (fp32_mul: the unsmoothing of dldkv);
//     bf16_sram: the target SRAM holds bf16 (matrix SRAM; vector SRAM of a bf16 preset): the
//              result is rounded to bf16 as the SRAM write does (numerics.round_to_format).
//
// Ports. sram_in / sram_out: BLOCK float32 values (int32 words for int32), element i in bits
// [32*i +: 32]. scale_in: the BLOCK smoothing factors of these columns (kv only). dram_in /
// dram_out: the block's DRAM bytes, byte j in bits [8*j +: 8], as npu.hw.rows lays a row out:
// 4*BLOCK bytes (fp32, int32), 2*BLOCK (bf16), 1 + BLOCK*bits/8 (MX, the scale byte first); the
// bytes above a format's size are zero. A row of `cols` elements is cols / BLOCK blocks; the
// plain formats take a partial last block (unused lanes are ignored). int32 moves INT SRAM words
// only and never with kv (the DMA faults before, dma.py): the codec passes its words unchanged.
//
// Timing: a two-stage pipeline, one block per cycle, latency 2 cycles (a block presented with
// in_valid at a rising edge appears with out_valid after the next rising edge):
//   stage 1: element decode, the kv reciprocal and multiply (one multiplier per lane, shared by
//            both directions), registered;
//   stage 2: block maximum, shared exponent and element encoders of every MX format, bf16
//            rounding, the format mux, registered at the outputs.
// Synchronous reset clears the valid bits.
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_mx.vh"
module dma_codec #(
    parameter BLOCK = 32   // NPU preset mx_block: elements per MX block and per cycle
) (
    input  wire                          clk,
    input  wire                          rst,
    input  wire                          in_valid,
    input  wire                          store,
    input  wire [`DNPU_DST_V_FMT_WIDTH-1:0] fmt,
    input  wire                          no_clip,
    input  wire                          kv,
    input  wire                          bf16_sram,
    input  wire [32*BLOCK-1:0]           sram_in,
    input  wire [32*BLOCK-1:0]           scale_in,
    input  wire [32*BLOCK-1:0]           dram_in,
    output reg                           out_valid,
    output reg                           out_store,
    output reg  [32*BLOCK-1:0]           dram_out,
    output reg  [32*BLOCK-1:0]           sram_out
);
  localparam FMT_WIDTH = `DNPU_DST_V_FMT_WIDTH;
  localparam [FMT_WIDTH-1:0] FMT_FP32 = `DNPU_FMT_FP32;
  localparam [FMT_WIDTH-1:0] FMT_BF16 = `DNPU_FMT_BF16;
  localparam [FMT_WIDTH-1:0] FMT_INT32 = `DNPU_FMT_INT32;
  localparam [FMT_WIDTH-1:0] FMT_MXINT8 = `DNPU_FMT_MXINT8;
  localparam [FMT_WIDTH-1:0] FMT_MXINT4 = `DNPU_FMT_MXINT4;
  localparam [FMT_WIDTH-1:0] FMT_MXFP8_E4M3 = `DNPU_FMT_MXFP8_E4M3;
  localparam [FMT_WIDTH-1:0] FMT_MXFP8_E5M2 = `DNPU_FMT_MXFP8_E5M2;
  localparam [FMT_WIDTH-1:0] FMT_MXFP4 = `DNPU_FMT_MXFP4;
  localparam WIDTH = 32 * BLOCK;

  // ---- stage 1: decode, smoothing multiply ---------------------------------------------------

  wire [8+8*BLOCK-1:0] dram_8bit = dram_in[8+8*BLOCK-1:0];
  wire [8+4*BLOCK-1:0] dram_4bit = dram_in[8+4*BLOCK-1:0];
  wire [WIDTH-1:0] from_bf16, from_mxint8, from_mxint4, from_mxfp8_e4m3, from_mxfp8_e5m2, from_mxfp4;

  mx_block_decoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXINT8_IS_INT), .BITS(`DNPU_MX_MXINT8_BITS), .MANTISSA_BITS(`DNPU_MX_MXINT8_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXINT8_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXINT8_FRACTION_BITS), .HAS_INF(`DNPU_MX_MXINT8_HAS_INF),
      .HAS_NAN(`DNPU_MX_MXINT8_HAS_NAN)
  ) u_decode_mxint8 (.block_bytes(dram_8bit), .values(from_mxint8));
  mx_block_decoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXINT4_IS_INT), .BITS(`DNPU_MX_MXINT4_BITS), .MANTISSA_BITS(`DNPU_MX_MXINT4_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXINT4_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXINT4_FRACTION_BITS), .HAS_INF(`DNPU_MX_MXINT4_HAS_INF),
      .HAS_NAN(`DNPU_MX_MXINT4_HAS_NAN)
  ) u_decode_mxint4 (.block_bytes(dram_4bit), .values(from_mxint4));
  mx_block_decoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP8_E4M3_IS_INT), .BITS(`DNPU_MX_MXFP8_E4M3_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP8_E4M3_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP8_E4M3_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP8_E4M3_FRACTION_BITS), .HAS_INF(`DNPU_MX_MXFP8_E4M3_HAS_INF),
      .HAS_NAN(`DNPU_MX_MXFP8_E4M3_HAS_NAN)
  ) u_decode_mxfp8_e4m3 (.block_bytes(dram_8bit), .values(from_mxfp8_e4m3));
  mx_block_decoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP8_E5M2_IS_INT), .BITS(`DNPU_MX_MXFP8_E5M2_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP8_E5M2_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP8_E5M2_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP8_E5M2_FRACTION_BITS), .HAS_INF(`DNPU_MX_MXFP8_E5M2_HAS_INF),
      .HAS_NAN(`DNPU_MX_MXFP8_E5M2_HAS_NAN)
  ) u_decode_mxfp8_e5m2 (.block_bytes(dram_8bit), .values(from_mxfp8_e5m2));
  mx_block_decoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP4_IS_INT), .BITS(`DNPU_MX_MXFP4_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP4_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP4_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP4_FRACTION_BITS), .HAS_INF(`DNPU_MX_MXFP4_HAS_INF),
      .HAS_NAN(`DNPU_MX_MXFP4_HAS_NAN)
  ) u_decode_mxfp4 (.block_bytes(dram_4bit), .values(from_mxfp4));

  reg [WIDTH-1:0] decoded;
  always @* begin
    case (fmt)
      FMT_BF16: decoded = from_bf16;
      FMT_MXINT8: decoded = from_mxint8;
      FMT_MXINT4: decoded = from_mxint4;
      FMT_MXFP8_E4M3: decoded = from_mxfp8_e4m3;
      FMT_MXFP8_E5M2: decoded = from_mxfp8_e5m2;
      FMT_MXFP4: decoded = from_mxfp4;
      FMT_FP32, FMT_INT32: decoded = dram_in;  // the bits as they are
      default: decoded = {WIDTH{1'b0}};
    endcase
  end

  wire [WIDTH-1:0] scaled;
  genvar i;
  generate
    for (i = 0; i < BLOCK; i = i + 1) begin : g_stage1
      bf16_to_fp32 u_widen (.a(dram_in[16*i +: 16]), .y(from_bf16[32*i +: 32]));
      wire [31:0] reciprocal, product;
      fp32_recip u_recip (.a(scale_in[32*i +: 32]), .y(reciprocal));
      wire [31:0] operand = store ? sram_in[32*i +: 32] : decoded[32*i +: 32];
      fp32_mul u_mul (.a(operand), .b(store ? reciprocal : scale_in[32*i +: 32]), .y(product));
      assign scaled[32*i +: 32] = kv && fmt != FMT_INT32 ? product : operand;
    end
  endgenerate

  reg stage1_valid, stage1_store, stage1_no_clip, stage1_bf16_sram;
  reg [FMT_WIDTH-1:0] stage1_fmt;
  reg [WIDTH-1:0] stage1_values;
  always @(posedge clk) begin
    if (rst) stage1_valid <= 1'b0;
    else stage1_valid <= in_valid;
    stage1_store <= store;
    stage1_fmt <= fmt;
    stage1_no_clip <= no_clip;
    stage1_bf16_sram <= bf16_sram;
    stage1_values <= scaled;
  end

  // ---- stage 2: encode, bf16 rounding --------------------------------------------------------

  wire special, zero;
  wire signed [9:0] amax_log2;
  wire [22:0] amax_fraction;
  mx_block_max #(.BLOCK(BLOCK)) u_block_max (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction));

  wire [8+8*BLOCK-1:0] to_mxint8, to_mxfp8_e4m3, to_mxfp8_e5m2;
  wire [8+4*BLOCK-1:0] to_mxint4, to_mxfp4;
  mx_block_encoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXINT8_IS_INT), .BITS(`DNPU_MX_MXINT8_BITS), .MANTISSA_BITS(`DNPU_MX_MXINT8_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXINT8_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXINT8_FRACTION_BITS), .EMAX(`DNPU_MX_MXINT8_EMAX),
      .MAX_MAGNITUDE(`DNPU_MX_MXINT8_MAX_MAGNITUDE), .NO_CLIP_FRACTION(`DNPU_MX_MXINT8_NO_CLIP_FRACTION)
  ) u_encode_mxint8 (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction), .no_clip(stage1_no_clip), .block_bytes(to_mxint8));
  mx_block_encoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXINT4_IS_INT), .BITS(`DNPU_MX_MXINT4_BITS), .MANTISSA_BITS(`DNPU_MX_MXINT4_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXINT4_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXINT4_FRACTION_BITS), .EMAX(`DNPU_MX_MXINT4_EMAX),
      .MAX_MAGNITUDE(`DNPU_MX_MXINT4_MAX_MAGNITUDE), .NO_CLIP_FRACTION(`DNPU_MX_MXINT4_NO_CLIP_FRACTION)
  ) u_encode_mxint4 (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction), .no_clip(stage1_no_clip), .block_bytes(to_mxint4));
  mx_block_encoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP8_E4M3_IS_INT), .BITS(`DNPU_MX_MXFP8_E4M3_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP8_E4M3_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP8_E4M3_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP8_E4M3_FRACTION_BITS), .EMAX(`DNPU_MX_MXFP8_E4M3_EMAX),
      .MAX_MAGNITUDE(`DNPU_MX_MXFP8_E4M3_MAX_MAGNITUDE), .NO_CLIP_FRACTION(`DNPU_MX_MXFP8_E4M3_NO_CLIP_FRACTION)
  ) u_encode_mxfp8_e4m3 (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction), .no_clip(stage1_no_clip), .block_bytes(to_mxfp8_e4m3));
  mx_block_encoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP8_E5M2_IS_INT), .BITS(`DNPU_MX_MXFP8_E5M2_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP8_E5M2_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP8_E5M2_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP8_E5M2_FRACTION_BITS), .EMAX(`DNPU_MX_MXFP8_E5M2_EMAX),
      .MAX_MAGNITUDE(`DNPU_MX_MXFP8_E5M2_MAX_MAGNITUDE), .NO_CLIP_FRACTION(`DNPU_MX_MXFP8_E5M2_NO_CLIP_FRACTION)
  ) u_encode_mxfp8_e5m2 (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction), .no_clip(stage1_no_clip), .block_bytes(to_mxfp8_e5m2));
  mx_block_encoder #(
      .BLOCK(BLOCK), .IS_INT(`DNPU_MX_MXFP4_IS_INT), .BITS(`DNPU_MX_MXFP4_BITS), .MANTISSA_BITS(`DNPU_MX_MXFP4_MANTISSA_BITS),
      .EXPONENT_BIAS(`DNPU_MX_MXFP4_EXPONENT_BIAS), .FRACTION_BITS(`DNPU_MX_MXFP4_FRACTION_BITS), .EMAX(`DNPU_MX_MXFP4_EMAX),
      .MAX_MAGNITUDE(`DNPU_MX_MXFP4_MAX_MAGNITUDE), .NO_CLIP_FRACTION(`DNPU_MX_MXFP4_NO_CLIP_FRACTION)
  ) u_encode_mxfp4 (
      .values(stage1_values), .special(special), .zero(zero), .amax_log2(amax_log2),
      .amax_fraction(amax_fraction), .no_clip(stage1_no_clip), .block_bytes(to_mxfp4));

  wire [16*BLOCK-1:0] to_bf16;
  wire [WIDTH-1:0] rounded_bf16;
  generate
    for (i = 0; i < BLOCK; i = i + 1) begin : g_stage2
      fp32_to_bf16 u_narrow (.a(stage1_values[32*i +: 32]), .y(to_bf16[16*i +: 16]));
      assign rounded_bf16[32*i +: 32] = {to_bf16[16*i +: 16], 16'd0};
    end
  endgenerate

  reg [WIDTH-1:0] encoded;
  always @* begin
    case (stage1_fmt)
      FMT_BF16: encoded = {{(WIDTH - 16*BLOCK){1'b0}}, to_bf16};
      FMT_MXINT8: encoded = {{(WIDTH - 8 - 8*BLOCK){1'b0}}, to_mxint8};
      FMT_MXINT4: encoded = {{(WIDTH - 8 - 4*BLOCK){1'b0}}, to_mxint4};
      FMT_MXFP8_E4M3: encoded = {{(WIDTH - 8 - 8*BLOCK){1'b0}}, to_mxfp8_e4m3};
      FMT_MXFP8_E5M2: encoded = {{(WIDTH - 8 - 8*BLOCK){1'b0}}, to_mxfp8_e5m2};
      FMT_MXFP4: encoded = {{(WIDTH - 8 - 4*BLOCK){1'b0}}, to_mxfp4};
      FMT_FP32, FMT_INT32: encoded = stage1_values;  // the bits as they are
      default: encoded = {WIDTH{1'b0}};
    endcase
  end
  wire round_to_bf16 = stage1_bf16_sram && stage1_fmt != FMT_INT32;

  always @(posedge clk) begin
    if (rst) out_valid <= 1'b0;
    else out_valid <= stage1_valid;
    out_store <= stage1_store;
    dram_out <= stage1_store ? encoded : {WIDTH{1'b0}};
    sram_out <= stage1_store ? {WIDTH{1'b0}} : (round_to_bf16 ? rounded_bf16 : stage1_values);
  end
endmodule
`default_nettype wire
