// issue_queue: the decoupling queue between npu_core's issue port for one unit and that unit
// (the cycle simulator's per-unit queue of `queue_depth` entries). A synchronous FIFO of DEPTH
// entries of WIDTH bits: the core pushes (push_valid / push_ready = not full), the unit pops
// (pop_valid = not empty / pop_ready). `occupied` (not empty) is what the unit ORs into the
// core's <unit>_busy, so that `wait` covers queued work as well as the unit's own.
// Synchronous reset empties it.
`default_nettype none
module issue_queue #(
    parameter DEPTH = 8,
    parameter WIDTH = 32,
    parameter INDEX_BITS = 3   // log2(DEPTH); DEPTH is a power of two
) (
    input  wire             clk,
    input  wire             reset,
    input  wire             push_valid,
    output wire             push_ready,
    input  wire [WIDTH-1:0] push_data,
    output wire             pop_valid,
    input  wire             pop_ready,
    output wire [WIDTH-1:0] pop_data,
    output wire             occupied
);
  reg [WIDTH-1:0]      entries [0:DEPTH-1];
  reg [INDEX_BITS-1:0] head, tail;
  reg [INDEX_BITS:0]   count;
  wire push = push_valid && push_ready;
  wire pop = pop_valid && pop_ready;
  assign push_ready = count != DEPTH[INDEX_BITS:0];
  assign pop_valid = count != {(INDEX_BITS + 1){1'b0}};
  assign occupied = pop_valid;
  assign pop_data = entries[head];
  always @(posedge clk) begin
    if (reset) begin
      head <= {INDEX_BITS{1'b0}};
      tail <= {INDEX_BITS{1'b0}};
      count <= {(INDEX_BITS + 1){1'b0}};
    end else begin
      if (push) begin
        entries[tail] <= push_data;
        tail <= tail + 1'b1;
      end
      if (pop) head <= head + 1'b1;
      if (push && !pop) count <= count + 1'b1;
      else if (pop && !push) count <= count - 1'b1;
    end
  end
endmodule
`default_nettype wire
