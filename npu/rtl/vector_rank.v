// vector_rank: the vrank ranking network, iterative: for every candidate lane i,
//   count_i = #{j : other[j] > cand[i], or other[j] == cand[i] and the VEC_SRAM address of j is
//              below that of i}
// and ranks_out[i] = ranks_in[i] + count_i (int32, wrapping), as npu/sim/functional/vector.py
// (build_rank) defines it. Each cycle compares STEP_LANES lanes of `other` with all VLEN
// candidates (VLEN x STEP_LANES fp32 comparators), so a row takes VLEN / STEP_LANES cycles.
//
// Both rows are VLEN-aligned, so "address of other[j] < address of cand[i]" is `other_first`
// (the other row lies below the candidate row) or, for the same row, j < i.
//
// Timing: while `enable` is high the network steps once per cycle; `last` is high in the cycle of
// the final step, when ranks_out holds the result (the operands must stay unchanged until then).
`default_nettype none
module vector_rank #(
    parameter VLEN = 8,
    parameter STEP_LANES = 4  // a power of two that divides VLEN
) (
    input  wire               clk,
    input  wire               rst,
    input  wire               enable,
    input  wire [32*VLEN-1:0] cand,      // fp32 candidate values
    input  wire [32*VLEN-1:0] other,     // fp32 values they are ranked against
    input  wire [32*VLEN-1:0] ranks_in,  // int32 ranks so far
    input  wire               other_first,
    input  wire               same_row,
    output wire               last,
    output reg  [32*VLEN-1:0] ranks_out
);
  localparam STEPS = VLEN / STEP_LANES;
  localparam STEP_BITS = (STEPS > 1) ? $clog2(STEPS) : 1;
  localparam LANE_BITS = $clog2(VLEN) + 1;
  localparam STEP_SHIFT = $clog2(STEP_LANES);  // STEP_LANES is a power of two

  reg [STEP_BITS-1:0] step;
  reg [32*VLEN-1:0] partial;  // ranks_in plus the counts of the steps so far
  wire [31:0] step_number = {{(32-STEP_BITS){1'b0}}, step};
  assign last = enable && (step_number == STEPS - 1);

  // The STEP_LANES lanes of `other` compared in this step, and their lane numbers.
  wire [32*STEP_LANES-1:0] chunk;
  wire [LANE_BITS*STEP_LANES-1:0] chunk_lane;
  wire [VLEN*STEP_LANES-1:0] beats;  // bit i*STEP_LANES + p: chunk lane p beats candidate i
  genvar i, p;
  generate
    for (p = 0; p < STEP_LANES; p = p + 1) begin : select
      localparam [LANE_BITS-1:0] OFFSET = p;
      wire [LANE_BITS-1:0] number = ({{(LANE_BITS-STEP_BITS){1'b0}}, step} << STEP_SHIFT) | OFFSET;
      assign chunk_lane[LANE_BITS*p +: LANE_BITS] = number;
      assign chunk[32*p +: 32] = other[32*number +: 32];
    end
    for (i = 0; i < VLEN; i = i + 1) begin : candidate
      localparam [LANE_BITS-1:0] LANE = i;
      for (p = 0; p < STEP_LANES; p = p + 1) begin : against
        wire greater, equal, less, unordered;
        fp32_compare u_compare (.a(chunk[32*p +: 32]), .b(cand[32*i +: 32]), .greater(greater), .equal(equal),
                                .less(less), .unordered(unordered));
        wire earlier;
        if (i == 0) begin : first_lane
          assign earlier = other_first;  // no lane j < 0
        end else begin : later_lane
          assign earlier = other_first || (same_row && chunk_lane[LANE_BITS*p +: LANE_BITS] < LANE);
        end
        assign beats[i*STEP_LANES + p] = greater || (equal && earlier);
        wire unused = less | unordered;
      end
    end
  endgenerate

  integer lane, q;
  reg [31:0] count;
  always @* begin
    for (lane = 0; lane < VLEN; lane = lane + 1) begin
      count = 32'd0;
      for (q = 0; q < STEP_LANES; q = q + 1) count = count + {31'd0, beats[lane*STEP_LANES + q]};
      ranks_out[32*lane +: 32] = ((step == {STEP_BITS{1'b0}}) ? ranks_in[32*lane +: 32] : partial[32*lane +: 32])
                                 + count;
    end
  end

  always @(posedge clk) begin
    if (rst || !enable) step <= {STEP_BITS{1'b0}};
    else step <= last ? {STEP_BITS{1'b0}} : step + 1'b1;
    if (enable) partial <= ranks_out;
  end
endmodule
`default_nettype wire
