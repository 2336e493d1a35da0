// vector_sum_tree: the sum of N fp32 values (N a power of two) by a pairwise tree of fp32_add,
// in the order of numerics.hw_tree_sum: level by level, element i of the next level is
// x[2i] + x[2i+1]. The vsum reduction of one vector row. Combinational, log2(N) adder levels.
//
// The tree is stored as a heap: node k has children 2k+1 and 2k+2, the leaves are nodes
// N-1 .. 2N-2 (leaf i = x[i]), so the pairs (2i, 2i+1) of every level share a parent.
`default_nettype none
module vector_sum_tree #(
    parameter N = 8
) (
    input  wire [32*N-1:0] x,  // x[i] in bits [32i+31:32i]
    output wire [31:0]     y
);
  wire [32*(2*N-1)-1:0] node;
  genvar k;
  generate
    for (k = 0; k < N; k = k + 1) begin : leaf
      assign node[32*(N-1+k) +: 32] = x[32*k +: 32];
    end
    for (k = 0; k < N-1; k = k + 1) begin : add
      fp32_add u_add (.a(node[32*(2*k+1) +: 32]), .b(node[32*(2*k+2) +: 32]), .y(node[32*k +: 32]));
    end
  endgenerate
  assign y = node[31:0];
endmodule
`default_nettype wire
