// vector_unit: the dnpu vector unit's datapath, VLEN lanes, every VECTOR instruction of
// npu/isa/table.py bit for bit as npu/sim/functional/vector.py and npu.hw.numerics define it.
// The memory system is outside: the unit takes the operand rows the instruction reads and
// returns the rows and scalars it writes; docs/rtl.md maps each instruction's operands to ports.
//
// Formats: vector SRAM rows hold VECTOR_BITS-bit elements (16: bf16, 32: fp32, the preset's
// `formats.vector`); FP / INT SRAM rows hold 32-bit words (fp32 / int32). The lanes compute in
// fp32 and results bound for vector SRAM are rounded to the vector format (fp32_to_bf16, as
// Sram.round). Raw moves (vrothalf, vsel) copy elements unrounded, as the simulator does.
//
// Handshake and timing (clk, synchronous active-high rst):
//   - an instruction enters when in_valid && in_ready (opcode / funct decoded by the generated
//     vector_op_decode, operands sampled into the input register);
//   - every instruction but vrank yields its result 2 cycles after the cycle it entered in
//     (input register, combinational datapath, output register), one instruction per cycle;
//   - vrank steps its ranking network VLEN / RANK_STEP_LANES cycles, with in_ready low until its
//     last step; its result appears VLEN / RANK_STEP_LANES + 1 cycles after it entered;
//   - out_valid marks a result; out_row_we / out_words_we / out_f_we / out_i_we say which
//     destinations it writes; out_fault (with no write) marks an instruction the simulator
//     faults on: vsti of a NaN, vrothalf with 2^glog2 outside [2, VLEN], vsmscale with an
//     undefined mode, or a word that is no vector instruction.
//   - vsum / vmaxr / vargmax read their accumulating fp / int registers (scalar_f, scalar_i) when
//     they enter: back-to-back chained reductions need the previous result forwarded by the core.
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_vector_ops.vh"
module vector_unit #(
    parameter VLEN = 8,             // lanes (a power of two, >= 2)
    parameter VECTOR_BITS = 16,     // vector SRAM element: 16 = bf16, 32 = fp32
    parameter RANK_STEP_LANES = 4   // vrank: lanes of the other row compared per cycle (divides VLEN)
) (
    input  wire                            clk,
    input  wire                            rst,
    input  wire                            in_valid,
    output wire                            in_ready,
    input  wire [`DNPU_OPCODE_WIDTH-1:0]   opcode,
    input  wire [`DNPU_FUNCT_WIDTH-1:0]    funct,
    input  wire [`DNPU_VSMSCALE_MODE_WIDTH-1:0]  mode,    // vsmscale mode field
    input  wire [`DNPU_VROTHALF_GLOG2_WIDTH-1:0] glog2,   // vrothalf glog2 field
    input  wire [VECTOR_BITS*VLEN-1:0]     row_a,     // vector SRAM rows, lane i in bits [VECTOR_BITS*i +: VECTOR_BITS]
    input  wire [VECTOR_BITS*VLEN-1:0]     row_b,
    input  wire [VECTOR_BITS*VLEN-1:0]     row_c,
    input  wire [32*VLEN-1:0]              words_a,   // FP / INT SRAM rows, lane i in bits [32*i +: 32]
    input  wire [32*VLEN-1:0]              words_b,
    input  wire [31:0]                     scalar_f,  // fp register operand (fp32)
    input  wire [31:0]                     scalar_i,  // int register operand
    input  wire [31:0]                     addr_a,    // vrank: VEC_SRAM addresses of vcand, vother
    input  wire [31:0]                     addr_b,
    output reg                             out_valid,
    output reg  [VECTOR_BITS*VLEN-1:0]     out_row,
    output reg                             out_row_we,
    output reg  [32*VLEN-1:0]              out_words,
    output reg                             out_words_we,
    output reg  [31:0]                     out_f,
    output reg                             out_f_we,
    output reg  [31:0]                     out_i,
    output reg                             out_i_we,
    output reg                             out_fault
);
  localparam VB = VECTOR_BITS;
  localparam INDEX_BITS = $clog2(VLEN);

  // ---- input register ------------------------------------------------------------------------
  wire [`DNPU_VOP_COUNT-1:0] decoded;
  wire decoded_legal;
  vector_op_decode u_decode (.opcode(opcode), .funct(funct), .op(decoded), .legal(decoded_legal));

  reg in_flight;  // the input register holds an instruction
  reg [`DNPU_VOP_COUNT-1:0] op;
  reg legal;
  reg [`DNPU_VSMSCALE_MODE_WIDTH-1:0] mode_q;
  reg [`DNPU_VROTHALF_GLOG2_WIDTH-1:0] glog2_q;
  reg [VB*VLEN-1:0] a_row, b_row, c_row;
  reg [32*VLEN-1:0] a_words, b_words;
  reg [31:0] f_q, i_q, a_addr, b_addr;

  wire ranking = in_flight && op[`DNPU_VOP_VRANK];
  wire rank_last;
  assign in_ready = !ranking || rank_last;
  wire accept = in_valid && in_ready;
  wire finishing = in_flight && (!ranking || rank_last);

  always @(posedge clk) begin
    if (rst) in_flight <= 1'b0;
    else if (in_ready) in_flight <= in_valid;
    if (accept) begin
      op <= decoded;
      legal <= decoded_legal;
      mode_q <= mode;
      glog2_q <= glog2;
      a_row <= row_a;
      b_row <= row_b;
      c_row <= row_c;
      a_words <= words_a;
      b_words <= words_b;
      f_q <= scalar_f;
      i_q <= scalar_i;
      a_addr <= addr_a;
      b_addr <= addr_b;
    end
  end

  // ---- lanes -----------------------------------------------------------------------------------
  wire [32*VLEN-1:0] a_fp, b_fp;        // the vector rows as fp32
  wire [32*VLEN-1:0] lane_y, lane_word;
  wire [VB*VLEN-1:0] lane_rounded;      // lane_y rounded to the vector format
  wire [VB*VLEN-1:0] selected, rotated; // vsel, vrothalf (raw element moves)
  wire [32*VLEN-1:0] selected_words;    // vseli
  wire [VLEN-1:0] lane_nan_to_int, lane_bad_mode;
  wire [31:0] rotate_group = 32'd1 << glog2_q;
  genvar i, g;
  generate
    for (i = 0; i < VLEN; i = i + 1) begin : lane
      wire [VB-1:0] a_element = a_row[VB*i +: VB];
      wire [VB-1:0] b_element = b_row[VB*i +: VB];
      wire [VB-1:0] mask = c_row[VB*i +: VB];
      if (VB == 16) begin : bf16
        bf16_to_fp32 u_a (.a(a_element), .y(a_fp[32*i +: 32]));
        bf16_to_fp32 u_b (.a(b_element), .y(b_fp[32*i +: 32]));
        fp32_to_bf16 u_round (.a(lane_y[32*i +: 32]), .y(lane_rounded[VB*i +: VB]));
      end else begin : fp32
        assign a_fp[32*i +: 32] = a_element;
        assign b_fp[32*i +: 32] = b_element;
        assign lane_rounded[VB*i +: VB] = lane_y[32*i +: 32];
      end
      vector_lane #(.LANE(i)) u_lane (
          .op(op), .mode(mode_q), .a(a_fp[32*i +: 32]), .b(b_fp[32*i +: 32]), .scalar_f(f_q), .scalar_i(i_q),
          .word(a_words[32*i +: 32]), .y(lane_y[32*i +: 32]), .word_y(lane_word[32*i +: 32]),
          .nan_to_int(lane_nan_to_int[i]), .bad_mode(lane_bad_mode[i]));
      // vsel / vseli: a non-zero mask element (NaN included, -0 not) selects the first source.
      wire take_first = (mask[VB-2:0] != {(VB-1){1'b0}});
      wire unused = mask[VB-1];  // the sign of a zero mask does not matter
      assign selected[VB*i +: VB] = take_first ? a_element : b_element;
      assign selected_words[32*i +: 32] = take_first ? a_words[32*i +: 32] : b_words[32*i +: 32];
      // vrothalf: in each group of G = 2^glog2 lanes, lane j takes -x[j + G/2] (first half) or
      // x[j - G/2] (second half); one permutation per legal G, selected by glog2.
      wire [VB*16-1:0] by_group;  // candidate for glog2 = g in bits [VB*g +: VB]
      for (g = 0; g < 16; g = g + 1) begin : group
        if (g >= 1 && (1 << g) <= VLEN) begin : legal_group
          localparam HALF = (1 << g) / 2;
          if ((i % (1 << g)) < HALF) begin : first_half
            assign by_group[VB*g +: VB] = a_row[VB*(i + HALF) +: VB] ^ {1'b1, {(VB-1){1'b0}}};
          end else begin : second_half
            assign by_group[VB*g +: VB] = a_row[VB*(i - HALF) +: VB];
          end
        end else begin : no_group
          assign by_group[VB*g +: VB] = {VB{1'b0}};
        end
      end
      assign rotated[VB*i +: VB] = by_group[VB*glog2_q +: VB];
    end
  endgenerate

  // ---- reductions --------------------------------------------------------------------------------
  wire [31:0] row_sum, row_max, best_value;
  wire [INDEX_BITS-1:0] best_lane;
  vector_sum_tree #(.N(VLEN)) u_sum (.x(op[`DNPU_VOP_VSUM] ? a_fp : {32*VLEN{1'b0}}), .y(row_sum));
  vector_max_tree #(.N(VLEN)) u_max (.x(op[`DNPU_VOP_VMAXR] ? a_fp : {32*VLEN{1'b0}}), .y(row_max));
  vector_argmax_tree #(.N(VLEN), .INDEX_BITS(INDEX_BITS)) u_argmax (
      .x(op[`DNPU_VOP_VARGMAX] ? a_fp : {32*VLEN{1'b0}}), .y(best_value), .index(best_lane));
  wire [31:0] chained_sum;
  fp32_add u_chain (.a(op[`DNPU_VOP_VSUM] ? f_q : 32'd0), .b(row_sum), .y(chained_sum));
  // vmaxr: hw_maximum(fd, hw_max_reduce(row)) (a tie returns the row's value).
  wire f_nan = (f_q[30:23] == 8'hFF) && (f_q[22:0] != 23'd0);
  wire max_greater, max_equal, max_less, max_unordered;
  fp32_compare u_chain_max (.a(f_q), .b(row_max), .greater(max_greater), .equal(max_equal), .less(max_less),
                            .unordered(max_unordered));
  wire [31:0] chained_max = (f_nan || max_greater) ? f_q : row_max;
  // vargmax: the row's best replaces fmax only when strictly greater.
  wire best_greater, best_equal, best_less, best_unordered;
  fp32_compare u_best (.a(best_value), .b(f_q), .greater(best_greater), .equal(best_equal), .less(best_less),
                       .unordered(best_unordered));
  wire [31:0] best_index = i_q + {{(32-INDEX_BITS){1'b0}}, best_lane};

  // ---- vrank -------------------------------------------------------------------------------------
  wire [32*VLEN-1:0] ranks;
  vector_rank #(.VLEN(VLEN), .STEP_LANES(RANK_STEP_LANES)) u_rank (
      .clk(clk), .rst(rst), .enable(ranking), .cand(ranking ? a_fp : {32*VLEN{1'b0}}),
      .other(ranking ? b_fp : {32*VLEN{1'b0}}), .ranks_in(a_words), .other_first(b_addr < a_addr),
      .same_row(b_addr == a_addr), .last(rank_last), .ranks_out(ranks));

  // ---- results -----------------------------------------------------------------------------------
  // Instructions whose result is not a vector row (every other one writes out_row).
  wire no_row = op[`DNPU_VOP_VSUM] | op[`DNPU_VOP_VMAXR] | op[`DNPU_VOP_VARGMAX] | op[`DNPU_VOP_VSTF]
              | op[`DNPU_VOP_VSTI] | op[`DNPU_VOP_VSELI] | op[`DNPU_VOP_VRANK];
  wire bad_group = op[`DNPU_VOP_VROTHALF] && (glog2_q == 0 || rotate_group > VLEN);
  wire fault = !legal || (op[`DNPU_VOP_VSTI] && |lane_nan_to_int) || bad_group
             || (op[`DNPU_VOP_VSMSCALE] && |lane_bad_mode);

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
      out_row_we <= 1'b0;
      out_words_we <= 1'b0;
      out_f_we <= 1'b0;
      out_i_we <= 1'b0;
      out_fault <= 1'b0;
    end else begin
      out_valid <= finishing;
      out_fault <= finishing && fault;
      out_row_we <= finishing && !fault && legal && !no_row;
      out_words_we <= finishing && !fault && (op[`DNPU_VOP_VSTF] || op[`DNPU_VOP_VSTI] || op[`DNPU_VOP_VSELI]
                                             || op[`DNPU_VOP_VRANK]);
      out_f_we <= finishing && !fault && (op[`DNPU_VOP_VSUM] || op[`DNPU_VOP_VMAXR]
                                         || (op[`DNPU_VOP_VARGMAX] && best_greater));
      out_i_we <= finishing && !fault && op[`DNPU_VOP_VARGMAX] && best_greater;
    end
    if (finishing) begin
      out_row <= op[`DNPU_VOP_VROTHALF] ? rotated : (op[`DNPU_VOP_VSEL] ? selected : lane_rounded);
      out_words <= op[`DNPU_VOP_VRANK] ? ranks : (op[`DNPU_VOP_VSELI] ? selected_words : lane_word);
      out_f <= op[`DNPU_VOP_VSUM] ? chained_sum : (op[`DNPU_VOP_VMAXR] ? chained_max : best_value);
      out_i <= best_index;
    end
  end

  wire unused = max_equal | max_less | max_unordered | best_equal | best_less | best_unordered
              | 1'b0;
endmodule
`default_nettype wire
