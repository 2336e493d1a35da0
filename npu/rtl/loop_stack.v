// loop_stack: the zero-overhead hardware loops of `loop` / `loopi`, nested up to DEPTH deep.
// Each level holds its body [start, end) and the iterations still to run. When the instruction
// in execute continues at `next_pc` and that equals the innermost body's end, `fetch_pc` goes
// back to the body's start (one iteration fewer left) or, on the last iteration, the level is
// popped and the check repeats for the enclosing level (loops may share an end) - all in the
// same cycle, so a loop costs no cycles (the functional simulator's advance_loops).
// `step` commits the instruction (push or advance); a push never coincides with an advance (the
// new body's end lies beyond pc + 1). Synchronous reset empties the stack.
// Define DNPU_MUTANT_LOOP_COUNT to run one iteration too few (mutation check of the tests).
`default_nettype none
`include "dnpu_isa.vh"
module loop_stack #(
    parameter PC_BITS = 11,
    parameter DEPTH = `DNPU_MAX_LOOP_DEPTH,
    parameter DEPTH_BITS = 3,  // holds 0..DEPTH
    parameter LEVEL_BITS = 2   // indexes 0..DEPTH-1
) (
    input  wire                  clk,
    input  wire                  reset,
    input  wire                  step,
    input  wire [PC_BITS-1:0]    next_pc,
    input  wire                  push,
    input  wire [PC_BITS-1:0]    push_start,
    input  wire [PC_BITS-1:0]    push_end,
    input  wire [31:0]           push_count,   // >= 1
    output reg  [PC_BITS-1:0]    fetch_pc,
    output wire [DEPTH_BITS-1:0] depth,
    output wire [PC_BITS-1:0]    top_start,
    output wire [PC_BITS-1:0]    top_end
);
  reg [PC_BITS-1:0]    start_pc  [0:DEPTH-1];
  reg [PC_BITS-1:0]    end_pc    [0:DEPTH-1];
  reg [31:0]           remaining [0:DEPTH-1];
  reg [DEPTH_BITS-1:0] depth_r;
  assign depth = depth_r;
  wire [DEPTH_BITS-1:0] top_level = (depth_r == {DEPTH_BITS{1'b0}}) ? {DEPTH_BITS{1'b0}} : depth_r - 1'b1;
  wire [LEVEL_BITS-1:0] top = top_level[LEVEL_BITS-1:0];
  wire [LEVEL_BITS-1:0] free_level = depth_r[LEVEL_BITS-1:0];  // where a push goes (depth < DEPTH)
  wire unused_top_level = |(top_level >> LEVEL_BITS);
  assign top_start = start_pc[top];
  assign top_end = end_pc[top];

  // The loop-end check, innermost level first.
  reg                  searching, repeat_body;
  reg [LEVEL_BITS-1:0] repeat_level;
  reg [DEPTH_BITS-1:0] popped_depth;
  integer k;
  always @* begin
    fetch_pc = next_pc;
    searching = 1'b1;
    repeat_body = 1'b0;
    repeat_level = {LEVEL_BITS{1'b0}};
    popped_depth = depth_r;
    for (k = DEPTH - 1; k >= 0; k = k - 1) begin
      if (searching && k < depth_r) begin
        if (end_pc[k] == next_pc) begin
`ifdef DNPU_MUTANT_LOOP_COUNT
          if (remaining[k] > 32'd2) begin  // mutation check: one iteration too few
`else
          if (remaining[k] > 32'd1) begin
`endif
            fetch_pc = start_pc[k];
            repeat_body = 1'b1;
            repeat_level = k[LEVEL_BITS-1:0];
            searching = 1'b0;
          end else begin
            popped_depth = k[DEPTH_BITS-1:0];  // last iteration done: leave this loop
          end
        end else begin
          searching = 1'b0;
        end
      end
    end
  end

  integer level;
  always @(posedge clk) begin
    if (reset) begin
      depth_r <= {DEPTH_BITS{1'b0}};
      for (level = 0; level < DEPTH; level = level + 1) begin
        start_pc[level] <= {PC_BITS{1'b0}};
        end_pc[level] <= {PC_BITS{1'b0}};
        remaining[level] <= 32'd0;
      end
    end else if (step) begin
      if (push) begin
        start_pc[free_level] <= push_start;
        end_pc[free_level] <= push_end;
        remaining[free_level] <= push_count;
        depth_r <= depth_r + 1'b1;
      end else begin
        if (repeat_body) remaining[repeat_level] <= remaining[repeat_level] - 32'd1;
        depth_r <= popped_depth;
      end
    end
  end
endmodule
`default_nettype wire
