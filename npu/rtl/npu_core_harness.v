// npu_core_harness: simulation wrapper of npu_core for the cocotb testbench (npu/rtl/cocotb_core.py).
// Each queued unit's issue port feeds an issue_queue of QUEUE_DEPTH entries; a stand-in for the
// DMA / matrix / vector unit pops the next entry when it is idle and its ready line allows (always,
// or a pseudo-random pattern when backpressure_seed != 0), then stays busy for unit_latency
// cycles. The core sees <unit>_busy = queue occupied or unit busy. Every instruction a unit pops
// is appended to an issue log the testbench reads after the run (log_index -> log_entry), so the
// log shows what reached the units through the queues. Not part of the synthesised core.
`default_nettype none
`include "dnpu_core.vh"
module npu_core_harness #(
    parameter PROGRAM_WORDS = 1024,
    parameter INT_SRAM_WORDS = 16384,
    parameter FP_SRAM_WORDS = 16384,
    parameter DLLM_INSTRUCTIONS = 1,
    parameter LOG_DEPTH = 256,
    parameter QUEUE_DEPTH = 2,  // small, so that full queues stall the core in the tests
    parameter PC_BITS = $clog2(PROGRAM_WORDS) + 1,
    parameter DEBUG_BITS = ($clog2(INT_SRAM_WORDS) > $clog2(FP_SRAM_WORDS)) ? $clog2(INT_SRAM_WORDS) : $clog2(FP_SRAM_WORDS),
    parameter LOG_BITS = $clog2(LOG_DEPTH),
    // log entry: {address operand, fp operands, int operands, word, pc}
    parameter LOG_WIDTH = 64 + 32 * `DNPU_FP_READ_SLOTS + 32 * `DNPU_INT_READ_SLOTS + 32 + PC_BITS
) (
    input  wire                clk,
    input  wire                reset,
    input  wire                program_write_enable,
    input  wire [PC_BITS-2:0]  program_write_address,
    input  wire [31:0]         program_write_data,
    input  wire [PC_BITS-1:0]  program_length,
    input  wire [7:0]          unit_latency,
    input  wire [15:0]         backpressure_seed,
    output wire                halted,
    output wire [`DNPU_FAULT_BITS-1:0] error_code,
    output wire                stopped,
    output wire [PC_BITS-1:0]  pc,
    output wire [31:0]         cycles,
    output wire [31:0]         retired,
    output wire                units_idle,          // every queue empty and every unit done
    output reg  [LOG_BITS:0]   log_count,
    input  wire [LOG_BITS-1:0] log_index,
    output wire [LOG_WIDTH-1:0] log_entry,
    input  wire [DEBUG_BITS-1:0] debug_index,
    output wire [31:0]         debug_int_register,
    output wire [31:0]         debug_fp_register,
    output wire [63:0]         debug_address_register,
    output wire [31:0]         debug_int_sram,
    output wire [31:0]         debug_fp_sram
);
  wire [2:0]  valid;        // core -> queue
  wire [2:0]  ready;
  wire [2:0]  popped_valid; // queue -> unit
  wire [2:0]  occupied;
  reg  [2:0]  unit_ready;
  reg  [7:0]  busy_count [0:2];
  wire [2:0]  unit_busy = {busy_count[2] != 8'd0, busy_count[1] != 8'd0, busy_count[0] != 8'd0};
  wire [2:0]  busy = occupied | unit_busy;
  wire [2:0]  take = popped_valid & unit_ready & ~unit_busy;
  assign units_idle = busy == 3'b000;
  wire [2:0]  may_take = take & (take[0] ? 3'b001 : take[1] ? 3'b010 : 3'b100);  // one pop per cycle
  wire [31:0] issue_word;
  wire [PC_BITS-1:0] issue_pc;
  wire [`DNPU_MNEMONIC_BITS-1:0] issue_mnemonic;
  wire [32*`DNPU_INT_READ_SLOTS-1:0] issue_int_operands;
  wire [32*`DNPU_FP_READ_SLOTS-1:0] issue_fp_operands;
  wire [63:0] issue_address_operand;

  npu_core #(.PROGRAM_WORDS(PROGRAM_WORDS), .INT_SRAM_WORDS(INT_SRAM_WORDS), .FP_SRAM_WORDS(FP_SRAM_WORDS),
             .DLLM_INSTRUCTIONS(DLLM_INSTRUCTIONS), .UNIT_LANES(UNIT_LANES)) u_core (
      .clk(clk), .reset(reset), .program_write_enable(program_write_enable),
      .program_write_address(program_write_address), .program_write_data(program_write_data),
      .program_length(program_length), .halted(halted), .error_code(error_code), .stopped(stopped),
      .pc(pc), .cycles(cycles), .retired(retired),
      .dma_issue_valid(valid[0]), .dma_issue_ready(ready[0]), .dma_busy(busy[0]),
      .matrix_issue_valid(valid[1]), .matrix_issue_ready(ready[1]), .matrix_busy(busy[1]),
      .vector_issue_valid(valid[2]), .vector_issue_ready(ready[2]), .vector_busy(busy[2]),
      .issue_word(issue_word), .issue_pc(issue_pc), .issue_mnemonic(issue_mnemonic),
      .issue_int_operands(issue_int_operands), .issue_fp_operands(issue_fp_operands),
      .issue_address_operand(issue_address_operand), .debug_index(debug_index),
      .debug_int_register(debug_int_register), .debug_fp_register(debug_fp_register),
      .debug_address_register(debug_address_register), .debug_int_sram(debug_int_sram),
      .debug_fp_sram(debug_fp_sram),
      // no queued units here (npu_top has them): their SRAM and register ports are idle
      .unit_int_sram_enable(1'b0), .unit_int_sram_write(1'b0), .unit_int_sram_address({INT_ADDRESS_BITS{1'b0}}),
      .unit_int_sram_lane_enable({UNIT_LANES{1'b0}}), .unit_int_sram_write_data({32*UNIT_LANES{1'b0}}),
      .unit_int_sram_read_data(unused_int_row),
      .unit_fp_sram_enable(1'b0), .unit_fp_sram_write(1'b0), .unit_fp_sram_address({FP_ADDRESS_BITS{1'b0}}),
      .unit_fp_sram_lane_enable({UNIT_LANES{1'b0}}), .unit_fp_sram_write_data({32*UNIT_LANES{1'b0}}),
      .unit_fp_sram_read_data(unused_fp_row),
      .unit_fp_read_index(3'd0), .unit_fp_read_data(unused_fp_register),
      .unit_fp_write_enable(1'b0), .unit_fp_write_index(3'd0), .unit_fp_write_data(32'd0),
      .unit_int_write_enable(1'b0), .unit_int_write_index(4'd0), .unit_int_write_data(32'd0));
  localparam UNIT_LANES = 8;
  localparam INT_ADDRESS_BITS = $clog2(INT_SRAM_WORDS), FP_ADDRESS_BITS = $clog2(FP_SRAM_WORDS);
  /* verilator lint_off UNUSEDSIGNAL */
  wire [32*UNIT_LANES-1:0] unused_int_row, unused_fp_row;
  wire [31:0] unused_fp_register;
  /* verilator lint_on UNUSEDSIGNAL */

  wire [LOG_WIDTH-1:0] payload = {issue_address_operand, issue_fp_operands, issue_int_operands, issue_word, issue_pc};
  wire [LOG_WIDTH-1:0] popped [0:2];
  genvar q;
  generate
    for (q = 0; q < 3; q = q + 1) begin : queues
      issue_queue #(.DEPTH(QUEUE_DEPTH), .WIDTH(LOG_WIDTH), .INDEX_BITS($clog2(QUEUE_DEPTH))) u_queue (
          .clk(clk), .reset(reset), .push_valid(valid[q]), .push_ready(ready[q]), .push_data(payload),
          .pop_valid(popped_valid[q]), .pop_ready(may_take[q]), .pop_data(popped[q]),
          .occupied(occupied[q]));
    end
  endgenerate

  // pseudo-random unit ready lines: a 16-bit Fibonacci LFSR (taps 16, 14, 13, 11)
  reg [15:0] lfsr;
  always @* unit_ready = (backpressure_seed == 16'd0) ? 3'b111 : lfsr[2:0];

  // at most one unit pops per cycle into the log: the lowest-numbered one that takes an entry
  reg [LOG_WIDTH-1:0] log [0:LOG_DEPTH-1];
  assign log_entry = log[log_index];
  wire [1:0] logged_unit = take[0] ? 2'd0 : take[1] ? 2'd1 : 2'd2;
  integer u;
  always @(posedge clk) begin
    if (reset) begin
      log_count <= {(LOG_BITS + 1){1'b0}};
      lfsr <= backpressure_seed;
      for (u = 0; u < 3; u = u + 1) busy_count[u] <= 8'd0;
    end else begin
      lfsr <= {lfsr[14:0], lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]};
      for (u = 0; u < 3; u = u + 1)
        if (may_take[u]) busy_count[u] <= unit_latency;
        else if (busy_count[u] != 8'd0) busy_count[u] <= busy_count[u] - 8'd1;
      if (take != 3'b000 && log_count < LOG_DEPTH) begin
        log[log_count[LOG_BITS-1:0]] <= popped[logged_unit];
        log_count <= log_count + 1'b1;
      end
    end
  end
  wire unused_mnemonic = |issue_mnemonic;
endmodule
`default_nettype wire
