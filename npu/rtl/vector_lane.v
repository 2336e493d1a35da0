// vector_lane: the per-lane arithmetic of the vector unit: one element of every element-wise,
// special-function, vector-scalar, conversion and dLLM-select instruction, as
// npu/sim/functional/vector.py computes it in float32 (numpy) and npu.hw.numerics.
// Combinational; vector_unit rounds `y` to the vector SRAM format.
//
// Operands (vector_unit maps each instruction's operands onto them; docs/rtl.md has the table):
//   a, b      this lane of the first / second vector row, as fp32 (vs1 / vs, vs2; vtopk: velig;
//             vthresh: vconf, velig)
//   scalar_f  an fp register: fs (vector-scalar ops, vbcast), tau (vthresh)
//   scalar_i  an int register: rs (vieq), k (vtopk)
//   word      this lane's FP / INT SRAM word: fsrc (vldf), isrc (vldi, vieq), vrank (vtopk)
// Results: y (fp32, for the vector row), word_y (vstf: the fp32 element, vsti: the int32 value),
// nan_to_int (vsti of a NaN, which faults), bad_mode (vsmscale with an undefined mode).
//
// Max and min are numerics.hw_maximum / hw_minimum: a NaN operand gives a NaN (a's if a is one),
// and of two equal values (+0 and -0) the second operand is returned: max(a, b) = a > b ? a : b.
// The fp32 units' inputs are held at zero unless their instruction is selected (operand
// isolation: idle units do not toggle).
//
// Define DNPU_MUTANT_VMAX_LANE0_GE to make lane 0's max use a >= b (mutation check: returns the
// first of two equal values, so max(+0, -0) becomes +0).
`default_nettype none
`include "dnpu_numerics.vh"
`include "dnpu_vector_ops.vh"
module vector_lane #(
    /* verilator lint_off UNUSEDPARAM */
    parameter LANE = 0  // position in the row (only the mutation check looks at it)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  wire [`DNPU_VOP_COUNT-1:0] op,
    input  wire [2:0]  mode,
    input  wire [31:0] a,
    input  wire [31:0] b,
    input  wire [31:0] scalar_f,
    input  wire [31:0] scalar_i,
    input  wire [31:0] word,
    output reg  [31:0] y,
    output reg  [31:0] word_y,
    output wire        nan_to_int,
    output wire        bad_mode
);
  localparam [31:0] SIGN = 32'h80000000;
  localparam [31:0] ONE = `DNPU_FP32_ONE;

  // ---- the second operand: vs2, |vs2| (vamax) or the fp register --------------------------------
  wire with_scalar = op[`DNPU_VOP_VADDS] | op[`DNPU_VOP_VSUBS] | op[`DNPU_VOP_VMULS] | op[`DNPU_VOP_VMAXS]
                   | op[`DNPU_VOP_VMINS] | op[`DNPU_VOP_VGES] | op[`DNPU_VOP_VGTS] | op[`DNPU_VOP_VTHRESH];
  wire [31:0] second = with_scalar ? scalar_f : (op[`DNPU_VOP_VAMAX] ? (b & ~SIGN) : b);
  wire a_nan = (a[30:23] == 8'hFF) && (a[22:0] != 23'd0);

  // ---- fp32 units ----------------------------------------------------------------------------------
  wire subtract = op[`DNPU_VOP_VSUB] | op[`DNPU_VOP_VSUBS];
  wire use_add = op[`DNPU_VOP_VADD] | op[`DNPU_VOP_VADDS] | subtract;
  wire [31:0] sum;
  fp32_add u_add (.a(use_add ? a : 32'd0), .b(use_add ? (second ^ (subtract ? SIGN : 32'd0)) : 32'd0), .y(sum));

  wire smoothing = op[`DNPU_VOP_VSMSCALE];
  wire [31:0] safe, rsqrt_y, product, smoothed;
  wire use_mul = op[`DNPU_VOP_VMUL] | op[`DNPU_VOP_VMULS] | smoothing;
  fp32_mul u_mul (.a(smoothing ? safe : (use_mul ? a : 32'd0)),
                  .b(smoothing ? rsqrt_y : (use_mul ? second : 32'd0)), .y(product));
  fp32_rsqrt u_rsqrt (.a(smoothing ? safe : (op[`DNPU_VOP_VRSQRT] ? a : 32'd0)), .y(rsqrt_y));
  smoothing_factor u_smoothing (.stats(smoothing ? a : 32'd0), .mode(mode), .sqrt_product(product),
                                .safe(safe), .y(smoothed), .bad_mode(bad_mode));

  wire [31:0] exp_y, recip_y, silu_y;
  fp32_exp u_exp (.a(op[`DNPU_VOP_VEXP] ? a : 32'd0), .y(exp_y));
  fp32_recip u_recip (.a(op[`DNPU_VOP_VRECIP] ? a : 32'd0), .y(recip_y));
  fp32_silu u_silu (.a(op[`DNPU_VOP_VSILU] ? a : 32'd0), .y(silu_y));

  // ---- comparisons -------------------------------------------------------------------------------
  wire greater, equal, less, unordered;
  fp32_compare u_compare (.a(a), .b(second), .greater(greater), .equal(equal), .less(less),
                          .unordered(unordered));
`ifdef DNPU_MUTANT_VMAX_LANE0_GE
  wire max_takes_a = (LANE == 0) ? (greater | equal) : greater;
`else
  wire max_takes_a = greater;
`endif
  wire [31:0] maximum = (a_nan || max_takes_a) ? a : second;
  wire [31:0] minimum = (a_nan || less) ? a : second;
  wire [31:0] greater_equal = (greater | equal) ? ONE : 32'd0;

  // ---- conversions and integer tests ---------------------------------------------------------------
  wire [31:0] from_int, to_int;
  wire use_from_int = op[`DNPU_VOP_VLDI];
  int32_to_fp32 u_from_int (.a(use_from_int ? word : 32'd0), .y(from_int));
  fp32_to_int32 u_to_int (.a(op[`DNPU_VOP_VSTI] ? a : 32'd0), .y(to_int), .is_nan(nan_to_int));
  wire a_nonzero = (a[30:0] != 31'd0);  // NaN counts as non-zero, -0 as zero
  wire b_nonzero = (b[30:0] != 31'd0);
  wire rank_below_k = ($signed(word) < $signed(scalar_i));

  always @* begin
    y = 32'd0;
    if (use_add) y = sum;
    if (op[`DNPU_VOP_VMUL] | op[`DNPU_VOP_VMULS]) y = product;
    if (op[`DNPU_VOP_VMAX] | op[`DNPU_VOP_VMAXS] | op[`DNPU_VOP_VAMAX]) y = maximum;
    if (op[`DNPU_VOP_VMIN] | op[`DNPU_VOP_VMINS]) y = minimum;
    if (op[`DNPU_VOP_VGT] | op[`DNPU_VOP_VGTS]) y = greater ? ONE : 32'd0;
    if (op[`DNPU_VOP_VGE] | op[`DNPU_VOP_VGES]) y = greater_equal;
    if (op[`DNPU_VOP_VEQ]) y = equal ? ONE : 32'd0;
    if (op[`DNPU_VOP_VMOV]) y = a;
    if (op[`DNPU_VOP_VNEG]) y = a ^ SIGN;
    if (op[`DNPU_VOP_VABS]) y = a & ~SIGN;
    if (op[`DNPU_VOP_VEXP]) y = exp_y;
    if (op[`DNPU_VOP_VRECIP]) y = recip_y;
    if (op[`DNPU_VOP_VRSQRT]) y = rsqrt_y;
    if (op[`DNPU_VOP_VSILU]) y = silu_y;
    if (op[`DNPU_VOP_VBCAST]) y = scalar_f;
    if (op[`DNPU_VOP_VLDF]) y = word;
    if (use_from_int) y = from_int;
    if (op[`DNPU_VOP_VIEQ]) y = (word == scalar_i) ? ONE : 32'd0;
    if (op[`DNPU_VOP_VTOPK]) y = (a_nonzero && rank_below_k) ? ONE : 32'd0;
    if (op[`DNPU_VOP_VTHRESH]) y = (b_nonzero && (greater | equal)) ? ONE : 32'd0;
    if (smoothing) y = smoothed;
    word_y = op[`DNPU_VOP_VSTI] ? to_int : a;  // vstf stores the element as fp32
  end

  // NaN operands are handled by the comparisons and a_nan; the row moves and reductions are
  // vector_unit's, not the lane's.
  wire unused = unordered | (|op);
endmodule
`default_nettype wire
