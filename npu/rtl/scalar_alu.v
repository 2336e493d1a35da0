// scalar_alu: the integer instructions of the scalar unit (npu/sim/functional/scalar.py):
// add sub mul and or xor sll srl sra slt sltu min max (a op b), addi andi ori slti slli srli srai
// (a op imm) and lui (imm << 16). 32-bit two's complement, results wrap; shifts use the low five
// bits of b. `mnemonic` is the decoder's index (generated/dnpu_core.vh). Combinational.
`default_nettype none
`include "dnpu_core.vh"
module scalar_alu (
    input  wire [`DNPU_MNEMONIC_BITS-1:0] mnemonic,
    input  wire [31:0] a,    // rs1
    input  wire [31:0] b,    // rs2
    input  wire [31:0] imm,  // the decoder's imm0, already sign- or zero-extended
    output reg  [31:0] y
);
  wire signed [31:0] sa = a, sb = b, simm = imm;
  wire [63:0] product = a * b;  // low 32 bits are the same signed or unsigned
  wire unused_product_high = |product[63:32];
  always @* begin
    case (mnemonic)
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_ADD:  y = a + b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SUB:  y = a - b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_MUL:  y = product[31:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_AND:  y = a & b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_OR:   y = a | b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_XOR:  y = a ^ b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SLL:  y = a << b[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SRL:  y = a >> b[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SRA:  y = sa >>> b[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SLT:  y = {31'd0, sa < sb};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SLTU: y = {31'd0, a < b};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_MIN:  y = (sa < sb) ? a : b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_MAX:  y = (sa < sb) ? b : a;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_ADDI: y = a + imm;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_ANDI: y = a & imm;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_ORI:  y = a | imm;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SLTI: y = {31'd0, sa < simm};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SLLI: y = a << imm[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SRLI: y = a >> imm[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_SRAI: y = sa >>> imm[4:0];
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_LUI:  y = {imm[15:0], 16'd0};
      default: y = 32'd0;
    endcase
  end
endmodule
`default_nettype wire
