// dma_engine: the DMA unit. Executes the ISA's DMA instructions (dld.* / dst.* / dldkv.* / dstkv.v
// and the no-clip stores dstnc.* / dstkvnc.v) popped from its issue queue, bit for bit as
// npu/sim/functional/dma.py: `rows` rows of `cols` elements, DRAM row r at dram + r * dstride
// bytes in the DRAM format `fmt` (npu.hw.rows layout), SRAM row r at element sram + r * sstride
// (kv transfers: sstride = cols, and every column scaled by the vector-SRAM row at `scale`).
// Format conversion is dma_codec's (one block of BLOCK elements per pass).
//
// Command: the issue-queue entry of a DMA instruction (mnemonic index, word for the fmt field,
// the INT operands read at issue in the decoder's slot order sram, rows, cols, dstride,
// sstride | scale, and the dram address register). Faults (npu.rtl.core.CORE_FAULTS, checked in
// the functional simulator's order before any access): dma_format, dma_shape, dma_alignment,
// dram_range, dma_sram_range; the instruction is dropped and fault_valid pulses with the code.
//
// SRAM port (the top routes it to the target SRAM; the DMA has priority there): sram_enable with
// target, element address and a lane mask of up to BLOCK consecutive elements, 32-bit lanes
// (float32 bits; int32 words; a bf16 SRAM stores the upper half); an access happens in a cycle
// with sram_grant, and read data come the cycle after (row_sram latency 1).
// DRAM port: a request (valid / ready) carries write, byte address, byte count (at most 4 x BLOCK)
// and, for writes, the bytes (byte j at [8j +: 8]); every request gets one response, in order
// (reads: the bytes, zero above the count). Writes are posted: the engine counts them and is
// busy until every response is back.
//
// Sequencing (the cycles are in docs/rtl.md):
//   load (not kv), streamed: a DRAM read request per cycle for the next block, up to STREAM_DEPTH
//     in flight; each response goes straight into the codec and, 2 cycles later, into the SRAM
//     (the DMA's SRAM port has priority in npu_top, so the write never waits);
//   kv load, one block at a time: DRAM read -> response -> scale row read -> codec -> SRAM write
//     (the scale row and the data share the vector SRAM port);
//   store (not kv), streamed: an SRAM read per cycle for the next block; the data go into the
//     codec the cycle after and 2 cycles later into an output FIFO of OUT_DEPTH blocks that feeds
//     the DRAM write requests (posted); reads stop while the blocks in flight could overfill it;
//   kv store, one block at a time: scale row read -> SRAM read -> codec -> DRAM write (posted).
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_core.vh"
`include "dnpu_mx.vh"
module dma_engine #(
    parameter BLOCK = 32,               // NPUConfig.mx_block
    parameter VECTOR_BITS = 16,         // vector SRAM element: 16 (bf16) or 32 (fp32)
    parameter VECTOR_WORDS = 1024,      // elements of each SRAM
    parameter MATRIX_WORDS = 1024,
    parameter FP_WORDS = 256,
    parameter INT_WORDS = 256,
    parameter DRAM_BYTES = 1048576,     // the DRAM image the functional simulator checks against
    parameter STREAM_DEPTH = 64,        // streamed loads: DRAM reads in flight (covers the DRAM latency)
    parameter BYTE_COUNT_BITS = $clog2(4 * BLOCK) + 1
) (
    input  wire                          clk,
    input  wire                          reset,
    // command (from the DMA issue queue)
    input  wire                          command_valid,
    output wire                          command_ready,
    input  wire [`DNPU_MNEMONIC_BITS-1:0] command_mnemonic,
    /* verilator lint_off UNUSEDSIGNAL */  // only the fmt field
    input  wire [31:0]                   command_word,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [32*`DNPU_INT_READ_SLOTS-1:0] command_int_operands,
    input  wire [63:0]                   command_address_operand,
    output wire                          busy,
    output reg                           fault_valid,
    output reg  [`DNPU_FAULT_BITS-1:0]   fault_code,
    // SRAM port
    output reg                           sram_enable,
    output reg                           sram_write,
    output reg  [1:0]                    sram_target,    // 0 vector, 1 matrix, 2 FP, 3 INT
    output reg  [31:0]                   sram_address,
    output reg  [BLOCK-1:0]              sram_lane_enable,
    output reg  [32*BLOCK-1:0]           sram_write_data,
    input  wire                          sram_grant,
    input  wire [32*BLOCK-1:0]           sram_read_data,
    // DRAM port
    output reg                           dram_request_valid,
    input  wire                          dram_request_ready,
    output reg                           dram_request_write,
    output reg  [63:0]                   dram_request_address,
    output reg  [BYTE_COUNT_BITS-1:0]    dram_request_bytes,
    output reg  [32*BLOCK-1:0]           dram_request_data,
    input  wire                          dram_response_valid,
    input  wire [32*BLOCK-1:0]           dram_response_data
);
  localparam [1:0] TARGET_VECTOR = 2'd0, TARGET_MATRIX = 2'd1, TARGET_FP = 2'd2, TARGET_INT = 2'd3;
  localparam [2:0] FMT_FP32 = `DNPU_FMT_FP32, FMT_BF16 = `DNPU_FMT_BF16, FMT_INT32 = `DNPU_FMT_INT32;
  localparam [2:0] FMT_MXINT8 = `DNPU_FMT_MXINT8, FMT_MXINT4 = `DNPU_FMT_MXINT4;
  localparam [2:0] FMT_MXFP8_E4M3 = `DNPU_FMT_MXFP8_E4M3, FMT_MXFP8_E5M2 = `DNPU_FMT_MXFP8_E5M2;
  localparam [2:0] FMT_MXFP4 = `DNPU_FMT_MXFP4;
  localparam integer BLOCK_BITS = $clog2(BLOCK);

  localparam [3:0] IDLE = 4'd0, CHECK = 4'd1, SCALE_READ = 4'd2, SCALE_WAIT = 4'd3, SRAM_READ = 4'd4,
                   SRAM_WAIT = 4'd5, DRAM_READ = 4'd6, DRAM_WAIT = 4'd7, CODEC_IN = 4'd8,
                   CODEC_WAIT = 4'd9, SRAM_WRITE = 4'd10, DRAM_WRITE = 4'd11, NEXT = 4'd12, DRAIN = 4'd13,
                   STREAM = 4'd14, STORE_STREAM = 4'd15;
  reg [3:0] state;

  // ---- the instruction, decoded at accept ------------------------------------------------
  reg        store, kv, no_clip;
  reg [1:0]  target;
  reg [2:0]  fmt;
  reg [63:0] dram_base;
  reg signed [31:0] sram_first, rows, cols, dstride, sstride, scale_at;

  wire is_dst_v = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DST_V;
  wire is_dld_m = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DLD_M;
  wire is_dld_f = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DLD_F;
  wire is_dst_f = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DST_F;
  wire is_dld_i = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DLD_I;
  wire is_dst_i = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DST_I;
  wire is_dldkv_v = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DLDKV_V;
  wire is_dldkv_m = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DLDKV_M;
  wire is_dstkv_v = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DSTKV_V;
  wire is_dstnc_v = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DSTNC_V;
  wire is_dstnc_f = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DSTNC_F;
  wire is_dstkvnc_v = command_mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_DSTKVNC_V;
  wire command_store = is_dst_v | is_dst_f | is_dst_i | is_dstkv_v | is_dstnc_v | is_dstnc_f | is_dstkvnc_v;
  wire command_kv = is_dldkv_v | is_dldkv_m | is_dstkv_v | is_dstkvnc_v;
  wire command_no_clip = is_dstnc_v | is_dstnc_f | is_dstkvnc_v;
  wire [1:0] command_target = (is_dld_m | is_dldkv_m) ? TARGET_MATRIX
                            : (is_dld_f | is_dst_f | is_dstnc_f) ? TARGET_FP
                            : (is_dld_i | is_dst_i) ? TARGET_INT : TARGET_VECTOR;

  assign command_ready = state == IDLE;
  assign busy = state != IDLE;

  // ---- format properties -----------------------------------------------------------------
  wire is_mx = !(fmt == FMT_FP32 || fmt == FMT_BF16 || fmt == FMT_INT32);
  wire [2:0] plain_bytes = fmt == FMT_BF16 ? 3'd2 : 3'd4;
  wire [3:0] mx_bits = (fmt == FMT_MXINT4) ? `DNPU_MX_MXINT4_BITS
                     : (fmt == FMT_MXFP4) ? `DNPU_MX_MXFP4_BITS
                     : (fmt == FMT_MXINT8) ? `DNPU_MX_MXINT8_BITS
                     : (fmt == FMT_MXFP8_E4M3) ? `DNPU_MX_MXFP8_E4M3_BITS
                     : (fmt == FMT_MXFP8_E5M2) ? `DNPU_MX_MXFP8_E5M2_BITS : 4'd8;
  // bytes of one whole block: 1 scale byte + BLOCK codes (MX), or BLOCK elements
  wire [BYTE_COUNT_BITS-1:0] block_bytes = is_mx ? BYTE_COUNT_BITS'(1 + BLOCK * mx_bits / 8)
                                                 : BYTE_COUNT_BITS'(BLOCK * plain_bytes);
  wire signed [65:0] row_bytes = is_mx ? 66'(cols >>> BLOCK_BITS) * 66'(block_bytes)
                                       : 66'(cols) * 66'(plain_bytes);
  wire bf16_sram = target == TARGET_MATRIX || (target == TARGET_VECTOR && VECTOR_BITS == 16);

  // ---- checks (the functional simulator's order) -----------------------------------------
  wire format_fault = (fmt == FMT_INT32) != (target == TARGET_INT);
  wire negative = rows < 0 || cols < 0;
  wire empty = rows == 0 || cols == 0;
  wire ragged_mx = is_mx && cols[BLOCK_BITS-1:0] != {BLOCK_BITS{1'b0}};
  wire [2:0] align = is_mx ? 3'd1 : plain_bytes;
  wire misaligned = ((dram_base[2:0] | dstride[2:0]) & (align - 3'd1)) != 3'd0;
  wire signed [65:0] dram_extent = 66'(dstride) * 66'(rows - 1);
  wire signed [65:0] dram_low = $signed({2'b00, dram_base}) + (dram_extent < 0 ? dram_extent : 66'sd0);
  wire signed [65:0] dram_high = $signed({2'b00, dram_base}) + (dram_extent > 0 ? dram_extent : 66'sd0) + row_bytes;
  wire dram_outside = dram_low < 0 || dram_high > 66'(DRAM_BYTES);
  wire signed [65:0] sram_extent = 66'(sstride) * 66'(rows - 1);
  wire signed [65:0] sram_low = 66'(sram_first) + (sram_extent < 0 ? sram_extent : 66'sd0);
  wire signed [65:0] sram_high = 66'(sram_first) + (sram_extent > 0 ? sram_extent : 66'sd0) + 66'(cols);
  wire [31:0] target_words = target == TARGET_VECTOR ? VECTOR_WORDS : target == TARGET_MATRIX ? MATRIX_WORDS
                           : target == TARGET_FP ? FP_WORDS : INT_WORDS;
  wire sram_outside = sram_low < 0 || sram_high > 66'(target_words);
  wire signed [33:0] scale_high = 34'(scale_at) + 34'(cols);
  wire scale_outside = kv && (scale_at < 0 || scale_high > 34'(VECTOR_WORDS));

  // ---- the walk: row, block within the row -----------------------------------------------
  reg [31:0] row, block_column;         // row index, first column of the block
  reg [63:0] dram_row;                  // dram_base + row * dstride
  reg [31:0] sram_row;                  // sram_first + row * sstride
  reg [63:0] dram_block;                // this block's DRAM address
  reg [31:0] outstanding;               // DRAM requests without a response
  wire [31:0] columns_left = cols - block_column;
  wire full_block = columns_left >= BLOCK;
  wire [BLOCK_BITS:0] block_elements = full_block ? (BLOCK_BITS + 1)'(BLOCK) : columns_left[BLOCK_BITS:0];
  wire [BLOCK-1:0] lane_mask = full_block ? {BLOCK{1'b1}} : ~({BLOCK{1'b1}} << block_elements);
  wire [BYTE_COUNT_BITS-1:0] request_bytes = is_mx ? block_bytes
                                           : BYTE_COUNT_BITS'(block_elements) * BYTE_COUNT_BITS'(plain_bytes);
  wire last_block = columns_left <= BLOCK;
  wire last_row = row == rows - 1;

  // ---- codec -----------------------------------------------------------------------------
  reg  [32*BLOCK-1:0] data;      // the block in flight: DRAM bytes (load) or SRAM values (store)
  reg  [32*BLOCK-1:0] scale;     // kv: the scale elements of these columns, float32 bits
  wire codec_valid, codec_store;
  wire [32*BLOCK-1:0] codec_dram, codec_sram;
  // streamed loads: where each block in flight goes (in request order = response order), and
  // the same for the two blocks inside the codec
  localparam STREAM_BITS = $clog2(STREAM_DEPTH);
  reg [31:0] stream_address [0:STREAM_DEPTH-1];
  reg [BLOCK-1:0] stream_lanes [0:STREAM_DEPTH-1];
  reg [STREAM_BITS-1:0] stream_head, stream_tail;
  reg [STREAM_BITS:0] stream_count;
  reg walk_done, stage1_valid, stage2_valid;
  reg [31:0] stage1_address, stage2_address;
  reg [BLOCK-1:0] stage1_lanes, stage2_lanes;
  wire streaming = state == STREAM;
  wire stream_issue = streaming && !walk_done && stream_count != STREAM_DEPTH[STREAM_BITS:0];
  wire stream_response = streaming && dram_response_valid;

  // streamed stores: the block read last cycle (s0), in the codec (s1, s2), then the output FIFO
  localparam OUT_DEPTH = 4;
  wire store_streaming = state == STORE_STREAM;
  reg s0_valid, s1_valid, s2_valid;
  reg [63:0] s0_address, s1_address, s2_address;
  reg [BYTE_COUNT_BITS-1:0] s0_bytes, s1_bytes, s2_bytes;
  reg [32*BLOCK-1:0] out_data [0:OUT_DEPTH-1];
  reg [63:0] out_address [0:OUT_DEPTH-1];
  reg [BYTE_COUNT_BITS-1:0] out_bytes [0:OUT_DEPTH-1];
  reg [1:0] out_head, out_tail;
  reg [2:0] out_count;
  wire [2:0] blocks_in_flight = out_count + {2'b00, s0_valid} + {2'b00, s1_valid} + {2'b00, s2_valid};
  wire store_issue = store_streaming && !walk_done && blocks_in_flight < OUT_DEPTH;
  wire store_request = store_streaming && out_count != 3'd0;

  dma_codec #(.BLOCK(BLOCK)) u_codec (
      .clk(clk), .rst(reset), .in_valid(state == CODEC_IN || stream_response || s0_valid), .store(store),
      .fmt(fmt), .no_clip(no_clip), .kv(kv), .bf16_sram(bf16_sram),
      .sram_in(store_streaming ? sram_read_data : data), .scale_in(scale),
      .dram_in(streaming ? dram_response_data : data),
      .out_valid(codec_valid), .out_store(codec_store), .dram_out(codec_dram), .sram_out(codec_sram));

  // ---- outputs of each state -------------------------------------------------------------
  always @* begin
    sram_enable = 1'b0;
    sram_write = 1'b0;
    sram_target = target;
    sram_address = sram_row + block_column;
    sram_lane_enable = lane_mask;
    sram_write_data = data;
    dram_request_valid = 1'b0;
    dram_request_write = store;
    dram_request_address = dram_block;
    dram_request_bytes = request_bytes;
    dram_request_data = data;
    case (state)
      SCALE_READ: begin
        sram_enable = 1'b1;
        sram_target = TARGET_VECTOR;
        sram_address = scale_at + block_column;
      end
      SRAM_READ: sram_enable = 1'b1;
      SRAM_WRITE: begin
        sram_enable = 1'b1;
        sram_write = 1'b1;
      end
      DRAM_READ, DRAM_WRITE: dram_request_valid = 1'b1;
      STREAM: begin
        dram_request_valid = stream_issue;
        if (stage2_valid) begin   // the codec's output of the block two cycles ago
          sram_enable = 1'b1;
          sram_write = 1'b1;
          sram_address = stage2_address;
          sram_lane_enable = stage2_lanes;
          sram_write_data = codec_sram;
        end
      end
      STORE_STREAM: begin
        sram_enable = store_issue;
        dram_request_valid = store_request;
        dram_request_address = out_address[out_head];
        dram_request_bytes = out_bytes[out_head];
        dram_request_data = out_data[out_head];
      end
      default: ;
    endcase
  end

  wire request_accepted = dram_request_valid && dram_request_ready;
  always @(posedge clk) begin
    fault_valid <= 1'b0;
    s0_valid <= store_issue && sram_grant;
    s1_valid <= s0_valid;
    s2_valid <= s1_valid;
    s1_address <= s0_address;
    s1_bytes <= s0_bytes;
    s2_address <= s1_address;
    s2_bytes <= s1_bytes;
    stage1_valid <= stream_response;
    stage2_valid <= stage1_valid;
    stage2_address <= stage1_address;
    stage2_lanes <= stage1_lanes;
    if (reset) begin
      state <= IDLE;
      outstanding <= 32'd0;
      stage1_valid <= 1'b0;
      stage2_valid <= 1'b0;
      s0_valid <= 1'b0;
      s1_valid <= 1'b0;
      s2_valid <= 1'b0;
      fault_code <= `DNPU_FAULT_NONE;
    end else begin
      outstanding <= outstanding + (request_accepted ? 32'd1 : 32'd0) - (dram_response_valid ? 32'd1 : 32'd0);
      case (state)
        IDLE: if (command_valid) begin
          store <= command_store;
          kv <= command_kv;
          no_clip <= command_no_clip;
          target <= command_target;
          fmt <= command_word[`DNPU_DLD_V_FMT_LSB +: 3];
          dram_base <= command_address_operand;
          sram_first <= command_int_operands[0 +: 32];
          rows <= command_int_operands[32 +: 32];
          cols <= command_int_operands[64 +: 32];
          dstride <= command_int_operands[96 +: 32];
          sstride <= command_kv ? command_int_operands[64 +: 32] : command_int_operands[128 +: 32];
          scale_at <= command_int_operands[128 +: 32];
          state <= CHECK;
        end
        CHECK: begin
          row <= 32'd0;
          block_column <= 32'd0;
          dram_row <= dram_base;
          dram_block <= dram_base;
          sram_row <= sram_first;
          if (format_fault || negative || (!empty && (ragged_mx || misaligned || dram_outside || sram_outside
                                                      || scale_outside))) begin
            fault_valid <= 1'b1;
            fault_code <= format_fault ? `DNPU_FAULT_DMA_FORMAT
                        : (negative || ragged_mx) ? `DNPU_FAULT_DMA_SHAPE
                        : misaligned ? `DNPU_FAULT_DMA_ALIGNMENT
                        : dram_outside ? `DNPU_FAULT_DRAM_RANGE : `DNPU_FAULT_DMA_SRAM_RANGE;
            state <= IDLE;
          end else if (empty) state <= IDLE;
          else if (!store && !kv) begin
            walk_done <= 1'b0;
            stream_head <= {STREAM_BITS{1'b0}};
            stream_tail <= {STREAM_BITS{1'b0}};
            stream_count <= {(STREAM_BITS+1){1'b0}};
            state <= STREAM;
          end else if (!kv) begin
            walk_done <= 1'b0;
            out_head <= 2'd0;
            out_tail <= 2'd0;
            out_count <= 3'd0;
            state <= STORE_STREAM;
          end else state <= SCALE_READ;
        end
        SCALE_READ: if (sram_grant) state <= SCALE_WAIT;
        SCALE_WAIT: begin
          scale <= sram_read_data;
          state <= store ? SRAM_READ : DRAM_READ;
        end
        SRAM_READ: if (sram_grant) state <= SRAM_WAIT;
        SRAM_WAIT: begin
          data <= sram_read_data;
          state <= CODEC_IN;
        end
        DRAM_READ: if (dram_request_ready) state <= DRAM_WAIT;
        DRAM_WAIT: if (dram_response_valid) begin
          data <= dram_response_data;
          state <= CODEC_IN;
        end
        CODEC_IN: state <= CODEC_WAIT;
        CODEC_WAIT: if (codec_valid) begin
          data <= codec_store ? codec_dram : codec_sram;
          state <= codec_store ? DRAM_WRITE : SRAM_WRITE;
        end
        SRAM_WRITE: if (sram_grant) state <= NEXT;
        DRAM_WRITE: if (dram_request_ready) state <= NEXT;
        NEXT: begin
          if (last_block) begin
            block_column <= 32'd0;
            row <= row + 32'd1;
            dram_row <= dram_row + {{32{dstride[31]}}, dstride};
            dram_block <= dram_row + {{32{dstride[31]}}, dstride};
            sram_row <= sram_row + sstride;
          end else begin
            block_column <= block_column + BLOCK;
            dram_block <= dram_block + {{(64-BYTE_COUNT_BITS){1'b0}}, block_bytes};
          end
          if (last_block && last_row) state <= DRAIN;
          else if (kv) state <= SCALE_READ;
          else state <= store ? SRAM_READ : DRAM_READ;
        end
        STREAM: begin
          if (stream_issue && dram_request_ready) begin
            stream_address[stream_tail] <= sram_row + block_column;
            stream_lanes[stream_tail] <= lane_mask;
            stream_tail <= stream_tail + 1'b1;
            if (last_block) begin
              block_column <= 32'd0;
              row <= row + 32'd1;
              dram_row <= dram_row + {{32{dstride[31]}}, dstride};
              dram_block <= dram_row + {{32{dstride[31]}}, dstride};
              sram_row <= sram_row + sstride;
            end else begin
              block_column <= block_column + BLOCK;
              dram_block <= dram_block + {{(64-BYTE_COUNT_BITS){1'b0}}, block_bytes};
            end
            if (last_block && last_row) walk_done <= 1'b1;
          end
          if (stream_response) begin
            stage1_address <= stream_address[stream_head];
            stage1_lanes <= stream_lanes[stream_head];
            stream_head <= stream_head + 1'b1;
          end
          stream_count <= stream_count + {{STREAM_BITS{1'b0}}, stream_issue && dram_request_ready}
                          - {{STREAM_BITS{1'b0}}, stream_response};
          if (walk_done && stream_count == {(STREAM_BITS+1){1'b0}} && !stage1_valid && !stage2_valid
              && !stream_response)
            state <= IDLE;
        end
        STORE_STREAM: begin
          if (store_issue && sram_grant) begin
            s0_address <= dram_block;
            s0_bytes <= request_bytes;
            if (last_block) begin
              block_column <= 32'd0;
              row <= row + 32'd1;
              dram_row <= dram_row + {{32{dstride[31]}}, dstride};
              dram_block <= dram_row + {{32{dstride[31]}}, dstride};
              sram_row <= sram_row + sstride;
            end else begin
              block_column <= block_column + BLOCK;
              dram_block <= dram_block + {{(64-BYTE_COUNT_BITS){1'b0}}, block_bytes};
            end
            if (last_block && last_row) walk_done <= 1'b1;
          end
          if (s2_valid) begin   // codec_valid: the block read three cycles ago, encoded
            out_data[out_tail] <= codec_dram;
            out_address[out_tail] <= s2_address;
            out_bytes[out_tail] <= s2_bytes;
            out_tail <= out_tail + 2'd1;
          end
          if (store_request && dram_request_ready) out_head <= out_head + 2'd1;
          out_count <= out_count + {2'b00, s2_valid} - {2'b00, store_request && dram_request_ready};
          if (walk_done && !s0_valid && !s1_valid && !s2_valid && out_count == 3'd0) state <= DRAIN;
        end
        DRAIN: if (outstanding == 32'd0 || (outstanding == 32'd1 && dram_response_valid)) state <= IDLE;
        default: state <= IDLE;
      endcase
    end
  end
endmodule
`default_nettype wire
