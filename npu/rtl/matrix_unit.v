// matrix_unit: the dnpu matrix unit - systolic_array, its weight double buffer, BLEN activation
// rows per tile op, ACCUMULATORS accumulators of BLEN x MLEN fp32, and the mwb write-back.
//
// Instructions (npu/isa/table.py; functional model npu/sim/functional/matrix.py):
//   mm / mmt     ACC[acc] <- 0 + A @ W      (W^T for mmt)   a_accumulate = 0
//   mma / mmta   ACC[acc] <- ACC[acc] + A @ W  (W^T)         a_accumulate = 1
//   mwb          BLEN vector SRAM rows <- ACC[acc] rounded to the vector SRAM format
// with A = BLEN rows of MLEN activations (vector SRAM format, rounded to bf16 on entry) and W the
// MLEN x MLEN bf16 tile last loaded (w_transpose picks W^T). Element (b, n) of a tile op is
// acc + s with s = p0 + p1 + ... + p(MLEN-1) summed down column n in order k = 0..MLEN-1 and
// then added to the accumulator (or to +0): exactly numerics.hw_matmul_accumulate.
//
// Interfaces (all valid/ready: a beat moves in a cycle where both are 1 at the rising edge):
// * Weight load  w_valid / w_ready / w_transpose / w_rows: MLEN / WROWS beats, beat i carrying
//   stored tile rows i*WROWS .. i*WROWS + WROWS - 1 (row j of the beat, element c at
//   w_rows[(j*MLEN + c)*16 +: 16], bf16 as matrix SRAM holds it). The tile goes into the buffer
//   the array is not computing with; w_ready is 0 while a beat would overwrite a weight that a row
//   in flight still has to read (the array's wavefront: a row is done with PE (k, n) k + n cycles
//   after its issue), or while the op in progress uses that buffer. After the last beat the new
//   tile becomes the current one.
// * Tile op rows a_valid / a_ready / a_row / a_acc / a_accumulate: BLEN beats per op, one row of
//   MLEN activations each (element k at a_row[k*VEC_BITS +: VEC_BITS]), rows b = 0..BLEN-1 in
//   order. The op uses the tile current when its first row is accepted (a load whose last beat
//   moves in that same cycle serves the next op); a_acc and a_accumulate are taken from the
//   first row. a_ready is 1 once a tile has been loaded: rows stream at one
//   per cycle, back-to-back ops included (gaps are allowed anywhere).
// * Write-back wb_valid / wb_ready / wb_acc, then BLEN rows out on wb_out_valid / wb_out_index /
//   wb_out_row (element n at [n*VEC_BITS +: VEC_BITS]), one per cycle, no back-pressure (the
//   core reserves the vector SRAM write port). wb_ready is 0 while any accepted tile-op row
//   into wb_acc has not been added into it yet (it depends on wb_acc) or a write-back runs.
//   A tile op row accepted in the write-back's first cycle or later never overtakes its reads.
// * col_write[n]: column n of the accumulator bank is written this cycle (for scoreboards/tests).
//
// Latencies (cycles; a beat accepted in cycle A):
// * tile-op row: row b's column n is added into the accumulator in cycle A + 1 + MLEN + n and
//   visible from the next; an op's first write is 1 + MLEN cycles after its first row, its result
//   is complete BLEN + 2*MLEN cycles after its first row; a back-to-back op every BLEN cycles.
// * mwb: row b leaves in cycle A + 1 + b (valid for one cycle): BLEN + 1 cycles to the last row.
// * weight load: MLEN / WROWS beats.
//
// Synchronous reset (rst): clears the control state; the accumulators and weights keep data.
`default_nettype none
module matrix_unit #(
    parameter integer MLEN = 4,
    parameter integer BLEN = 2,
    parameter integer ACCUMULATORS = 2,
    parameter integer VEC_BITS = 16,   // vector SRAM element: 16 = bf16, 32 = fp32
    parameter integer WROWS = 1,       // stored tile rows per weight-load beat
    parameter integer ACC_BITS = (ACCUMULATORS > 1) ? $clog2(ACCUMULATORS) : 1,
    parameter integer ROW_BITS = (BLEN > 1) ? $clog2(BLEN) : 1
) (
    input  wire                     clk,
    input  wire                     rst,
    input  wire                     w_valid,
    output wire                     w_ready,
    input  wire                     w_transpose,
    input  wire [WROWS*MLEN*16-1:0] w_rows,
    input  wire                     a_valid,
    output wire                     a_ready,
    input  wire                     a_accumulate,
    input  wire [ACC_BITS-1:0]      a_acc,
    input  wire [MLEN*VEC_BITS-1:0] a_row,
    input  wire                     wb_valid,
    output wire                     wb_ready,
    input  wire [ACC_BITS-1:0]      wb_acc,
    output reg                      wb_out_valid,
    output reg  [ROW_BITS-1:0]      wb_out_index,
    output wire [MLEN*VEC_BITS-1:0] wb_out_row,
    output wire [MLEN-1:0]          col_write
);
  localparam integer BEATS = MLEN / WROWS;
  localparam integer BEAT_BITS = (BEATS > 1) ? $clog2(BEATS) : 1;
  localparam [31:0] LAST_BEAT = BEATS - 1;
  localparam [31:0] LAST_ROW = BLEN - 1;
  localparam [31:0] ONE = 1;
  localparam integer STAGES = 2 * MLEN;  // control stages: issue register + array + column skew
  // Accumulator rows per column, addressed {acc, b} (BLEN is a power of two, npu.hw.config).
  localparam integer ENTRIES = ACCUMULATORS << ROW_BITS;
  localparam integer ADDR_BITS = ACC_BITS + ROW_BITS;

  // ---- weight tile load into the buffer not in use -------------------------------------------
  reg current;   // buffer holding the most recently loaded tile
  reg has_tile;  // a tile has been loaded since reset
  reg [BEAT_BITS-1:0] w_beat;
  wire load_buffer = !current;
  reg load_blocked;  // a row still to read a weight this beat would overwrite (hazards, below)
  assign w_ready = !load_blocked;
  wire w_fire = w_valid && w_ready;

  always @(posedge clk) begin
    if (rst) begin
      current <= 1'b0;
      has_tile <= 1'b0;
      w_beat <= {BEAT_BITS{1'b0}};
    end else if (w_fire) begin
      if (w_beat == LAST_BEAT[BEAT_BITS-1:0]) begin
        w_beat <= {BEAT_BITS{1'b0}};
        current <= load_buffer;
        has_tile <= 1'b1;
      end else begin
        w_beat <= w_beat + 1'b1;
      end
    end
  end

  // ---- tile op rows: issue register (rounding to bf16) -------------------------------------
  assign a_ready = has_tile;
  wire a_fire = a_valid && a_ready;
  reg [ROW_BITS-1:0] a_index;  // row b of the next beat
  reg op_buffer, op_accumulate;
  reg [ACC_BITS-1:0] op_acc;
  wire first_row = (a_index == {ROW_BITS{1'b0}});
  wire row_buffer = first_row ? current : op_buffer;
  wire row_accumulate = first_row ? a_accumulate : op_accumulate;
  wire [ACC_BITS-1:0] row_acc = first_row ? a_acc : op_acc;

  wire [MLEN*16-1:0] a_bf16;
  genvar n;
  generate
    for (n = 0; n < MLEN; n = n + 1) begin : g_round
      if (VEC_BITS == 32) begin : g_fp32
        fp32_to_bf16 u_round (.a(a_row[32*n +: 32]), .y(a_bf16[16*n +: 16]));
      end else begin : g_bf16
        assign a_bf16[16*n +: 16] = a_row[16*n +: 16];
      end
    end
  endgenerate

  reg [MLEN*16-1:0] issue_row;
  reg issue_buffer;
  always @(posedge clk) begin
    if (rst) begin
      a_index <= {ROW_BITS{1'b0}};
    end else if (a_fire) begin
      a_index <= (a_index == LAST_ROW[ROW_BITS-1:0]) ? {ROW_BITS{1'b0}} : a_index + 1'b1;
      if (first_row) begin
        op_buffer <= current;
        op_accumulate <= a_accumulate;
        op_acc <= a_acc;
      end
    end
    issue_row <= a_bf16;
    issue_buffer <= row_buffer;
  end

  // Control beside the array: stage s holds the row that entered the issue register s cycles ago
  // (stage 0 = the issue register); column n adds the row of stage MLEN + n into its accumulator.
  reg [STAGES-1:0] stage_valid, stage_buffer, stage_accumulate;
  reg [STAGES*ACC_BITS-1:0] stage_acc;
  reg [STAGES*ROW_BITS-1:0] stage_row;
  always @(posedge clk) begin
    if (rst) begin
      stage_valid <= {STAGES{1'b0}};
    end else begin
      stage_valid <= {stage_valid[STAGES-2:0], a_fire};
    end
    stage_buffer <= {stage_buffer[STAGES-2:0], row_buffer};
    stage_accumulate <= {stage_accumulate[STAGES-2:0], row_accumulate};
    stage_acc <= {stage_acc[(STAGES-1)*ACC_BITS-1:0], row_acc};
    stage_row <= {stage_row[(STAGES-1)*ROW_BITS-1:0], a_index};
  end

  // Hazards. Weight load: the beat writes PE rows (transposed: columns) up to last_index, so
  // PEs (k, n) with k + n <= last_index + MLEN - 1; a row in control stage s computes in the PEs
  // with k + n = s this cycle (the write lands after that) and in those with k + n > s later.
  // The beat waits while a row that uses the buffer being loaded still has such a PE ahead of it,
  // or while the op in progress uses that buffer. Write-back: an accumulator is pending while a
  // row into it has not been added yet.
  reg wb_acc_pending;
  integer s, last_index;
  always @* begin
    last_index = {{(32-BEAT_BITS){1'b0}}, w_beat} * WROWS + WROWS - 1;
    load_blocked = !first_row && (op_buffer == load_buffer);
    wb_acc_pending = 1'b0;
    for (s = 0; s < STAGES; s = s + 1) begin
      if (stage_valid[s] && stage_buffer[s] == load_buffer && s + 2 <= last_index + MLEN) load_blocked = 1'b1;
      if (stage_valid[s] && stage_acc[s*ACC_BITS +: ACC_BITS] == wb_acc) wb_acc_pending = 1'b1;
    end
  end

  // ---- the array -------------------------------------------------------------------------------
  wire [MLEN*32-1:0] col_sum;
  systolic_array #(.MLEN(MLEN), .WROWS(WROWS), .BEAT_BITS(BEAT_BITS)) u_array (
      .clk(clk),
      .w_write(w_fire),
      .w_buf(load_buffer),
      .w_transpose(w_transpose),
      .w_beat(w_beat),
      .w_rows(w_rows),
      .act_row(issue_row),
      .act_sel(issue_buffer),
      .col_sum(col_sum)
  );

  // ---- write-back sequencer --------------------------------------------------------------------
  reg wb_active;                 // rows 1..BLEN-1 of a write-back still to read
  reg [ACC_BITS-1:0] wb_acc_q;
  reg [ROW_BITS-1:0] wb_row_q;
  assign wb_ready = !wb_active && !wb_acc_pending;
  wire wb_fire = wb_valid && wb_ready;
  wire wb_reading = wb_fire || wb_active;
  wire [ACC_BITS-1:0] read_acc = wb_active ? wb_acc_q : wb_acc;
  wire [ROW_BITS-1:0] read_row = wb_active ? wb_row_q : {ROW_BITS{1'b0}};
  wire [ADDR_BITS-1:0] read_addr = {read_acc, read_row};

  always @(posedge clk) begin
    if (rst) begin
      wb_active <= 1'b0;
      wb_out_valid <= 1'b0;
    end else begin
      wb_out_valid <= wb_reading;
      if (wb_fire) begin
        wb_acc_q <= wb_acc;
        wb_row_q <= ONE[ROW_BITS-1:0];  // row 0 is read in this cycle
        wb_active <= (BLEN > 1);
      end else if (wb_active) begin
        wb_row_q <= wb_row_q + 1'b1;
        if (wb_row_q == LAST_ROW[ROW_BITS-1:0]) wb_active <= 1'b0;
      end
    end
    wb_out_index <= read_row;
  end

  // ---- accumulator bank: one matrix_accumulator per column, row {acc, b} ---------------------
  generate
    for (n = 0; n < MLEN; n = n + 1) begin : g_column
      wire valid = stage_valid[MLEN + n];
      matrix_accumulator #(.ENTRIES(ENTRIES), .ADDR_BITS(ADDR_BITS), .VEC_BITS(VEC_BITS)) u_column (
          .clk(clk),
          .add_valid(valid),
          .add_accumulate(stage_accumulate[MLEN + n]),
          .add_addr({stage_acc[(MLEN + n)*ACC_BITS +: ACC_BITS], stage_row[(MLEN + n)*ROW_BITS +: ROW_BITS]}),
          .col_sum(col_sum[32*n +: 32]),
          .read_addr(read_addr),
          .read_row(wb_out_row[VEC_BITS*n +: VEC_BITS])
      );
      assign col_write[n] = valid;
    end
  endgenerate
endmodule
`default_nettype wire
