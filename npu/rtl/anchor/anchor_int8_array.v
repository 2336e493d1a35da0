// anchor_int8_array: SIZE x SIZE weight-stationary array of anchor_int8_pe (8 x 8 for the anchor
// row of docs/synthesis.md). Row k's activations enter at the left edge (act_col[8*k +: 8]) and
// move right one PE per cycle; column n's partial sum starts at 0 in row 0 and moves down, so
// col_sum[32*n +: 32] is sum_k act[k] * w[k][n] (mod 2^32). The caller skews the activations
// (element k one cycle after element k-1), as the ORFS-style arrays leave to their surroundings.
// Weights: w_row_load[k] loads w_row[8*n +: 8] into PE (k, n).
`default_nettype none
module anchor_int8_array #(
    parameter integer SIZE = 8
) (
    input  wire                  clk,
    input  wire [SIZE-1:0]       w_row_load,
    input  wire [8*SIZE-1:0]     w_row,
    input  wire [8*SIZE-1:0]     act_col,
    output wire [32*SIZE-1:0]    col_sum
);
  // entry (k, n): the activation entering PE (k, n); n = SIZE, leaving the right edge, is unused
  /* verilator lint_off UNUSEDSIGNAL */
  wire [8*SIZE*(SIZE+1)-1:0]  act_h;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [32*(SIZE+1)*SIZE-1:0] psum_v;  // entry (k, n): the partial sum entering PE (k, n)
  genvar k, n;
  generate
    for (k = 0; k < SIZE; k = k + 1) begin : g_row
      assign act_h[8*(k*(SIZE+1)) +: 8] = act_col[8*k +: 8];
      for (n = 0; n < SIZE; n = n + 1) begin : g_col
        if (k == 0) begin : g_top
          assign psum_v[32*n +: 32] = 32'd0;
        end
        anchor_int8_pe u_pe (
            .clk(clk), .w_load(w_row_load[k]), .w_data(w_row[8*n +: 8]),
            .act_in(act_h[8*(k*(SIZE+1) + n) +: 8]), .psum_in(psum_v[32*(k*SIZE + n) +: 32]),
            .act_out(act_h[8*(k*(SIZE+1) + n + 1) +: 8]), .psum_out(psum_v[32*((k+1)*SIZE + n) +: 32]));
      end
    end
  endgenerate
  assign col_sum = psum_v[32*SIZE*SIZE +: 32*SIZE];
endmodule
`default_nettype wire
