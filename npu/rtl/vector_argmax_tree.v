// vector_argmax_tree: the maximum of N fp32 values and the lowest lane holding it (N a power of
// two), as vargmax computes it with numpy's argmax: NaN lanes count as -inf (they never win),
// and at every node the right-hand pair wins only when strictly greater, so among equal values
// (+0 and -0 included) the lowest lane is kept. Combinational, log2(N) comparator levels; heap
// layout as in vector_sum_tree, each node carrying (value, lane).
`default_nettype none
module vector_argmax_tree #(
    parameter N = 8,
    parameter INDEX_BITS = 3  // >= log2(N), at least 1
) (
    input  wire [32*N-1:0]       x,
    output wire [31:0]           y,
    output wire [INDEX_BITS-1:0] index
);
  localparam [31:0] NEG_INF = 32'hFF800000;
  wire [32*(2*N-1)-1:0] value;
  wire [INDEX_BITS*(2*N-1)-1:0] lane;
  genvar k;
  generate
    for (k = 0; k < N; k = k + 1) begin : leaf
      wire [31:0] element = x[32*k +: 32];
      wire nan = (element[30:23] == 8'hFF) && (element[22:0] != 23'd0);
      assign value[32*(N-1+k) +: 32] = nan ? NEG_INF : element;
      assign lane[INDEX_BITS*(N-1+k) +: INDEX_BITS] = k;
    end
    for (k = 0; k < N-1; k = k + 1) begin : pick
      wire greater, equal, less, unordered;
      fp32_compare u_compare (.a(value[32*(2*k+2) +: 32]), .b(value[32*(2*k+1) +: 32]),
                              .greater(greater), .equal(equal), .less(less), .unordered(unordered));
      assign value[32*k +: 32] = greater ? value[32*(2*k+2) +: 32] : value[32*(2*k+1) +: 32];
      assign lane[INDEX_BITS*k +: INDEX_BITS] = greater ? lane[INDEX_BITS*(2*k+2) +: INDEX_BITS]
                                                        : lane[INDEX_BITS*(2*k+1) +: INDEX_BITS];
      wire unused = equal | less | unordered;
    end
  endgenerate
  assign y = value[31:0];
  assign index = lane[INDEX_BITS-1:0];
endmodule
`default_nettype wire
