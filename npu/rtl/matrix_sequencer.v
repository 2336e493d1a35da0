// matrix_sequencer: the matrix unit of npu_top around matrix_unit. For each matrix instruction
// popped from its issue queue it checks the operands (npu/sim/functional/matrix.py: the
// accumulator exists, the BLEN activation / destination rows first + b * stride + [0, MLEN) lie in
// the vector SRAM, the MLEN x MLEN weight tile lies in the matrix SRAM and starts on a row of
// MLEN), then
//   mm / mma / mmt / mmta: loads the weight tile from the matrix SRAM (MLEN / WROWS beats of one
//     matrix SRAM access each, w_transpose for mmt / mmta), then reads the BLEN activation rows
//     (MLEN / VLEN vector SRAM accesses each) and hands them to matrix_unit;
//   mwb: starts the write-back, collects the BLEN rows matrix_unit returns (one per cycle, no
//     back-pressure) and writes them to the vector SRAM (MLEN / VLEN accesses a row).
// The weight tile is loaded for every tile op (the DMA may have rewritten the matrix SRAM).
// After a tile op's last row the unit stays busy for BLEN + 2 * MLEN + 2 cycles, the result
// latency of matrix_unit, so that `wait matrix` covers the accumulation.
// Faults: accumulator, matrix_range, matrix_alignment (npu.rtl.core.CORE_FAULTS).
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_core.vh"
module matrix_sequencer #(
    parameter MLEN = 8,
    parameter BLEN = 2,
    parameter ACCUMULATORS = 2,
    parameter VEC_BITS = 16,
    parameter WROWS = 2,
    parameter VLEN = 8,
    parameter VECTOR_WORDS = 1024,
    parameter MATRIX_WORDS = 2048,
    parameter MATRIX_LANES = WROWS * MLEN
) (
    input  wire                          clk,
    input  wire                          reset,
    input  wire                          command_valid,
    output wire                          command_ready,
    input  wire [`DNPU_MNEMONIC_BITS-1:0] command_mnemonic,
    input  wire [31:0]                   command_word,
    /* verilator lint_off UNUSEDSIGNAL */  // slots act / dst, stride, w
    input  wire [32*`DNPU_INT_READ_SLOTS-1:0] command_int_operands,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire                          busy,
    output reg                           fault_valid,
    output reg  [`DNPU_FAULT_BITS-1:0]   fault_code,
    output reg                           vector_request,
    output reg                           vector_write,
    output reg  [31:0]                   vector_address,
    output reg  [VEC_BITS*VLEN-1:0]      vector_write_data,
    input  wire                          vector_grant,
    input  wire [VEC_BITS*VLEN-1:0]      vector_read_data,
    output reg                           matrix_request,
    output reg  [31:0]                   matrix_address,
    input  wire                          matrix_grant,
    input  wire [16*MATRIX_LANES-1:0]    matrix_read_data
);
  localparam ACC_BITS = (ACCUMULATORS > 1) ? $clog2(ACCUMULATORS) : 1;
  localparam ROW_BITS = (BLEN > 1) ? $clog2(BLEN) : 1;
  localparam PIECES = MLEN / VLEN;              // vector SRAM accesses per tile row
  localparam BEATS = MLEN / WROWS;              // weight-load beats per tile
  localparam [3:0] IDLE = 4'd0, CHECK = 4'd1, W_READ = 4'd2, W_CAPTURE = 4'd3, W_SEND = 4'd4,
                   A_READ = 4'd5, A_CAPTURE = 4'd6, A_SEND = 4'd7, WB_START = 4'd8, WB_COLLECT = 4'd9,
                   WB_WRITE = 4'd10;
  reg [3:0] state;
  reg [`DNPU_MNEMONIC_BITS-1:0] mnemonic;
  /* verilator lint_off UNUSEDSIGNAL */  // the acc field
  reg [31:0] word;
  /* verilator lint_on UNUSEDSIGNAL */
  reg signed [31:0] first, stride, weight_at;
  assign command_ready = state == IDLE;
  reg [31:0] drain;   // cycles until the last tile op's result is in its accumulator
  assign busy = state != IDLE || drain != 32'd0;

  wire is_mm = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MM;
  wire is_mma = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMA;
  wire is_mmt = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMT;
  wire is_mmta = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMTA;
  wire is_mwb = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MWB;
  wire tile_op = is_mm | is_mma | is_mmt | is_mmta;
  wire [2:0] acc_field = is_mwb ? word[`DNPU_MWB_ACC_LSB +: 3] : word[`DNPU_MM_ACC_LSB +: 3];
  wire [ACC_BITS-1:0] acc = acc_field[ACC_BITS-1:0];

  // ---- checks ----------------------------------------------------------------------------
  wire signed [65:0] extent = 66'(stride) * 66'(BLEN - 1);
  wire signed [65:0] rows_low = 66'(first) + (extent < 0 ? extent : 66'sd0);
  wire signed [65:0] rows_high = 66'(first) + (extent > 0 ? extent : 66'sd0) + 66'(MLEN);
  wire rows_outside = rows_low < 0 || rows_high > 66'(VECTOR_WORDS);
  wire signed [33:0] weight_high = 34'(weight_at) + 34'(MLEN * MLEN);
  wire weight_outside = weight_at < 0 || weight_high > 34'(MATRIX_WORDS);
  wire weight_misaligned = (weight_at & (MLEN - 1)) != 0;
  wire missing_accumulator = {29'd0, acc_field} >= ACCUMULATORS;

  // ---- matrix_unit -----------------------------------------------------------------------
  reg  [16*MATRIX_LANES-1:0] weights;
  reg  [MLEN*VEC_BITS-1:0] activations;
  wire w_ready, a_ready, wb_ready, wb_out_valid;
  wire [ROW_BITS-1:0] wb_out_index;
  wire [MLEN*VEC_BITS-1:0] wb_out_row;
  wire [MLEN-1:0] unused_col_write;
  matrix_unit #(.MLEN(MLEN), .BLEN(BLEN), .ACCUMULATORS(ACCUMULATORS), .VEC_BITS(VEC_BITS), .WROWS(WROWS)) u_unit (
      .clk(clk), .rst(reset), .w_valid(state == W_SEND), .w_ready(w_ready), .w_transpose(is_mmt | is_mmta),
      .w_rows(weights), .a_valid(state == A_SEND), .a_ready(a_ready), .a_accumulate(is_mma | is_mmta),
      .a_acc(acc), .a_row(activations), .wb_valid(state == WB_START), .wb_ready(wb_ready), .wb_acc(acc),
      .wb_out_valid(wb_out_valid), .wb_out_index(wb_out_index), .wb_out_row(wb_out_row),
      .col_write(unused_col_write));

  // ---- walk --------------------------------------------------------------------------------
  reg [31:0] beat, row, piece;
  reg [MLEN*VEC_BITS-1:0] written [0:BLEN-1];   // mwb rows collected
  wire [31:0] row_at = first + row * stride + piece * VLEN;
  always @* begin
    vector_request = state == A_READ || state == WB_WRITE;
    vector_write = state == WB_WRITE;
    vector_address = row_at;
    vector_write_data = written[row[ROW_BITS-1:0]][piece*VLEN*VEC_BITS +: VLEN*VEC_BITS];
    matrix_request = state == W_READ;
    matrix_address = weight_at + beat * MATRIX_LANES;
  end

  always @(posedge clk) begin
    fault_valid <= 1'b0;
    if (reset) begin
      state <= IDLE;
      drain <= 32'd0;
      fault_code <= `DNPU_FAULT_NONE;
    end else begin
      if (drain != 32'd0) drain <= drain - 32'd1;
      case (state)
        IDLE: if (command_valid) begin
          mnemonic <= command_mnemonic;
          word <= command_word;
          first <= command_int_operands[0 +: 32];
          stride <= command_int_operands[32 +: 32];
          weight_at <= command_int_operands[64 +: 32];
          state <= CHECK;
        end
        CHECK: begin
          beat <= 32'd0;
          row <= 32'd0;
          piece <= 32'd0;
          if (missing_accumulator || rows_outside || (tile_op && (weight_outside || weight_misaligned))) begin
            fault_valid <= 1'b1;
            fault_code <= missing_accumulator ? `DNPU_FAULT_ACCUMULATOR
                        : (rows_outside || weight_outside) ? `DNPU_FAULT_MATRIX_RANGE : `DNPU_FAULT_MATRIX_ALIGNMENT;
            state <= IDLE;
          end else state <= tile_op ? W_READ : WB_START;
        end
        W_READ: if (matrix_grant) state <= W_CAPTURE;
        W_CAPTURE: begin
          weights <= matrix_read_data;
          state <= W_SEND;
        end
        W_SEND: if (w_ready) begin
          beat <= beat + 32'd1;
          state <= beat == BEATS - 1 ? A_READ : W_READ;
        end
        A_READ: if (vector_grant) state <= A_CAPTURE;
        A_CAPTURE: begin
          activations[piece*VLEN*VEC_BITS +: VLEN*VEC_BITS] <= vector_read_data;
          if (piece == PIECES - 1) begin
            piece <= 32'd0;
            state <= A_SEND;
          end else begin
            piece <= piece + 32'd1;
            state <= A_READ;
          end
        end
        A_SEND: if (a_ready) begin
          row <= row + 32'd1;
          if (row == BLEN - 1) begin
            drain <= BLEN + 2 * MLEN + 2;
            state <= IDLE;
          end else state <= A_READ;
        end
        WB_START: if (wb_ready) state <= WB_COLLECT;
        WB_COLLECT: if (wb_out_valid) begin
          written[wb_out_index] <= wb_out_row;
          if ({{(32-ROW_BITS){1'b0}}, wb_out_index} == BLEN - 1) state <= WB_WRITE;
        end
        WB_WRITE: if (vector_grant) begin
          if (piece == PIECES - 1) begin
            piece <= 32'd0;
            row <= row + 32'd1;
            if (row == BLEN - 1) state <= IDLE;
          end else piece <= piece + 32'd1;
        end
        default: state <= IDLE;
      endcase
    end
  end
endmodule
`default_nettype wire
