// systolic_array: MLEN x MLEN weight-stationary array of matrix_pe (Kung, "Why systolic
// architectures?", IEEE Computer 15(1), 1982; the TPU's matrix unit, Jouppi et al., ISCA 2017).
//
// PE (k, n) holds w[k][n] of two weight tiles (double buffer). An activation row a[b][0..MLEN-1]
// enters at act_row; element k is delayed k cycles (the input skew) and enters row k of the array
// at its left edge, then moves one PE to the right per cycle. The partial sum of column n flows
// down through rows k = 0..MLEN-1, so column n's sum is p0 + p1 + ... + p(MLEN-1) added in that
// order (numerics.hw_matmul_accumulate). Every element of a row carries its op's weight-buffer
// bit (act_sel), so rows of consecutive tile ops on different tiles can be in the array at once.
//
// Timing: a row presented at act_row in cycle t gives column n's sum at col_sum in cycle
// t + MLEN + n (rows can follow each other every cycle).
//
// Weight load: a beat (w_write) writes WROWS rows of a stored MLEN x MLEN tile, rows
// w_beat*WROWS .. w_beat*WROWS + WROWS - 1, into buffer w_buf; MLEN / WROWS beats load a tile.
// The stored row r, element c (w_rows[(j*MLEN + c)*16 +: 16] with r = w_beat*WROWS + j) goes to
// PE (r, c), or with w_transpose to PE (c, r): the array then computes A @ W^T (mmt / mmta).
// The caller must not write a PE's buffer while a row that uses it has still to reach that PE
// (matrix_unit holds the load back: PE (k, n) sees a row k + n cycles after it enters).
`default_nettype none
module systolic_array #(
    parameter integer MLEN = 4,
    parameter integer WROWS = 1,  // stored tile rows per weight-load beat (matrix SRAM width / row)
    parameter integer BEAT_BITS = (MLEN / WROWS > 1) ? $clog2(MLEN / WROWS) : 1
) (
    input  wire                     clk,
    input  wire                     w_write,
    input  wire                     w_buf,
    input  wire                     w_transpose,
    input  wire [BEAT_BITS-1:0]     w_beat,
    input  wire [WROWS*MLEN*16-1:0] w_rows,
    input  wire [MLEN*16-1:0]       act_row,  // a[b][k] (bf16) at [16*k +: 16]
    input  wire                     act_sel,  // weight buffer of this row's tile op
    output wire [MLEN*32-1:0]       col_sum   // column n (fp32) at [32*n +: 32]
);
  // Horizontal links: act_h / sel_h entry (k, n) is the input of PE (k, n), n = MLEN the right edge.
  // Vertical links: psum_v entry (k, n) is the partial sum entering PE (k, n), k = MLEN the bottom.
  wire [MLEN*(MLEN+1)*16-1:0] act_h;
  wire [MLEN*(MLEN+1)-1:0]    sel_h;
  wire [(MLEN+1)*MLEN*32-1:0] psum_v;

  genvar k, n;
  generate
    for (k = 0; k < MLEN; k = k + 1) begin : g_row
      // Input skew: element k of a row waits k cycles, so it meets the partial sum of rows 0..k-1.
      if (k == 0) begin : g_direct
        assign act_h[0 +: 16] = act_row[0 +: 16];
        assign sel_h[0] = act_sel;
      end else begin : g_skew
        reg [17*k-1:0] skew;  // stage j at [17*j +: 17]: {buffer bit, bf16}
        integer stage;
        always @(posedge clk) begin
          skew[0 +: 17] <= {act_sel, act_row[16*k +: 16]};
          for (stage = 1; stage < k; stage = stage + 1) skew[17*stage +: 17] <= skew[17*(stage-1) +: 17];
        end
        assign act_h[(k*(MLEN+1))*16 +: 16] = skew[17*(k-1) +: 16];
        assign sel_h[k*(MLEN+1)] = skew[17*(k-1) + 16];
      end
      assign psum_v[(0*MLEN + k)*32 +: 32] = 32'd0;  // row 0 ignores its psum_in
      for (n = 0; n < MLEN; n = n + 1) begin : g_col
        // Which beat carries this PE's weight, and where in the beat it sits.
        localparam [31:0] PLAIN_BEAT = k / WROWS;  // w[k][n] is stored row k
        localparam [31:0] TRANS_BEAT = n / WROWS;  // w[k][n] is stored row n, element k
        wire [15:0] w_plain = w_rows[((k % WROWS)*MLEN + n)*16 +: 16];
        wire [15:0] w_trans = w_rows[((n % WROWS)*MLEN + k)*16 +: 16];
        wire mine = w_write && (w_beat == (w_transpose ? TRANS_BEAT[BEAT_BITS-1:0] : PLAIN_BEAT[BEAT_BITS-1:0]));
        matrix_pe #(.ROW(k), .COL(n)) u_pe (
            .clk(clk),
            .w_load0(mine && !w_buf),
            .w_load1(mine && w_buf),
            .w_data(w_transpose ? w_trans : w_plain),
            .act_in(act_h[(k*(MLEN+1) + n)*16 +: 16]),
            .sel_in(sel_h[k*(MLEN+1) + n]),
            .psum_in(psum_v[(k*MLEN + n)*32 +: 32]),
            .act_out(act_h[(k*(MLEN+1) + n + 1)*16 +: 16]),
            .sel_out(sel_h[k*(MLEN+1) + n + 1]),
            .psum_out(psum_v[((k+1)*MLEN + n)*32 +: 32])
        );
      end
      // The activations leaving the right edge are not used.
      wire unused_ok = &{1'b0, act_h[(k*(MLEN+1) + MLEN)*16 +: 16], sel_h[k*(MLEN+1) + MLEN]};
    end
  endgenerate

  assign col_sum = psum_v[MLEN*MLEN*32 +: MLEN*32];
endmodule
`default_nettype wire
