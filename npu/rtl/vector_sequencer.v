// vector_sequencer: the vector unit of npu_top around the vector_unit datapath. For each vector
// instruction popped from its issue queue it checks the rows it touches (bounds, vector-row
// alignment: npu/sim/functional/vector.py's row_checker), reads its operand rows from the vector
// SRAM and the FP / INT SRAMs (the routing is the generated vector_operand_plan, from the ISA
// table), runs vector_unit, and writes the result row back, or the registers it returns (vsum /
// vmaxr fd, vargmax fmax / ridx, ISA rule 3: the accumulated FP register is read from the core's
// register file when the instruction executes, so chained vsums see each other's results).
//
// One instruction at a time: check (1 cycle), reads (one vector-SRAM row and one FP / INT row
// per cycle, side by side, each granted by the top's port arbiter; data the cycle after),
// vector_unit (2 cycles; vrank VLEN / RANK_STEP_LANES + 1), write (1 cycle when granted).
// Faults (npu.rtl.core.CORE_FAULTS): vector_range, vector_alignment (checked in the order
// words_a, words_b, row_a, row_b, row_c, destination), vector_fault (vector_unit's out_fault:
// vsti of a NaN, a vrothalf group or vsmscale mode out of range).
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
  localparam [2:0] IDLE = 3'd0, CHECK = 3'd1, READ = 3'd2, EXECUTE = 3'd3, RESULT = 3'd4, WRITE = 3'd5;
  reg [2:0] state;
  reg [`DNPU_MNEMONIC_BITS-1:0] mnemonic;
  reg [31:0] word;
  reg [32*SLOTS-1:0] operands;
  reg [31:0] fp_operand;
  assign command_ready = state == IDLE;
  assign busy = state != IDLE;

  // ---- the plan ----------------------------------------------------------------------------
  wire row_a_valid, row_b_valid, row_c_valid, words_a_valid, words_b_valid, scalar_i_valid, dest_row_valid;
  wire dest_words_valid, words_a_int, words_b_int, dest_words_int, scalar_f_valid, scalar_f_register;
  wire fp_write_back, int_write_back, known;
  wire [2:0] row_a_slot, row_b_slot, row_c_slot, words_a_slot, words_b_slot, scalar_i_slot, dest_row_slot;
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

  function [31:0] slot_value(input [32*SLOTS-1:0] values, input [2:0] slot);
    slot_value = values[slot*32 +: 32];
  endfunction
  wire [31:0] row_a_at = slot_value(operands, row_a_slot), row_b_at = slot_value(operands, row_b_slot);
  wire [31:0] row_c_at = slot_value(operands, row_c_slot), words_a_at = slot_value(operands, words_a_slot);
  wire [31:0] words_b_at = slot_value(operands, words_b_slot), dest_row_at = slot_value(operands, dest_row_slot);
  wire [31:0] dest_words_at = slot_value(operands, dest_words_slot), scalar_i = slot_value(operands, scalar_i_slot);

  // ---- checks ------------------------------------------------------------------------------
  function outside(input [31:0] at, input [31:0] size);  // at < 0 or at + VLEN > size (signed at)
    outside = at[31] || ({1'b0, at} + VLEN > {1'b0, size});
  endfunction
  function misaligned(input [31:0] at);
    misaligned = (at & (VLEN - 1)) != 32'd0;
  endfunction
  wire [31:0] words_a_size = words_a_int ? INT_WORDS : FP_WORDS;
  wire [31:0] dest_words_size = dest_words_int ? INT_WORDS : FP_WORDS;
  // first failing check in the order the functional simulator's handlers run them
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

  // ---- operand reads: pending[0..4] = words_a, words_b, row_a, row_b, row_c ----------------
  reg [4:0] pending;
  reg [VECTOR_BITS*VLEN-1:0] row_a, row_b, row_c;
  reg [32*VLEN-1:0] words_a, words_b;
  reg [2:0] vector_capture, word_capture;   // role read last cycle (0: none; 3..5 rows, 1..2 words)
  reg       word_capture_int;
  wire [2:0] next_vector_role = pending[2] ? 3'd3 : pending[3] ? 3'd4 : pending[4] ? 3'd5 : 3'd0;
  wire [2:0] next_word_role = pending[0] ? 3'd1 : pending[1] ? 3'd2 : 3'd0;
  wire next_word_int = next_word_role == 3'd1 ? words_a_int : words_b_int;

  // ---- vector_unit -------------------------------------------------------------------------
  wire unit_ready, out_valid, out_row_we, out_words_we, out_f_we, out_i_we, out_fault;
  wire [VECTOR_BITS*VLEN-1:0] out_row;
  wire [32*VLEN-1:0] out_words;
  wire [31:0] out_f, out_i;
  wire [31:0] scalar_f = scalar_f_register ? fp_register_read_data : fp_operand;
  vector_unit #(.VLEN(VLEN), .VECTOR_BITS(VECTOR_BITS), .RANK_STEP_LANES(RANK_STEP_LANES)) u_unit (
      .clk(clk), .rst(reset), .in_valid(state == EXECUTE), .in_ready(unit_ready),
      .opcode(word[`DNPU_OPCODE_LSB +: `DNPU_OPCODE_WIDTH]), .funct(word[`DNPU_FUNCT_LSB +: `DNPU_FUNCT_WIDTH]),
      .mode(word[`DNPU_VSMSCALE_MODE_LSB +: `DNPU_VSMSCALE_MODE_WIDTH]),
      .glog2(word[`DNPU_VROTHALF_GLOG2_LSB +: `DNPU_VROTHALF_GLOG2_WIDTH]),
      .row_a(row_a), .row_b(row_b), .row_c(row_c), .words_a(words_a), .words_b(words_b),
      .scalar_f(scalar_f_valid ? scalar_f : 32'd0), .scalar_i(scalar_i_valid ? scalar_i : 32'd0),
      .addr_a(row_a_at), .addr_b(row_b_at), .out_valid(out_valid), .out_row(out_row), .out_row_we(out_row_we),
      .out_words(out_words), .out_words_we(out_words_we), .out_f(out_f), .out_f_we(out_f_we), .out_i(out_i),
      .out_i_we(out_i_we), .out_fault(out_fault));

  assign fp_register_read_index = fp_index;
  wire result = state == RESULT && out_valid && !out_fault;
  assign fp_register_write_enable = result && fp_write_back && out_f_we;
  assign fp_register_write_index = fp_index;
  assign fp_register_write_data = out_f;
  assign int_register_write_enable = result && int_write_back && out_i_we;
  assign int_register_write_index = int_index;
  assign int_register_write_data = out_i;

  reg [VECTOR_BITS*VLEN-1:0] result_row;
  reg [32*VLEN-1:0] result_words;
  assign vector_write_data = result_row;
  assign fp_write_data = result_words;
  assign int_write_data = result_words;

  // ---- SRAM requests -----------------------------------------------------------------------
  always @* begin
    vector_request = 1'b0;
    vector_write = 1'b0;
    vector_address = row_a_at;
    fp_request = 1'b0;
    fp_write = 1'b0;
    fp_address = words_a_at;
    int_request = 1'b0;
    int_write = 1'b0;
    int_address = words_a_at;
    if (state == READ) begin
      vector_request = next_vector_role != 3'd0;
      vector_address = next_vector_role == 3'd3 ? row_a_at : next_vector_role == 3'd4 ? row_b_at : row_c_at;
      fp_request = next_word_role != 3'd0 && !next_word_int;
      int_request = next_word_role != 3'd0 && next_word_int;
      fp_address = next_word_role == 3'd1 ? words_a_at : words_b_at;
      int_address = fp_address;
    end else if (state == WRITE) begin
      vector_request = dest_row_valid;
      vector_write = 1'b1;
      vector_address = dest_row_at;
      fp_request = dest_words_valid && !dest_words_int;
      int_request = dest_words_valid && dest_words_int;
      fp_write = 1'b1;
      int_write = 1'b1;
      fp_address = dest_words_at;
      int_address = dest_words_at;
    end
  end
  wire word_granted = next_word_int ? int_grant : fp_grant;
  wire write_granted = dest_row_valid ? vector_grant : dest_words_int ? int_grant : fp_grant;

  always @(posedge clk) begin
    fault_valid <= 1'b0;
    if (reset) begin
      state <= IDLE;
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
        3'd1: words_a <= word_capture_int ? int_read_data : fp_read_data;
        3'd2: words_b <= word_capture_int ? int_read_data : fp_read_data;
        default: ;
      endcase
      vector_capture <= 3'd0;
      word_capture <= 3'd0;
      case (state)
        IDLE: if (command_valid) begin
          mnemonic <= command_mnemonic;
          word <= command_word;
          operands <= command_int_operands;
          fp_operand <= command_fp_operands[31:0];
          state <= CHECK;
        end
        CHECK: begin
          pending <= {row_c_valid, row_b_valid, row_a_valid, words_b_valid, words_a_valid};
          row_a <= {VECTOR_BITS*VLEN{1'b0}};
          row_b <= {VECTOR_BITS*VLEN{1'b0}};
          row_c <= {VECTOR_BITS*VLEN{1'b0}};
          words_a <= {32*VLEN{1'b0}};
          words_b <= {32*VLEN{1'b0}};
          if (check_fault) begin
            fault_valid <= 1'b1;
            fault_code <= check_code;
            state <= IDLE;
          end else state <= READ;
        end
        READ: begin
          if (vector_request && vector_grant) begin
            vector_capture <= next_vector_role;
            pending[next_vector_role - 3'd1] <= 1'b0;
          end
          if ((fp_request || int_request) && word_granted) begin
            word_capture <= next_word_role;
            word_capture_int <= next_word_int;
            pending[next_word_role - 3'd1] <= 1'b0;
          end
          if (pending == 5'd0) state <= EXECUTE;   // the last capture happens this cycle
        end
        EXECUTE: if (unit_ready) state <= RESULT;
        RESULT: if (out_valid) begin
          result_row <= out_row;
          result_words <= out_words;
          if (out_fault) begin
            fault_valid <= 1'b1;
            fault_code <= `DNPU_FAULT_VECTOR_FAULT;
            state <= IDLE;
          end else if ((dest_row_valid && out_row_we) || (dest_words_valid && out_words_we)) state <= WRITE;
          else state <= IDLE;
        end
        WRITE: if (write_granted) state <= IDLE;
        default: state <= IDLE;
      endcase
    end
  end
endmodule
`default_nettype wire
