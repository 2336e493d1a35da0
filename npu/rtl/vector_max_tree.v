// vector_max_tree: the maximum of N fp32 values (N a power of two) by a pairwise tree, the vmaxr
// reduction numerics.hw_max_reduce defines: each node is hw_maximum(left, right) (a NaN gives a
// NaN; of equal values, +0 and -0, the right-hand one wins), so of equal maxima the last lane's
// value is returned.
// Combinational, log2(N) comparator levels. Heap layout as in vector_sum_tree.
`default_nettype none
module vector_max_tree #(
    parameter N = 8
) (
    input  wire [32*N-1:0] x,
    output wire [31:0]     y
);
  wire [32*(2*N-1)-1:0] node;
  genvar k;
  generate
    for (k = 0; k < N; k = k + 1) begin : leaf
      assign node[32*(N-1+k) +: 32] = x[32*k +: 32];
    end
    for (k = 0; k < N-1; k = k + 1) begin : pick
      wire [31:0] left = node[32*(2*k+1) +: 32];
      wire [31:0] right = node[32*(2*k+2) +: 32];
      wire left_nan = (left[30:23] == 8'hFF) && (left[22:0] != 23'd0);
      wire greater, equal, less, unordered;
      fp32_compare u_compare (.a(left), .b(right), .greater(greater), .equal(equal), .less(less),
                              .unordered(unordered));
      assign node[32*k +: 32] = (left_nan || greater) ? left : right;
      wire unused = equal | less | unordered;
    end
  endgenerate
  assign y = node[31:0];
endmodule
`default_nettype wire
