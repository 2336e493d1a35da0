// matrix_pe: one processing element of the weight-stationary systolic array (systolic_array).
//
// PE (ROW = k, COL = n) holds the weight w[k][n] of two weight tiles (buffer 0 and 1: the array
// computes with one tile while the next one is loaded) and, each cycle, takes the bf16
// activation a[b][k] from its left neighbour together with the buffer bit the activation's tile
// op uses, and the fp32 partial sum of rows 0..k-1 of column n from the PE above. It passes
// the activation (and buffer bit) right and the new partial sum down, both registered:
//
//   psum_out = a * w                (ROW 0: the sum starts at the first product, s = p0)
//   psum_out = psum_in + a * w      (ROW > 0)
//
// This is the order of numerics.hw_matmul_accumulate: s = p0; s = s + p_k for k = 1..K-1, each a
// float32 RNE add. The column starts from p0 itself, not from 0 + p0 (0.0 + -0.0 = +0.0 would
// lose the sign of a column whose products are all -0). The product of two bf16 values has at
// most 16 significant bits, so fp32_mul on the widened operands is exact except where the
// product under- or overflows fp32, where it rounds exactly as numpy's float32 multiply does.
//
// No reset: every register holds data only; validity travels beside the array (matrix_unit).
// Latency: 1 cycle from act_in / psum_in to act_out / psum_out.
//
// Mutation checks (tests/test_rtl_matrix.py builds these variants and expects mismatches):
//   DNPU_MUTANT_PE_ZERO_START: PE (0, 0) starts its column from +0 (s = 0 + p0);
//   DNPU_MUTANT_PE_ROUND:      PE (1, 0) flips the last mantissa bit of its sum (a rounding bit
//                              flipped in one PE).
`default_nettype none
module matrix_pe #(
    parameter integer ROW = 0,  // k: the reduction index of this PE's weight
    /* verilator lint_off UNUSEDPARAM */
    parameter integer COL = 0   // n: the output column (only the mutation variants look at it)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  wire        clk,
    input  wire        w_load0,    // write w_data into weight buffer 0 (1) at the clock edge
    input  wire        w_load1,
    input  wire [15:0] w_data,     // bf16 weight w[k][n]
    input  wire [15:0] act_in,     // bf16 activation a[b][k]
    input  wire        sel_in,     // weight buffer of act_in's tile op
    input  wire [31:0] psum_in,    // fp32 sum of products 0..k-1 (unused in ROW 0)
    output reg  [15:0] act_out,
    output reg         sel_out,
    output reg  [31:0] psum_out
);
  reg [15:0] weight0, weight1;
  always @(posedge clk) begin
    if (w_load0) weight0 <= w_data;
    if (w_load1) weight1 <= w_data;
  end

  wire [31:0] act_fp32, weight_fp32, product, sum;
  bf16_to_fp32 u_act (.a(act_in), .y(act_fp32));
  bf16_to_fp32 u_weight (.a(sel_in ? weight1 : weight0), .y(weight_fp32));
  fp32_mul u_mul (.a(act_fp32), .b(weight_fp32), .y(product));

  generate
    if (ROW == 0) begin : g_top
`ifdef DNPU_MUTANT_PE_ZERO_START
      if (COL == 0) begin : g_mutant
        fp32_add u_add (.a(32'd0), .b(product), .y(sum));
      end else begin : g_exact
        assign sum = product;
      end
`else
      assign sum = product;
`endif
      wire unused_ok = &{1'b0, psum_in};
    end else begin : g_chain
      wire [31:0] exact_sum;
      fp32_add u_add (.a(psum_in), .b(product), .y(exact_sum));
`ifdef DNPU_MUTANT_PE_ROUND
      assign sum = (ROW == 1 && COL == 0) ? (exact_sum ^ 32'd1) : exact_sum;
`else
      assign sum = exact_sum;
`endif
    end
  endgenerate

  always @(posedge clk) begin
    act_out <= act_in;
    sel_out <= sel_in;
    psum_out <= sum;
  end
endmodule
`default_nettype wire
