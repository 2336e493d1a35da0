// scalar_fpu: the fp32 instructions of the scalar unit, bit for bit as npu/sim/functional/scalar.py
// computes them (numpy float32 and npu.hw.numerics):
//   fadd fsub fmul          fp32_add / fp32_mul (IEEE, RNE, subnormals; fsub = a + (-b))
//   fmax fmin               numpy maximum / minimum: a NaN a -> a, else a NaN b -> b, else
//                           (a > b ? a : b) / (a < b ? a : b) (so max(-0, +0) = +0, max(+0, -0) = -0)
//   fmov fneg fabs          bit moves: copy, flip the sign bit, clear it (NaN payloads kept)
//   fexp frecip frsqrt      fp32_exp / fp32_recip / fp32_rsqrt (numerics.hw_exp / hw_recip / hw_rsqrt)
//   fcvt.f.i fcvt.i.f       int32_to_fp32 / fp32_to_int32 (RNE; saturating; NaN -> `nan_fault`)
//   fmv.f.i fmv.i.f         bit moves between the files
//   flt fle feq             IEEE ordered comparisons (NaN -> 0, -0 == +0) -> INT 0 / 1
//   flui                    the bf16 constant << 16
// `writes_int` says the result goes to the INT file (int_result), else fp_result to the FP file.
// Define DNPU_MUTANT_FMAX_ZERO to make fmax(+0, -0) return +0 (mutation check of the tests).
// Combinational.
`default_nettype none
`include "dnpu_core.vh"
module scalar_fpu (
    input  wire [`DNPU_MNEMONIC_BITS-1:0] mnemonic,
    input  wire [31:0] a,        // fs1 / fs
    input  wire [31:0] b,        // fs2
    input  wire [31:0] int_a,    // rs
    input  wire [15:0] bf16,     // flui's constant
    output reg  [31:0] fp_result,
    output reg  [31:0] int_result,
    output reg         writes_int,
    output wire        nan_fault
);
  wire [31:0] sum, product, exponential, reciprocal, root, from_int, to_int;
  wire        to_int_nan;
  wire        is_sub = (mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FSUB);
  // Operand isolation: each arithmetic unit sees its operands only when its instruction runs
  // (no switching in the others - and an event-driven simulator skips re-evaluating them).
  wire use_add = is_sub || mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FADD;
  wire use_mul = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMUL;
  wire use_exp = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FEXP;
  wire use_recip = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FRECIP;
  wire use_rsqrt = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FRSQRT;
  wire use_from_int = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FCVT_F_I;
  wire use_to_int = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FCVT_I_F;
  fp32_add u_add (.a(use_add ? a : 32'd0), .b(use_add ? {b[31] ^ is_sub, b[30:0]} : 32'd0), .y(sum));
  fp32_mul u_mul (.a(use_mul ? a : 32'd0), .b(use_mul ? b : 32'd0), .y(product));
  fp32_exp u_exp (.a(use_exp ? a : 32'd0), .y(exponential));
  fp32_recip u_recip (.a(use_recip ? a : 32'd0), .y(reciprocal));
  fp32_rsqrt u_rsqrt (.a(use_rsqrt ? a : 32'd0), .y(root));
  int32_to_fp32 u_from_int (.a(use_from_int ? int_a : 32'd0), .y(from_int));
  fp32_to_int32 u_to_int (.a(use_to_int ? a : 32'd0), .y(to_int), .is_nan(to_int_nan));

  // IEEE comparisons on sign-magnitude codes
  wire a_nan = (a[30:23] == 8'hFF) && (a[22:0] != 23'd0);
  wire b_nan = (b[30:23] == 8'hFF) && (b[22:0] != 23'd0);
  wire both_zero = (a[30:0] == 31'd0) && (b[30:0] == 31'd0);
  wire equal = !a_nan && !b_nan && (both_zero || a == b);
  wire magnitude_less = a[30:0] < b[30:0];
  wire magnitude_greater = a[30:0] > b[30:0];
  wire less = !a_nan && !b_nan && !both_zero &&
              ((a[31] && !b[31]) || (!a[31] && !b[31] && magnitude_less) || (a[31] && b[31] && magnitude_greater));
`ifdef DNPU_MUTANT_FMAX_ZERO
  wire greater = !a_nan && !b_nan && !equal && !less || (both_zero && !a[31]);  // max(+0, -0) = +0
`else
  wire greater = !a_nan && !b_nan && !both_zero && !equal && !less;
`endif

  assign nan_fault = (mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FCVT_I_F) && to_int_nan;

  always @* begin
    fp_result = 32'd0;
    int_result = 32'd0;
    writes_int = 1'b0;
    case (mnemonic)
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FADD,
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FSUB:     fp_result = sum;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMUL:     fp_result = product;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMAX:     fp_result = a_nan ? a : b_nan ? b : greater ? a : b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMIN:     fp_result = a_nan ? a : b_nan ? b : less ? a : b;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMOV:     fp_result = a;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FNEG:     fp_result = {~a[31], a[30:0]};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FABS:     fp_result = {1'b0, a[30:0]};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FEXP:     fp_result = exponential;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FRECIP:   fp_result = reciprocal;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FRSQRT:   fp_result = root;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FCVT_F_I: fp_result = from_int;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMV_F_I:  fp_result = int_a;
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FLUI:     fp_result = {bf16, 16'd0};
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FCVT_I_F: begin int_result = to_int; writes_int = 1'b1; end
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FMV_I_F:  begin int_result = a; writes_int = 1'b1; end
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FLT:      begin int_result = {31'd0, less}; writes_int = 1'b1; end
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FLE:      begin int_result = {31'd0, less || equal}; writes_int = 1'b1; end
      `DNPU_MNEMONIC_BITS'd`DNPU_MN_FEQ:      begin int_result = {31'd0, equal}; writes_int = 1'b1; end
      default: ;
    endcase
  end
endmodule
`default_nettype wire
