// matrix_sequencer: the matrix unit of npu_top around matrix_unit. A matrix instruction popped
// from its issue queue goes through three decoupled stages, in order:
//   command (C): checks the operands (npu/sim/functional/matrix.py: the accumulator exists, the
//     BLEN activation / destination rows first + b * stride + [0, MLEN) lie in the vector SRAM,
//     the MLEN x MLEN weight tile lies in the matrix SRAM and starts on a row of MLEN); a tile op
//     whose weight tile is not the one the array holds loads it here (MLEN / WROWS matrix SRAM
//     reads, one per cycle, each sent as a w_valid beat the cycle after; w_transpose for mmt /
//     mmta) into the array's shadow buffer, while the op before it still streams its rows;
//     an `mwb` runs here once every earlier row has entered the array: it starts the write-back,
//     collects the BLEN rows matrix_unit returns and writes them (MLEN / VLEN accesses a row);
//   feed (F): reads the op's BLEN activation rows, one vector SRAM access per cycle;
//   arrival: a row's last piece goes to matrix_unit the cycle after its read, straight from the
//     SRAM (a one-row hold register takes it when the unit is not ready).
// So back-to-back tile ops stream one activation row per cycle, as the cycle simulator's model
// (npu.sim.cost.latency: occupancy max(BLEN, feed), weights double-buffered and loaded ahead).
// Tile reuse: the loaded tile (address, transposed or not) is kept while the DMA writes no
// element of it (dma_matrix_write / dma_matrix_address, DMA_BLOCK elements a write); a tile op
// on the same tile skips the load (ISA rule 4: the program waits for the DMA before using a
// tile it loads). A new tile's last beat waits until every earlier op has sent its first row
// (matrix_unit binds an op to the tile current at its first row).
// After a tile op's last row the unit stays busy for 2 * MLEN cycles: matrix_unit adds that row's
// last column into the accumulator 2 * MLEN cycles after taking it, so `wait matrix` ends the
// cycle the whole result is visible.
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
    parameter MATRIX_LANES = WROWS * MLEN,
    parameter DMA_BLOCK = 8
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
    output wire                          matrix_request,
    output wire [31:0]                   matrix_address,
    input  wire                          matrix_grant,
    input  wire [16*MATRIX_LANES-1:0]    matrix_read_data,
    input  wire                          dma_matrix_write,
    input  wire [31:0]                   dma_matrix_address
);
  localparam ACC_BITS = (ACCUMULATORS > 1) ? $clog2(ACCUMULATORS) : 1;
  localparam ROW_BITS = (BLEN > 1) ? $clog2(BLEN) : 1;
  localparam PIECES = MLEN / VLEN;              // vector SRAM accesses per tile row
  localparam BEATS = MLEN / WROWS;              // weight-load beats per tile
  localparam ROW = VLEN * VEC_BITS;             // bits of one vector SRAM access
  localparam [2:0] FRESH = 3'd0, LOAD = 3'd1, READY = 3'd2, WB_START = 3'd3, WB_COLLECT = 3'd4, WB_WRITE = 3'd5;

  // ---- command stage ------------------------------------------------------------------------
  reg c_valid;
  reg [2:0] c_phase;
  reg [`DNPU_MNEMONIC_BITS-1:0] mnemonic;
  /* verilator lint_off UNUSEDSIGNAL */  // the acc field
  reg [31:0] word;
  /* verilator lint_on UNUSEDSIGNAL */
  reg signed [31:0] first, stride, weight_at;
  assign command_ready = !c_valid;

  wire is_mm = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MM;
  wire is_mma = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMA;
  wire is_mmt = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMT;
  wire is_mmta = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MMTA;
  wire is_mwb = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_MWB;
  wire tile_op = is_mm | is_mma | is_mmt | is_mmta;
  wire transposed = is_mmt | is_mmta;
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
  wire check_fault = missing_accumulator || rows_outside || (tile_op && (weight_outside || weight_misaligned));

  // ---- the tile the array holds (tile reuse) ---------------------------------------------
  reg tile_valid, tile_transposed;
  reg signed [31:0] tile_at;
  wire signed [33:0] dma_at = 34'(dma_matrix_address);
  wire dma_hits_tile = dma_matrix_write && dma_at < 34'(tile_at) + 34'(MLEN * MLEN)
                       && dma_at + 34'(DMA_BLOCK) > 34'(tile_at);
  wire tile_matches = tile_valid && tile_at == weight_at && tile_transposed == transposed;

  // ---- weight load: a read per cycle, the beat the cycle after -----------------------------
  reg l_active;
  reg [31:0] l_beat;                 // next beat to read
  reg w_inflight, w_inflight_last;   // a read granted last cycle: its data is on matrix_read_data
  reg w_hold_valid, w_hold_last;
  reg [16*MATRIX_LANES-1:0] w_hold;
  reg [1:0] firsts_pending;          // ops past C whose first row the unit has not taken
  wire w_present = w_hold_valid || w_inflight;
  wire w_present_last = w_hold_valid ? w_hold_last : w_inflight_last;
  wire w_allowed = !(w_present_last && firsts_pending != 2'd0);
  wire w_valid = w_present && w_allowed;
  wire w_ready;
  wire w_fire = w_valid && w_ready;
  wire w_next_hold = w_present && !w_fire;
  assign matrix_request = l_active && l_beat < BEATS && !w_next_hold;
  assign matrix_address = weight_at + l_beat * MATRIX_LANES;
  wire load_done = w_fire && w_present_last;

  // ---- feed stage and row arrival ----------------------------------------------------------
  reg f_valid;
  reg signed [31:0] f_first, f_stride;
  reg [ACC_BITS-1:0] f_acc;
  reg f_accumulate;
  reg [31:0] f_row, f_piece;
  reg a_inflight, a_inflight_first, a_inflight_last, a_inflight_accumulate;
  reg [31:0] a_inflight_piece;
  reg [ACC_BITS-1:0] a_inflight_acc;
  reg a_hold_valid, a_hold_first, a_hold_last, a_hold_accumulate;
  reg [ACC_BITS-1:0] a_hold_acc;
  reg [MLEN*VEC_BITS-1:0] a_hold, activations;
  reg [MLEN*VEC_BITS-1:0] assembled;
  always @* begin
    assembled = activations;
    assembled[a_inflight_piece*ROW +: ROW] = vector_read_data;
  end
  wire a_complete = a_inflight && a_inflight_piece == PIECES - 1;
  wire a_valid = a_hold_valid || a_complete;
  wire a_ready;
  wire a_fire = a_valid && a_ready;
  wire a_fire_first = a_fire && (a_hold_valid ? a_hold_first : a_inflight_first);
  wire a_fire_last = a_fire && (a_hold_valid ? a_hold_last : a_inflight_last);
  wire a_next_hold = a_valid && !a_fire;
  wire f_request = f_valid && !a_next_hold;
  wire f_granted = f_request && vector_grant && !(c_valid && c_phase == WB_WRITE);
  wire f_last_request = f_row == BLEN - 1 && f_piece == PIECES - 1;
  wire f_free = !f_valid || (f_granted && f_last_request);
  wire rows_quiet = !f_valid && !a_inflight && !a_hold_valid;   // every earlier row is in the array

  // ---- matrix_unit -----------------------------------------------------------------------
  wire wb_ready, wb_out_valid;
  wire [ROW_BITS-1:0] wb_out_index;
  wire [MLEN*VEC_BITS-1:0] wb_out_row;
  wire [MLEN-1:0] unused_col_write;
  reg l_transposed;
  matrix_unit #(.MLEN(MLEN), .BLEN(BLEN), .ACCUMULATORS(ACCUMULATORS), .VEC_BITS(VEC_BITS), .WROWS(WROWS)) u_unit (
      .clk(clk), .rst(reset), .w_valid(w_valid), .w_ready(w_ready), .w_transpose(l_transposed),
      .w_rows(w_hold_valid ? w_hold : matrix_read_data), .a_valid(a_valid), .a_ready(a_ready),
      .a_accumulate(a_hold_valid ? a_hold_accumulate : a_inflight_accumulate),
      .a_acc(a_hold_valid ? a_hold_acc : a_inflight_acc), .a_row(a_hold_valid ? a_hold : assembled),
      .wb_valid(c_valid && c_phase == WB_START), .wb_ready(wb_ready), .wb_acc(acc),
      .wb_out_valid(wb_out_valid), .wb_out_index(wb_out_index), .wb_out_row(wb_out_row),
      .col_write(unused_col_write));

  // ---- vector SRAM requests: the mwb's writes, else the feed's reads -----------------------
  reg [31:0] wb_row, wb_piece;
  reg [MLEN*VEC_BITS-1:0] written [0:BLEN-1];   // mwb rows collected
  always @* begin
    if (c_valid && c_phase == WB_WRITE) begin
      vector_request = 1'b1;
      vector_write = 1'b1;
      vector_address = first + wb_row * stride + wb_piece * VLEN;
    end else begin
      vector_request = f_request;
      vector_write = 1'b0;
      vector_address = f_first + f_row * f_stride + f_piece * VLEN;
    end
    vector_write_data = written[wb_row[ROW_BITS-1:0]][wb_piece*ROW +: ROW];
  end

  reg [31:0] drain;   // cycles until the last tile op's result is in its accumulator
  assign busy = c_valid || !rows_quiet || drain != 32'd0;
  // the op in C goes to F this cycle
  wire c_to_f = c_valid && f_free && (c_phase == READY || (c_phase == LOAD && load_done)
                || (c_phase == FRESH && !check_fault && tile_op && tile_matches));

  always @(posedge clk) begin
    fault_valid <= 1'b0;
    if (reset) begin
      c_valid <= 1'b0;
      f_valid <= 1'b0;
      l_active <= 1'b0;
      w_inflight <= 1'b0;
      w_hold_valid <= 1'b0;
      a_inflight <= 1'b0;
      a_hold_valid <= 1'b0;
      firsts_pending <= 2'd0;
      tile_valid <= 1'b0;
      drain <= 32'd0;
      fault_code <= `DNPU_FAULT_NONE;
    end else begin
      if (drain != 32'd0) drain <= drain - 32'd1;
      // ---- weight beats
      w_inflight <= matrix_request && matrix_grant;
      w_inflight_last <= l_beat == BEATS - 1;
      if (matrix_request && matrix_grant) l_beat <= l_beat + 32'd1;
      if (w_next_hold && !w_hold_valid) begin
        w_hold_valid <= 1'b1;
        w_hold <= matrix_read_data;
        w_hold_last <= w_inflight_last;
      end else if (w_fire) w_hold_valid <= 1'b0;
      if (load_done) begin
        l_active <= 1'b0;
        tile_valid <= 1'b1;
      end
      if (dma_hits_tile) tile_valid <= 1'b0;
      // ---- row arrival
      a_inflight <= f_granted;
      if (f_granted) begin
        a_inflight_piece <= f_piece;
        a_inflight_first <= f_row == 32'd0;
        a_inflight_last <= f_row == BLEN - 1;
        a_inflight_acc <= f_acc;
        a_inflight_accumulate <= f_accumulate;
      end
      if (a_inflight && !a_complete) activations[a_inflight_piece*ROW +: ROW] <= vector_read_data;
      if (a_next_hold && !a_hold_valid) begin
        a_hold_valid <= 1'b1;
        a_hold <= assembled;
        a_hold_first <= a_inflight_first;
        a_hold_last <= a_inflight_last;
        a_hold_acc <= a_inflight_acc;
        a_hold_accumulate <= a_inflight_accumulate;
      end else if (a_fire) a_hold_valid <= 1'b0;
      if (a_fire_last) drain <= 2 * MLEN;
      firsts_pending <= firsts_pending + {1'b0, c_to_f} - {1'b0, a_fire_first};
      // ---- feed
      if (f_granted) begin
        if (f_piece == PIECES - 1) begin
          f_piece <= 32'd0;
          f_row <= f_row + 32'd1;
        end else f_piece <= f_piece + 32'd1;
        if (f_last_request) f_valid <= 1'b0;
      end
      if (c_to_f) begin
        f_valid <= 1'b1;
        f_first <= first;
        f_stride <= stride;
        f_acc <= acc;
        f_accumulate <= is_mma | is_mmta;
        f_row <= 32'd0;
        f_piece <= 32'd0;
        c_valid <= 1'b0;
      end
      // ---- command
      if (!c_valid) begin
        if (command_valid) begin
          c_valid <= 1'b1;
          c_phase <= FRESH;
          mnemonic <= command_mnemonic;
          word <= command_word;
          first <= command_int_operands[0 +: 32];
          stride <= command_int_operands[32 +: 32];
          weight_at <= command_int_operands[64 +: 32];
        end
      end else if (!c_to_f) begin
        case (c_phase)
          FRESH: begin
            wb_row <= 32'd0;
            wb_piece <= 32'd0;
            if (check_fault) begin
              fault_valid <= 1'b1;
              fault_code <= missing_accumulator ? `DNPU_FAULT_ACCUMULATOR
                          : (rows_outside || weight_outside) ? `DNPU_FAULT_MATRIX_RANGE : `DNPU_FAULT_MATRIX_ALIGNMENT;
              c_valid <= 1'b0;
            end else if (is_mwb) begin
              if (rows_quiet) c_phase <= WB_START;
            end else if (tile_matches) c_phase <= READY;
            else begin
              c_phase <= LOAD;
              l_active <= 1'b1;
              l_beat <= 32'd0;
              l_transposed <= transposed;
              tile_valid <= 1'b0;
              tile_at <= weight_at;
              tile_transposed <= transposed;
            end
          end
          LOAD: if (load_done) c_phase <= READY;
          WB_START: if (wb_ready) c_phase <= WB_COLLECT;
          WB_COLLECT: if (wb_out_valid) begin
            written[wb_out_index] <= wb_out_row;
            if ({{(32-ROW_BITS){1'b0}}, wb_out_index} == BLEN - 1) c_phase <= WB_WRITE;
          end
          WB_WRITE: if (vector_grant) begin
            if (wb_piece == PIECES - 1) begin
              wb_piece <= 32'd0;
              wb_row <= wb_row + 32'd1;
              if (wb_row == BLEN - 1) c_valid <= 1'b0;
            end else wb_piece <= wb_piece + 32'd1;
          end
          default: ;
        endcase
      end
    end
  end
endmodule
`default_nettype wire
