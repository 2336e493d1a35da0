// address_alu: the 64-bit DRAM address registers' instructions (npu/sim/functional/scalar.py,
// build_address), results modulo 2^64:
//   amov  ad <- zero-extended rs            aadd  ad <- as + sign-extended rs
//   amac  ad <- as + rs1 * rs2 (signed)     aset  ad <- rhi << 32 | zero-extended rlo
//   aaddi ad <- as + sign-extended imm
// Combinational.
`default_nettype none
`include "dnpu_core.vh"
module address_alu (
    input  wire [`DNPU_MNEMONIC_BITS-1:0] mnemonic,
    input  wire [63:0] source,  // as
    input  wire [31:0] a,       // the first INT register read (rs, rs1 or rhi)
    input  wire [31:0] b,       // the second (rs2 or rlo)
    input  wire [31:0] imm,
    output reg  [63:0] y
);
  wire signed [63:0] product = $signed(a) * $signed(b);
  always @* begin
    case (mnemonic)
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_AMOV:  y = {32'd0, a};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_AADD:  y = source + {{32{a[31]}}, a};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_AMAC:  y = source + product;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_ASET:  y = {a, b};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_AADDI: y = source + {{32{imm[31]}}, imm};
      default: y = 64'd0;
    endcase
  end
endmodule
`default_nettype wire
