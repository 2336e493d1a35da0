// vector_sequencer: the vector unit of npu_top around the vector_unit datapath. For each vector
// instruction popped from its issue queue it checks the rows it touches (bounds, vector-row
// alignment: npu/sim/functional/vector.py's row_checker), reads its operand rows from the vector
// SRAM and the FP / INT SRAMs (the routing is the generated vector_operand_plan, from the ISA
// table), runs vector_unit, and writes the result row back, or the registers it returns (vsum /
// vmaxr fd, vargmax fmax / ridx, ISA rule 3: the accumulated FP register is read from the core's
// register file when the instruction enters the unit).
//
// Pipelined, in order, up to IN_FLIGHT instructions past the read stage:
//   read (C): the check (combinational, in the instruction's first cycle), then the operand reads,
//     one vector-SRAM row and one FP / INT row per cycle side by side (each granted by the top's
//     port arbiter; data the cycle after). It starts only when no older instruction still in
//     flight writes a row, word row or FP register it reads (read-after-write; same-unit order,
//     ISA rule 1), and overlaps the older instructions' execution and write-back;
//   enter (X): the cycle after its last read the instruction enters vector_unit, its last operand
//     straight from the SRAM (vector_unit: result 2 cycles later, one instruction per cycle;
//     vrank VLEN / RANK_STEP_LANES + 1, not pipelined); the accumulated FP register of a chained
//     vsum / vmaxr / vargmax is forwarded from the older instruction's queued result;
//   write-back: results queue in order (IN_FLIGHT entries) and write their row or words (one
//     cycle when granted; a write-back has the sequencer's port before the next reads) and the
//     registers.
// Faults (npu.rtl.core.CORE_FAULTS): vector_range, vector_alignment (checked in the order
// words_a, words_b, row_a, row_b, row_c, destination), vector_fault (vector_unit's out_fault:
// vsti of a NaN, a vrothalf group or vsmscale mode out of range); older instructions in flight
// still complete.
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_core.vh"
module vector_sequencer #(
    parameter VLEN = 8,
    parameter VECTOR_BITS = 16,
    parameter RANK_STEP_LANES = 4,
    parameter VECTOR_WORDS = 1024,
    parameter FP_WORDS = 256,
    parameter INT_WORDS = 256
) (
    input  wire                          clk,
    input  wire                          reset,
    input  wire                          command_valid,
    output wire                          command_ready,
    input  wire [`DNPU_MNEMONIC_BITS-1:0] command_mnemonic,
    input  wire [31:0]                   command_word,
    input  wire [32*`DNPU_INT_READ_SLOTS-1:0] command_int_operands,
    /* verilator lint_off UNUSEDSIGNAL */  // FP read slot 0 only (fs, tau)
    input  wire [32*`DNPU_FP_READ_SLOTS-1:0]  command_fp_operands,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire                          busy,
    output reg                           fault_valid,
    output reg  [`DNPU_FAULT_BITS-1:0]   fault_code,
    // vector SRAM (one row of VLEN elements)
    output reg                           vector_request,
    output reg                           vector_write,
    output reg  [31:0]                   vector_address,
    output wire [VECTOR_BITS*VLEN-1:0]   vector_write_data,
    input  wire                          vector_grant,
    input  wire [VECTOR_BITS*VLEN-1:0]   vector_read_data,
    // FP and INT SRAM rows (VLEN words)
    output reg                           fp_request,
    output reg                           fp_write,
    output reg  [31:0]                   fp_address,
    output wire [32*VLEN-1:0]            fp_write_data,
    input  wire                          fp_grant,
    input  wire [32*VLEN-1:0]            fp_read_data,
    output reg                           int_request,
    output reg                           int_write,
    output reg  [31:0]                   int_address,
    output wire [32*VLEN-1:0]            int_write_data,
    input  wire                          int_grant,
    input  wire [32*VLEN-1:0]            int_read_data,
    // the core's register files
    output wire [2:0]                    fp_register_read_index,
    input  wire [31:0]                   fp_register_read_data,
    output wire                          fp_register_write_enable,
    output wire [2:0]                    fp_register_write_index,
    output wire [31:0]                   fp_register_write_data,
    output wire                          int_register_write_enable,
    output wire [3:0]                    int_register_write_index,
    output wire [31:0]                   int_register_write_data
);
  localparam SLOTS = `DNPU_INT_READ_SLOTS;
  localparam IN_FLIGHT = 3;   // instructions past the read stage (enter, unit, write-back queue)
  localparam RB = VECTOR_BITS * VLEN;
  localparam WB = 32 * VLEN;

  function [31:0] slot_value(input [32*SLOTS-1:0] values, input [2:0] slot);
    slot_value = values[slot*32 +: 32];
  endfunction
  function outside(input [31:0] at, input [31:0] size);  // at < 0 or at + VLEN > size (signed at)
    outside = at[31] || ({1'b0, at} + VLEN > {1'b0, size});
  endfunction
  function misaligned(input [31:0] at);
    misaligned = (at & (VLEN - 1)) != 32'd0;
  endfunction
  function overlaps(input [31:0] a, input [31:0] b);   // [a, a + VLEN) and [b, b + VLEN) meet
    overlaps = ({1'b0, a} < {1'b0, b} + VLEN) && ({1'b0, b} < {1'b0, a} + VLEN);
  endfunction

  // ---- read stage (C) ------------------------------------------------------------------------
  reg c_valid, c_fresh;
  reg [`DNPU_MNEMONIC_BITS-1:0] mnemonic;
  reg [31:0] word;
  reg [32*SLOTS-1:0] operands;
  reg [31:0] fp_operand;
  assign command_ready = !c_valid;

  wire row_a_valid, row_b_valid, row_c_valid, words_a_valid, words_b_valid, dest_row_valid;
  /* verilator lint_off UNUSEDSIGNAL */  // the scalar operands are X's
  wire scalar_i_valid, scalar_f_valid, scalar_f_register;
  wire [2:0] scalar_i_slot;
  /* verilator lint_on UNUSEDSIGNAL */
  wire dest_words_valid, words_a_int, words_b_int, dest_words_int;
  wire fp_write_back, int_write_back, known;
  wire [2:0] row_a_slot, row_b_slot, row_c_slot, words_a_slot, words_b_slot, dest_row_slot;
  wire [2:0] dest_words_slot, fp_index;
  wire [3:0] int_index;
  vector_operand_plan u_plan (
      .mnemonic(mnemonic), .word(word),
      .row_a_valid(row_a_valid), .row_a_slot(row_a_slot), .row_b_valid(row_b_valid), .row_b_slot(row_b_slot),
      .row_c_valid(row_c_valid), .row_c_slot(row_c_slot), .words_a_valid(words_a_valid),
      .words_a_slot(words_a_slot), .words_b_valid(words_b_valid), .words_b_slot(words_b_slot),
      .scalar_i_valid(scalar_i_valid), .scalar_i_slot(scalar_i_slot), .dest_row_valid(dest_row_valid),
      .dest_row_slot(dest_row_slot), .dest_words_valid(dest_words_valid), .dest_words_slot(dest_words_slot),
      .words_a_int(words_a_int), .words_b_int(words_b_int), .dest_words_int(dest_words_int),
      .scalar_f_valid(scalar_f_valid), .scalar_f_register(scalar_f_register), .fp_write(fp_write_back),
      .fp_index(fp_index), .int_write(int_write_back), .int_index(int_index), .known(known));
  wire [31:0] row_a_at = slot_value(operands, row_a_slot), row_b_at = slot_value(operands, row_b_slot);
  wire [31:0] row_c_at = slot_value(operands, row_c_slot), words_a_at = slot_value(operands, words_a_slot);
  wire [31:0] words_b_at = slot_value(operands, words_b_slot), dest_row_at = slot_value(operands, dest_row_slot);
  wire [31:0] dest_words_at = slot_value(operands, dest_words_slot);

  // checks: the first failing one in the order the functional simulator's handlers run them
  wire [31:0] words_a_size = words_a_int ? INT_WORDS : FP_WORDS;
  wire [31:0] dest_words_size = dest_words_int ? INT_WORDS : FP_WORDS;
  reg check_fault;
  reg [`DNPU_FAULT_BITS-1:0] check_code;
  always @* begin
    check_fault = 1'b1;
    check_code = `DNPU_FAULT_VECTOR_RANGE;
    if (!known) check_code = `DNPU_FAULT_VECTOR_FAULT;
    else if (words_a_valid && outside(words_a_at, words_a_size)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (words_b_valid && outside(words_b_at, INT_WORDS)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (row_a_valid && outside(row_a_at, VECTOR_WORDS)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (row_a_valid && misaligned(row_a_at)) check_code = `DNPU_FAULT_VECTOR_ALIGNMENT;
    else if (row_b_valid && outside(row_b_at, VECTOR_WORDS)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (row_b_valid && misaligned(row_b_at)) check_code = `DNPU_FAULT_VECTOR_ALIGNMENT;
    else if (row_c_valid && outside(row_c_at, VECTOR_WORDS)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (row_c_valid && misaligned(row_c_at)) check_code = `DNPU_FAULT_VECTOR_ALIGNMENT;
    else if (dest_row_valid && outside(dest_row_at, VECTOR_WORDS)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else if (dest_row_valid && misaligned(dest_row_at)) check_code = `DNPU_FAULT_VECTOR_ALIGNMENT;
    else if (dest_words_valid && outside(dest_words_at, dest_words_size)) check_code = `DNPU_FAULT_VECTOR_RANGE;
    else check_fault = 1'b0;
  end

  // ---- instructions in flight: their destinations (for hazards and the write-back) -----------
  reg [IN_FLIGHT-1:0] m_valid;
  reg [1:0] m_head, m_tail;
  reg m_row [0:IN_FLIGHT-1];
  reg m_words [0:IN_FLIGHT-1];
  reg m_words_int [0:IN_FLIGHT-1];
  reg m_fp [0:IN_FLIGHT-1];
  reg m_int [0:IN_FLIGHT-1];
  reg [31:0] m_row_at [0:IN_FLIGHT-1];
  reg [31:0] m_words_at [0:IN_FLIGHT-1];
  reg [2:0] m_fp_index [0:IN_FLIGHT-1];
  reg [3:0] m_int_index [0:IN_FLIGHT-1];
  // read-after-write: a row or word row this instruction reads is still to be written (the
  // accumulated FP register is forwarded to X instead, below)
  reg hazard;
  integer e;
  always @* begin
    hazard = 1'b0;
    for (e = 0; e < IN_FLIGHT; e = e + 1)
      if (m_valid[e]) begin
        if (m_row[e] && ((row_a_valid && overlaps(row_a_at, m_row_at[e])) || (row_b_valid && overlaps(row_b_at, m_row_at[e]))
                         || (row_c_valid && overlaps(row_c_at, m_row_at[e])))) hazard = 1'b1;
        if (m_words[e] && ((words_a_valid && words_a_int == m_words_int[e] && overlaps(words_a_at, m_words_at[e]))
                           || (words_b_valid && words_b_int == m_words_int[e] && overlaps(words_b_at, m_words_at[e]))))
          hazard = 1'b1;
      end
  end

  // ---- enter stage (X) -------------------------------------------------------------------------
  reg x_valid;
  reg [1:0] x_slot;   // X's entry in the in-flight list
  reg [`DNPU_MNEMONIC_BITS-1:0] x_mnemonic;
  reg [31:0] x_word;
  reg [32*SLOTS-1:0] x_operands;
  reg [31:0] x_fp_operand;
  wire x_row_a_valid, x_row_b_valid, x_row_c_valid, x_words_a_valid, x_words_b_valid, x_scalar_i_valid;
  wire x_scalar_f_valid, x_scalar_f_register;
  wire [2:0] x_row_a_slot, x_row_b_slot, x_scalar_i_slot, x_fp_index;
  /* verilator lint_off UNUSEDSIGNAL */  // X needs only the operand roles
  wire [2:0] x_row_c_slot, x_words_a_slot, x_words_b_slot, x_dest_row_slot, x_dest_words_slot;
  wire x_dest_row_valid, x_dest_words_valid, x_words_a_int, x_words_b_int, x_dest_words_int;
  wire x_fp_write, x_int_write, x_known;
  wire [3:0] x_int_index;
  /* verilator lint_on UNUSEDSIGNAL */
  vector_operand_plan u_x_plan (
      .mnemonic(x_mnemonic), .word(x_word),
      .row_a_valid(x_row_a_valid), .row_a_slot(x_row_a_slot), .row_b_valid(x_row_b_valid), .row_b_slot(x_row_b_slot),
      .row_c_valid(x_row_c_valid), .row_c_slot(x_row_c_slot), .words_a_valid(x_words_a_valid),
      .words_a_slot(x_words_a_slot), .words_b_valid(x_words_b_valid), .words_b_slot(x_words_b_slot),
      .scalar_i_valid(x_scalar_i_valid), .scalar_i_slot(x_scalar_i_slot), .dest_row_valid(x_dest_row_valid),
      .dest_row_slot(x_dest_row_slot), .dest_words_valid(x_dest_words_valid), .dest_words_slot(x_dest_words_slot),
      .words_a_int(x_words_a_int), .words_b_int(x_words_b_int), .dest_words_int(x_dest_words_int),
      .scalar_f_valid(x_scalar_f_valid), .scalar_f_register(x_scalar_f_register), .fp_write(x_fp_write),
      .fp_index(x_fp_index), .int_write(x_int_write), .int_index(x_int_index), .known(x_known));

  // ---- operand reads: pending[0..4] = words_a, words_b, row_a, row_b, row_c ----------------
  reg [4:0] pending;
  wire [4:0] c_pending = c_fresh ? {row_c_valid, row_b_valid, row_a_valid, words_b_valid, words_a_valid} : pending;
  reg [RB-1:0] row_a, row_b, row_c;
  reg [WB-1:0] words_a, words_b;
  reg [2:0] vector_capture, word_capture;   // role read last cycle (0: none; 3..5 rows, 1..2 words)
  reg       word_capture_int;
  wire [2:0] next_vector_role = c_pending[2] ? 3'd3 : c_pending[3] ? 3'd4 : c_pending[4] ? 3'd5 : 3'd0;
  wire [2:0] next_word_role = c_pending[0] ? 3'd1 : c_pending[1] ? 3'd2 : 3'd0;
  wire next_word_int = next_word_role == 3'd1 ? words_a_int : words_b_int;
  // the operands as X sees them: this cycle's read data for the role read last cycle
  wire [WB-1:0] word_data = word_capture_int ? int_read_data : fp_read_data;
  wire [RB-1:0] x_row_a = vector_capture == 3'd3 ? vector_read_data : row_a;
  wire [RB-1:0] x_row_b = vector_capture == 3'd4 ? vector_read_data : row_b;
  wire [RB-1:0] x_row_c = vector_capture == 3'd5 ? vector_read_data : row_c;
  wire [WB-1:0] x_words_a = word_capture == 3'd1 ? word_data : words_a;
  wire [WB-1:0] x_words_b = word_capture == 3'd2 ? word_data : words_b;

  // ---- vector_unit -------------------------------------------------------------------------
  wire unit_ready, out_valid, out_row_we, out_words_we, out_f_we, out_i_we, out_fault;
  wire [RB-1:0] out_row;
  wire [WB-1:0] out_words;
  wire [31:0] out_f, out_i;
  wire [31:0] x_row_a_at = slot_value(x_operands, x_row_a_slot), x_row_b_at = slot_value(x_operands, x_row_b_slot);
  wire [31:0] x_scalar_i = slot_value(x_operands, x_scalar_i_slot);
  // ---- results queue (in order; entry i belongs to in-flight entry i: both fill in order and
  // retire together) ---------------------------------------------------------------------------
  reg [IN_FLIGHT-1:0] r_valid;
  reg [1:0] r_head, r_tail;
  reg [RB-1:0] r_row [0:IN_FLIGHT-1];
  reg [WB-1:0] r_words [0:IN_FLIGHT-1];
  reg [31:0] r_f [0:IN_FLIGHT-1];
  reg [31:0] r_i [0:IN_FLIGHT-1];
  reg r_row_we [0:IN_FLIGHT-1];
  reg r_words_we [0:IN_FLIGHT-1];
  reg r_f_we [0:IN_FLIGHT-1];
  reg r_i_we [0:IN_FLIGHT-1];
  reg r_fault [0:IN_FLIGHT-1];
  // The accumulated FP register (vsum / vmaxr / vargmax, ISA rule 3) as X enters: the youngest
  // older instruction in flight that writes it forwards its queued result; X waits while that
  // result is not queued yet (or writes no register: vargmax finding no greater value).
  reg x_fp_wait, x_fp_forward;
  reg [31:0] x_fp_value;
  reg [1:0] walk;
  integer k;
  always @* begin
    x_fp_wait = 1'b0;
    x_fp_forward = 1'b0;
    x_fp_value = fp_register_read_data;
    walk = m_head;
    for (k = 0; k < IN_FLIGHT; k = k + 1) begin
      if (m_valid[walk] && walk != x_slot && m_fp[walk] && m_fp_index[walk] == x_fp_index) begin
        x_fp_forward = r_valid[walk] && !r_fault[walk] && r_f_we[walk];
        x_fp_wait = !x_fp_forward;
        if (x_fp_forward) x_fp_value = r_f[walk];
      end
      walk = walk == 2'(IN_FLIGHT - 1) ? 2'd0 : walk + 2'd1;
    end
  end
  wire x_fp_stall = x_scalar_f_valid && x_scalar_f_register && x_fp_wait;
  wire [31:0] x_scalar_f = x_scalar_f_register ? x_fp_value : x_fp_operand;
  wire x_enters = x_valid && unit_ready && !x_fp_stall;
  vector_unit #(.VLEN(VLEN), .VECTOR_BITS(VECTOR_BITS), .RANK_STEP_LANES(RANK_STEP_LANES)) u_unit (
      .clk(clk), .rst(reset), .in_valid(x_valid && !x_fp_stall), .in_ready(unit_ready),
      .opcode(x_word[`DNPU_OPCODE_LSB +: `DNPU_OPCODE_WIDTH]), .funct(x_word[`DNPU_FUNCT_LSB +: `DNPU_FUNCT_WIDTH]),
      .mode(x_word[`DNPU_VSMSCALE_MODE_LSB +: `DNPU_VSMSCALE_MODE_WIDTH]),
      .glog2(x_word[`DNPU_VROTHALF_GLOG2_LSB +: `DNPU_VROTHALF_GLOG2_WIDTH]),
      .row_a(x_row_a_valid ? x_row_a : {RB{1'b0}}), .row_b(x_row_b_valid ? x_row_b : {RB{1'b0}}),
      .row_c(x_row_c_valid ? x_row_c : {RB{1'b0}}), .words_a(x_words_a_valid ? x_words_a : {WB{1'b0}}),
      .words_b(x_words_b_valid ? x_words_b : {WB{1'b0}}),
      .scalar_f(x_scalar_f_valid ? x_scalar_f : 32'd0), .scalar_i(x_scalar_i_valid ? x_scalar_i : 32'd0),
      .addr_a(x_row_a_at), .addr_b(x_row_b_at), .out_valid(out_valid), .out_row(out_row), .out_row_we(out_row_we),
      .out_words(out_words), .out_words_we(out_words_we), .out_f(out_f), .out_f_we(out_f_we), .out_i(out_i),
      .out_i_we(out_i_we), .out_fault(out_fault));
  assign fp_register_read_index = x_fp_index;

  // ---- write-back of the oldest result ---------------------------------------------------------
  wire head = r_valid[r_head];
  wire head_row = head && !r_fault[r_head] && m_row[m_head] && r_row_we[r_head];
  wire head_words = head && !r_fault[r_head] && !head_row && m_words[m_head] && r_words_we[r_head];
  wire head_words_int = m_words_int[m_head];
  wire head_done = head && (head_row ? vector_grant : head_words ? (head_words_int ? int_grant : fp_grant) : 1'b1);
  wire head_ok = head_done && !r_fault[r_head];
  assign fp_register_write_enable = head_ok && m_fp[m_head] && r_f_we[r_head];
  assign fp_register_write_index = m_fp_index[m_head];
  assign fp_register_write_data = r_f[r_head];
  assign int_register_write_enable = head_ok && m_int[m_head] && r_i_we[r_head];
  assign int_register_write_index = m_int_index[m_head];
  assign int_register_write_data = r_i[r_head];
  assign vector_write_data = r_row[r_head];
  assign fp_write_data = r_words[r_head];
  assign int_write_data = r_words[r_head];

  // ---- the read stage's progress ---------------------------------------------------------------
  wire [1:0] in_flight = 2'(m_valid[0]) + 2'(m_valid[1]) + 2'(m_valid[2]);
  // C may read: checked, no hazard, room in flight, and X free (its operands live in the capture
  // registers until it enters)
  wire c_go = c_valid && !check_fault && !hazard && in_flight != 2'(IN_FLIGHT) && (!x_valid || x_enters);
  wire c_vector_read = c_go && next_vector_role != 3'd0 && !head_row;
  wire c_word_read = c_go && next_word_role != 3'd0 && !head_words;
  wire c_vector_granted = c_vector_read && vector_grant;
  wire c_word_granted = c_word_read && (next_word_int ? int_grant : fp_grant);
  reg [4:0] c_granted_bits;
  always @* begin
    c_granted_bits = 5'd0;
    if (c_vector_granted) c_granted_bits[next_vector_role - 3'd1] = 1'b1;
    if (c_word_granted) c_granted_bits[next_word_role - 3'd1] = 1'b1;
  end
  wire c_to_x = c_go && (c_pending & ~c_granted_bits) == 5'd0;

  // ---- SRAM requests: the oldest result's write first, then the reads --------------------------
  always @* begin
    vector_request = 1'b0;
    vector_write = 1'b0;
    vector_address = m_row_at[m_head];
    fp_request = 1'b0;
    fp_write = 1'b0;
    fp_address = m_words_at[m_head];
    int_request = 1'b0;
    int_write = 1'b0;
    int_address = m_words_at[m_head];
    if (head_row) begin
      vector_request = 1'b1;
      vector_write = 1'b1;
    end else if (c_vector_read) begin
      vector_request = 1'b1;
      vector_address = next_vector_role == 3'd3 ? row_a_at : next_vector_role == 3'd4 ? row_b_at : row_c_at;
    end
    if (head_words) begin
      fp_request = !head_words_int;
      int_request = head_words_int;
      fp_write = 1'b1;
      int_write = 1'b1;
    end else if (c_word_read) begin
      fp_request = !next_word_int;
      int_request = next_word_int;
      fp_address = next_word_role == 3'd1 ? words_a_at : words_b_at;
      int_address = fp_address;
    end
  end

  assign busy = c_valid || m_valid != {IN_FLIGHT{1'b0}};

  always @(posedge clk) begin
    fault_valid <= 1'b0;
    if (reset) begin
      c_valid <= 1'b0;
      x_valid <= 1'b0;
      m_valid <= {IN_FLIGHT{1'b0}};
      r_valid <= {IN_FLIGHT{1'b0}};
      m_head <= 2'd0;
      m_tail <= 2'd0;
      r_head <= 2'd0;
      r_tail <= 2'd0;
      vector_capture <= 3'd0;
      word_capture <= 3'd0;
      fault_code <= `DNPU_FAULT_NONE;
    end else begin
      // capture what was read last cycle
      case (vector_capture)
        3'd3: row_a <= vector_read_data;
        3'd4: row_b <= vector_read_data;
        3'd5: row_c <= vector_read_data;
        default: ;
      endcase
      case (word_capture)
        3'd1: words_a <= word_data;
        3'd2: words_b <= word_data;
        default: ;
      endcase
      vector_capture <= c_vector_granted ? next_vector_role : 3'd0;
      word_capture <= c_word_granted ? next_word_role : 3'd0;
      if (c_word_granted) word_capture_int <= next_word_int;
      // C
      if (!c_valid) begin
        if (command_valid) begin
          c_valid <= 1'b1;
          c_fresh <= 1'b1;
          mnemonic <= command_mnemonic;
          word <= command_word;
          operands <= command_int_operands;
          fp_operand <= command_fp_operands[31:0];
        end
      end else if (c_fresh && check_fault) begin
        fault_valid <= 1'b1;
        fault_code <= check_code;
        c_valid <= 1'b0;
      end else begin
        if (c_go) begin
          c_fresh <= 1'b0;
          pending <= c_pending & ~c_granted_bits;
        end
        if (c_to_x) c_valid <= 1'b0;
      end
      // C -> X, and the instruction's destinations into the in-flight list
      if (x_enters) x_valid <= 1'b0;
      if (c_to_x) begin
        x_valid <= 1'b1;
        x_mnemonic <= mnemonic;
        x_word <= word;
        x_operands <= operands;
        x_fp_operand <= fp_operand;
        x_slot <= m_tail;
        m_valid[m_tail] <= 1'b1;
        m_row[m_tail] <= dest_row_valid;
        m_row_at[m_tail] <= dest_row_at;
        m_words[m_tail] <= dest_words_valid;
        m_words_int[m_tail] <= dest_words_int;
        m_words_at[m_tail] <= dest_words_at;
        m_fp[m_tail] <= fp_write_back;
        m_fp_index[m_tail] <= fp_index;
        m_int[m_tail] <= int_write_back;
        m_int_index[m_tail] <= int_index;
        m_tail <= m_tail == 2'(IN_FLIGHT - 1) ? 2'd0 : m_tail + 2'd1;
      end
      // results
      if (out_valid) begin
        r_valid[r_tail] <= 1'b1;
        r_row[r_tail] <= out_row;
        r_words[r_tail] <= out_words;
        r_f[r_tail] <= out_f;
        r_i[r_tail] <= out_i;
        r_row_we[r_tail] <= out_row_we;
        r_words_we[r_tail] <= out_words_we;
        r_f_we[r_tail] <= out_f_we;
        r_i_we[r_tail] <= out_i_we;
        r_fault[r_tail] <= out_fault;
        r_tail <= r_tail == 2'(IN_FLIGHT - 1) ? 2'd0 : r_tail + 2'd1;
      end
      if (head_done) begin
        if (r_fault[r_head]) begin
          fault_valid <= 1'b1;
          fault_code <= `DNPU_FAULT_VECTOR_FAULT;
        end
        r_valid[r_head] <= 1'b0;
        r_head <= r_head == 2'(IN_FLIGHT - 1) ? 2'd0 : r_head + 2'd1;
        m_valid[m_head] <= 1'b0;
        m_head <= m_head == 2'(IN_FLIGHT - 1) ? 2'd0 : m_head + 2'd1;
      end
    end
  end
endmodule
`default_nettype wire
