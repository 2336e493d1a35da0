// matrix_accumulator: one column of the matrix unit's accumulator bank - ENTRIES fp32 rows
// (ACCUMULATORS x BLEN of matrix_unit, addressed {acc, b}), the fp32_add that adds the systolic
// array's column sum into the addressed row (or into +0: mm / mmt), and the mwb read port that
// rounds a row to the vector SRAM format. matrix_unit instantiates MLEN of them; it is a module of
// its own so that the synthesis flow can price it (npu.synth.units "matrix_accumulator",
// composed MLEN times; docs/synthesis.md).
//
// Ports: add_valid / add_accumulate / add_addr / col_sum: in a cycle with add_valid, row add_addr
// becomes (add_accumulate ? row : +0) + col_sum (numerics.hw_matmul_accumulate's last add),
// written at the rising edge. read_addr: the row read_row holds after the next rising edge,
// rounded to VEC_BITS (fp32_to_bf16 for 16, the bits for 32), registered: latency 1 cycle.
// A write and a read of the same row in one cycle read the old value.
`default_nettype none
module matrix_accumulator #(
    parameter integer ENTRIES = 4,     // accumulator rows of this column (ACCUMULATORS x BLEN)
    parameter integer ADDR_BITS = 2,   // row address bits ({acc, b})
    parameter integer VEC_BITS = 16    // vector SRAM element: 16 = bf16, 32 = fp32
) (
    input  wire                 clk,
    input  wire                 add_valid,
    input  wire                 add_accumulate,
    input  wire [ADDR_BITS-1:0] add_addr,
    input  wire [31:0]          col_sum,
    input  wire [ADDR_BITS-1:0] read_addr,
    output reg  [VEC_BITS-1:0]  read_row
);
  reg [31:0] bank [0:ENTRIES-1];
  wire [31:0] start = add_accumulate ? bank[add_addr] : 32'd0;  // mm adds to +0
  wire [31:0] total;
  fp32_add u_acc (.a(start), .b(col_sum), .y(total));
  always @(posedge clk) begin
    if (add_valid) bank[add_addr] <= total;
  end

  wire [31:0] read_value = bank[read_addr];
  wire [VEC_BITS-1:0] rounded;
  generate
    if (VEC_BITS == 32) begin : g_fp32
      assign rounded = read_value;
    end else begin : g_bf16
      fp32_to_bf16 u_round (.a(read_value), .y(rounded));
    end
  endgenerate
  always @(posedge clk) read_row <= rounded;
endmodule
`default_nettype wire
