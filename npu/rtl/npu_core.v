// npu_core: the control and scalar part of the dnpu core. One instruction per cycle, in order:
// fetch from the program memory, decode (the generated instruction_decoder), read the register
// files, execute (control, scalar INT / FP / address, INT / FP SRAM word access) and write back,
// all in the cycle the instruction issues. The loop stack redirects the fetch at a loop body's
// end in the same cycle (zero-overhead loops, nested up to MAX_LOOP_DEPTH). Semantics and faults
// are the functional simulator's (npu/sim/functional/control.py, scalar.py); docs/rtl.md,
// "Core (control and scalar)", lists the ports and the cycles per instruction class.
//
// Queued instructions (DMA, matrix, vector) leave through one issue port per unit: the core holds
// <unit>_issue_valid with the shared payload (issue_*: the word, its pc and mnemonic index, and
// the values of its register operands read at issue, ISA rule 2) until <unit>_issue_ready; the
// instruction retires in the cycle both are high. `wait` stalls while any unit it names has
// <unit>_busy high; a unit raises busy from the cycle after it accepts an instruction until its
// queue is empty and the work is done.
//
// The core runs while reset is low and it has neither halted nor faulted. A fault (error_code,
// sticky until reset) stops it at the faulting instruction with no state changed by it.
// Synchronous reset clears the registers, the loop stack and the status; the program memory and
// the scalar SRAMs keep their contents (the host loads the program through program_write_*).
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_core.vh"
module npu_core #(
    parameter PROGRAM_WORDS = 1024,       // program memory depth (a power of two)
    parameter INT_SRAM_WORDS = 16384,     // NPUConfig.int_sram.size_bytes / 4
    parameter FP_SRAM_WORDS = 16384,      // NPUConfig.fp_sram.size_bytes / 4
    parameter DLLM_INSTRUCTIONS = 1,      // NPUConfig.dllm_instructions
    parameter UNIT_LANES = 8,             // words per unit access of the scalar SRAMs (width_bits / 32)
    // derived widths (leave at their defaults)
    parameter PC_BITS = $clog2(PROGRAM_WORDS) + 1,  // holds 0..PROGRAM_WORDS
    parameter INT_ADDRESS_BITS = $clog2(INT_SRAM_WORDS),
    parameter FP_ADDRESS_BITS = $clog2(FP_SRAM_WORDS),
    parameter DEBUG_BITS = (INT_ADDRESS_BITS > FP_ADDRESS_BITS) ? INT_ADDRESS_BITS : FP_ADDRESS_BITS
) (
    input  wire                clk,
    input  wire                reset,
    // program memory load port (the host; works in and out of reset)
    input  wire                program_write_enable,
    input  wire [PC_BITS-2:0]  program_write_address,
    input  wire [31:0]         program_write_data,
    input  wire [PC_BITS-1:0]  program_length,      // words loaded; fetching at pc >= length faults
    // status
    output wire                halted,
    output wire [`DNPU_FAULT_BITS-1:0] error_code,
    output wire                stopped,             // halted or faulted
    output wire [PC_BITS-1:0]  pc,
    output reg  [31:0]         cycles,              // cycles run since reset (to and with `halt`)
    output reg  [31:0]         retired,             // instructions executed (`halt` included)
    // queued-unit issue ports (payload shared, one valid / ready / busy per unit)
    output wire                dma_issue_valid,
    input  wire                dma_issue_ready,
    input  wire                dma_busy,
    output wire                matrix_issue_valid,
    input  wire                matrix_issue_ready,
    input  wire                matrix_busy,
    output wire                vector_issue_valid,
    input  wire                vector_issue_ready,
    input  wire                vector_busy,
    output wire [31:0]         issue_word,
    output wire [PC_BITS-1:0]  issue_pc,
    output wire [`DNPU_MNEMONIC_BITS-1:0] issue_mnemonic,
    output wire [32*`DNPU_INT_READ_SLOTS-1:0] issue_int_operands,  // slot i: [32i+31:32i]
    output wire [32*`DNPU_FP_READ_SLOTS-1:0]  issue_fp_operands,
    output wire [63:0]         issue_address_operand,
    // debug / scan reads (combinational)
    input  wire [DEBUG_BITS-1:0] debug_index,
    output wire [31:0]         debug_int_register,   // r[debug_index[3:0]]
    output wire [31:0]         debug_fp_register,    // f[debug_index[2:0]]
    output wire [63:0]         debug_address_register,  // a[debug_index[2:0]]
    output wire [31:0]         debug_int_sram,       // INT_SRAM[debug_index]
    output wire [31:0]         debug_fp_sram,        // FP_SRAM[debug_index]
    // the queued units' access to the scalar SRAMs (DMA, vector unit): UNIT_LANES words from any
    // word address, lane-masked; read data the cycle after (latency 1, as row_sram)
    input  wire                    unit_int_sram_enable,
    input  wire                    unit_int_sram_write,
    input  wire [INT_ADDRESS_BITS-1:0] unit_int_sram_address,
    input  wire [UNIT_LANES-1:0]   unit_int_sram_lane_enable,
    input  wire [32*UNIT_LANES-1:0] unit_int_sram_write_data,
    output wire [32*UNIT_LANES-1:0] unit_int_sram_read_data,
    input  wire                    unit_fp_sram_enable,
    input  wire                    unit_fp_sram_write,
    input  wire [FP_ADDRESS_BITS-1:0] unit_fp_sram_address,
    input  wire [UNIT_LANES-1:0]   unit_fp_sram_lane_enable,
    input  wire [32*UNIT_LANES-1:0] unit_fp_sram_write_data,
    output wire [32*UNIT_LANES-1:0] unit_fp_sram_read_data,
    // the vector unit's register results (vsum / vmaxr fd, vargmax fmax / ridx; ISA rule 3): the
    // accumulated FP register is read when the instruction executes, the results written back
    input  wire [2:0]              unit_fp_read_index,
    output wire [31:0]             unit_fp_read_data,
    input  wire                    unit_fp_write_enable,
    input  wire [2:0]              unit_fp_write_index,
    input  wire [31:0]             unit_fp_write_data,
    input  wire                    unit_int_write_enable,
    input  wire [3:0]              unit_int_write_index,
    input  wire [31:0]             unit_int_write_data
);
  localparam [`DNPU_FAULT_BITS-1:0] NO_FAULT = `DNPU_FAULT_NONE;
  localparam integer DEPTH_BITS = $clog2(`DNPU_MAX_LOOP_DEPTH + 1);

  // ---- status ----------------------------------------------------------------------------
  reg [PC_BITS-1:0] pc_r;
  reg               halted_r;
  reg [`DNPU_FAULT_BITS-1:0] error_r;
  assign pc = pc_r;
  assign halted = halted_r;
  assign error_code = error_r;
  assign stopped = halted_r || (error_r != NO_FAULT);
  wire running = !stopped;

  // ---- fetch and decode ------------------------------------------------------------------
  wire        in_program = pc_r < program_length;
  wire [31:0] word;
  wire [31:0] unused_program_debug;
  word_memory #(.WORDS(PROGRAM_WORDS), .ADDRESS_BITS(PC_BITS - 1)) u_program (
      .clk(clk), .write_enable(program_write_enable), .write_address(program_write_address),
      .write_data(program_write_data), .read_address(pc_r[PC_BITS-2:0]), .read_data(word),
      .debug_address(program_write_address), .debug_data(unused_program_debug));

  wire        legal, dllm;
  wire [`DNPU_MNEMONIC_BITS-1:0] mnemonic;
  wire [`DNPU_UNIT_CODE_BITS-1:0] unit;
  wire [3:0]  int_read0, int_read1, int_read2, int_read3, int_read4, int_write;
  wire [2:0]  fp_read0, fp_read1, fp_write, addr_read, addr_write;
  wire        int_write_valid, fp_write_valid, addr_read_valid, addr_write_valid;
  wire [31:0] imm0, imm1;
  instruction_decoder u_decoder (
      .word(word), .legal(legal), .mnemonic(mnemonic), .unit(unit), .dllm(dllm),
      .int_read0(int_read0), .int_read1(int_read1), .int_read2(int_read2), .int_read3(int_read3),
      .int_read4(int_read4), .fp_read0(fp_read0), .fp_read1(fp_read1),
      .int_write(int_write), .int_write_valid(int_write_valid), .fp_write(fp_write),
      .fp_write_valid(fp_write_valid), .addr_read(addr_read), .addr_read_valid(addr_read_valid),
      .addr_write(addr_write), .addr_write_valid(addr_write_valid), .imm0(imm0), .imm1(imm1));
  wire unused_decoder = addr_read_valid;  // every address read slot is read anyway

  // ---- register files --------------------------------------------------------------------
  reg         int_we, fp_we, addr_we;
  reg  [31:0] int_wdata, fp_wdata;
  wire [63:0] addr_wdata;
  wire [32*6-1:0] int_values;   // the five read slots, then the debug port
  wire [32*4-1:0] fp_values;    // the two read slots, the debug port, the vector unit's read
  wire [64*2-1:0] addr_values;  // the read slot, then the debug port
  register_file #(.COUNT(`DNPU_NUM_INT_REGS), .WIDTH(32), .INDEX_BITS(4), .READS(6), .ZERO_REGISTER(1)) u_int_regs (
      .clk(clk), .reset(reset), .write_enable(int_we), .write_index(int_write), .write_data(int_wdata),
      .unit_write_enable(unit_int_write_enable), .unit_write_index(unit_int_write_index),
      .unit_write_data(unit_int_write_data),
      .read_index({debug_index[3:0], int_read4, int_read3, int_read2, int_read1, int_read0}),
      .read_data(int_values));
  register_file #(.COUNT(`DNPU_NUM_FP_REGS), .WIDTH(32), .INDEX_BITS(3), .READS(4)) u_fp_regs (
      .clk(clk), .reset(reset), .write_enable(fp_we), .write_index(fp_write), .write_data(fp_wdata),
      .unit_write_enable(unit_fp_write_enable), .unit_write_index(unit_fp_write_index),
      .unit_write_data(unit_fp_write_data),
      .read_index({unit_fp_read_index, debug_index[2:0], fp_read1, fp_read0}), .read_data(fp_values));
  assign unit_fp_read_data = fp_values[32*3 +: 32];
  register_file #(.COUNT(`DNPU_NUM_ADDR_REGS), .WIDTH(64), .INDEX_BITS(3), .READS(2)) u_addr_regs (
      .clk(clk), .reset(reset), .write_enable(addr_we), .write_index(addr_write), .write_data(addr_wdata),
      .unit_write_enable(1'b0), .unit_write_index(3'd0), .unit_write_data(64'd0),
      .read_index({debug_index[2:0], addr_read}), .read_data(addr_values));
  wire [31:0] int_a = int_values[31:0], int_b = int_values[63:32];
  wire [31:0] fp_a = fp_values[31:0], fp_b = fp_values[63:32];
  assign debug_int_register = int_values[32*5 +: 32];
  assign debug_fp_register = fp_values[32*2 +: 32];
  assign debug_address_register = addr_values[64 +: 64];

  // ---- execute units ---------------------------------------------------------------------
  wire [31:0] alu_result, fpu_fp_result, fpu_int_result;
  wire        fpu_writes_int, fcvt_nan;
  scalar_alu u_alu (.mnemonic(mnemonic), .a(int_a), .b(int_b), .imm(imm0), .y(alu_result));
  scalar_fpu u_fpu (.mnemonic(mnemonic), .a(fp_a), .b(fp_b), .int_a(int_a), .bf16(imm0[15:0]),
                    .fp_result(fpu_fp_result), .int_result(fpu_int_result), .writes_int(fpu_writes_int),
                    .nan_fault(fcvt_nan));
  address_alu u_address (.mnemonic(mnemonic), .source(addr_values[63:0]), .a(int_a), .b(int_b), .imm(imm0),
                         .y(addr_wdata));

  // ---- scalar SRAMs (lw / sw on INT, flw / fsw on FP): address = base + offset --------------
  wire is_lw = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_LW;
  wire is_sw = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_SW;
  wire is_flw = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FLW;
  wire is_fsw = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_FSW;
  wire [31:0] base = is_sw ? int_b : int_a;  // sw reads (rs, base); lw / flw / fsw read base first
  wire signed [32:0] memory_address = $signed({base[31], base}) + $signed({imm0[31], imm0});
  wire int_in_range = !memory_address[32] && memory_address[31:0] < INT_SRAM_WORDS;
  wire fp_in_range = !memory_address[32] && memory_address[31:0] < FP_SRAM_WORDS;
  reg  int_sram_we, fp_sram_we;
  wire [31:0] int_sram_data, fp_sram_data;
  scalar_sram #(.WORDS(INT_SRAM_WORDS), .ADDRESS_BITS(INT_ADDRESS_BITS), .LANES(UNIT_LANES)) u_int_sram (
      .clk(clk), .write_enable(int_sram_we), .write_address(memory_address[INT_ADDRESS_BITS-1:0]),
      .write_data(int_a), .read_address(memory_address[INT_ADDRESS_BITS-1:0]), .read_data(int_sram_data),
      .debug_address(debug_index[INT_ADDRESS_BITS-1:0]), .debug_data(debug_int_sram),
      .row_enable(unit_int_sram_enable), .row_write(unit_int_sram_write), .row_address(unit_int_sram_address),
      .row_lane_enable(unit_int_sram_lane_enable), .row_write_data(unit_int_sram_write_data),
      .row_read_data(unit_int_sram_read_data));
  scalar_sram #(.WORDS(FP_SRAM_WORDS), .ADDRESS_BITS(FP_ADDRESS_BITS), .LANES(UNIT_LANES)) u_fp_sram (
      .clk(clk), .write_enable(fp_sram_we), .write_address(memory_address[FP_ADDRESS_BITS-1:0]),
      .write_data(fp_a), .read_address(memory_address[FP_ADDRESS_BITS-1:0]), .read_data(fp_sram_data),
      .debug_address(debug_index[FP_ADDRESS_BITS-1:0]), .debug_data(debug_fp_sram),
      .row_enable(unit_fp_sram_enable), .row_write(unit_fp_sram_write), .row_address(unit_fp_sram_address),
      .row_lane_enable(unit_fp_sram_lane_enable), .row_write_data(unit_fp_sram_write_data),
      .row_read_data(unit_fp_sram_read_data));

  // ---- control: branches and loops -------------------------------------------------------
  wire [PC_BITS-1:0] following = pc_r + 1'b1;
  // pc + offset in 33-bit signed arithmetic: a target outside [0, length] faults
  wire signed [32:0] branch_target = $signed({{(33 - PC_BITS){1'b0}}, pc_r}) + $signed({imm0[31], imm0});
  wire is_loopi = mnemonic == `DNPU_MNEMONIC_BITS'd`DNPU_MN_LOOPI;
  wire [31:0] loop_count = is_loopi ? imm0 : int_a;
  wire [31:0] loop_length = is_loopi ? imm1 : imm0;  // the `end` field: body length (16 bits)
  wire [32:0] loop_end = {{(33 - PC_BITS){1'b0}}, following} + {1'b0, loop_length};
  wire [PC_BITS-1:0] loop_top_start, loop_top_end, fetch_pc;
  wire [DEPTH_BITS-1:0] loop_depth;
  wire loops_active = loop_depth != {DEPTH_BITS{1'b0}};
  reg  [PC_BITS-1:0] next_pc;
  reg  push_loop, step_ok, stall, halt_now;
  reg  [`DNPU_FAULT_BITS-1:0] fault;
  reg  [2:0] issue_valid;  // dma, matrix, vector (SYNC_UNITS order)
  wire [2:0] issue_ready = {vector_issue_ready, matrix_issue_ready, dma_issue_ready};
  wire [2:0] busy = {vector_busy, matrix_busy, dma_busy};
  wire step = running && !reset && step_ok;
  loop_stack #(.PC_BITS(PC_BITS), .DEPTH_BITS(DEPTH_BITS), .LEVEL_BITS($clog2(`DNPU_MAX_LOOP_DEPTH))) u_loops (
      .clk(clk), .reset(reset), .step(step), .next_pc(next_pc), .push(push_loop), .push_start(following),
      .push_end(loop_end[PC_BITS-1:0]), .push_count(loop_count), .fetch_pc(fetch_pc), .depth(loop_depth),
      .top_start(loop_top_start), .top_end(loop_top_end));

  reg take_branch;
  always @* begin
    fault = NO_FAULT;
    next_pc = following;
    take_branch = 1'b0;
    push_loop = 1'b0;
    stall = 1'b0;
    halt_now = 1'b0;
    issue_valid = 3'b000;
    int_we = 1'b0;
    fp_we = 1'b0;
    addr_we = 1'b0;
    int_sram_we = 1'b0;
    fp_sram_we = 1'b0;
    int_wdata = alu_result;
    fp_wdata = fpu_fp_result;
    if (!in_program) fault = `DNPU_FAULT_PC_OVERRUN;
    else if (!legal) fault = `DNPU_FAULT_ILLEGAL_INSTRUCTION;
    else if (dllm && DLLM_INSTRUCTIONS == 0) fault = `DNPU_FAULT_DLLM_INSTRUCTION;
    else begin
      case (unit)
        `DNPU_UNIT_CODE_BITS'd`DNPU_EXEC_CONTROL: begin
          case (mnemonic)
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_HALT: halt_now = 1'b1;
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_WAIT: stall = |(imm0[2:0] & busy);
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_J:    take_branch = 1'b1;
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_BEQ:  take_branch = int_a == int_b;
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_BNE:  take_branch = int_a != int_b;
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_BLT:  take_branch = $signed(int_a) < $signed(int_b);
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_BGE:  take_branch = $signed(int_a) >= $signed(int_b);
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_LOOP,
            `DNPU_MNEMONIC_BITS'd`DNPU_MN_LOOPI: begin
              if (!is_loopi && loop_count[31]) fault = `DNPU_FAULT_LOOP_COUNT;
              else if (loop_length == 32'd0 || loop_end > {{(33 - PC_BITS){1'b0}}, program_length})
                fault = `DNPU_FAULT_LOOP_BODY;
              else if (loops_active && loop_end[PC_BITS-1:0] > loop_top_end) fault = `DNPU_FAULT_LOOP_BODY;
              else if (loop_count == 32'd0) next_pc = loop_end[PC_BITS-1:0];  // skip the body
              else if (loop_depth == `DNPU_MAX_LOOP_DEPTH) fault = `DNPU_FAULT_LOOP_DEPTH;
              else push_loop = 1'b1;
            end
            default: ;  // nop
          endcase
        end
        `DNPU_UNIT_CODE_BITS'd`DNPU_EXEC_SCALAR: begin
          int_we = int_write_valid;
          fp_we = fp_write_valid;
          addr_we = addr_write_valid;
          if (is_lw || is_sw) begin
            if (!int_in_range) fault = `DNPU_FAULT_INT_SRAM_RANGE;
            int_sram_we = is_sw;
            int_wdata = int_sram_data;
          end else if (is_flw || is_fsw) begin
            if (!fp_in_range) fault = `DNPU_FAULT_FP_SRAM_RANGE;
            fp_sram_we = is_fsw;
            fp_wdata = fp_sram_data;
          end else if (fcvt_nan) begin
            fault = `DNPU_FAULT_FCVT_NAN;
          end else if (fpu_writes_int) begin
            int_wdata = fpu_int_result;
          end
        end
        `DNPU_UNIT_CODE_BITS'd`DNPU_EXEC_DMA:    begin issue_valid = 3'b001; stall = !dma_issue_ready; end
        `DNPU_UNIT_CODE_BITS'd`DNPU_EXEC_MATRIX: begin issue_valid = 3'b010; stall = !matrix_issue_ready; end
        default:                                 begin issue_valid = 3'b100; stall = !vector_issue_ready; end
      endcase
      if (take_branch) begin
        if (branch_target < 33'sd0 || branch_target > $signed({{(33 - PC_BITS){1'b0}}, program_length}))
          fault = `DNPU_FAULT_BRANCH_TARGET;
        else if (loops_active && (branch_target[PC_BITS-1:0] < loop_top_start
                                  || branch_target[PC_BITS-1:0] > loop_top_end))
          fault = `DNPU_FAULT_BRANCH_TARGET;
        else next_pc = branch_target[PC_BITS-1:0];
      end
    end
    step_ok = (fault == NO_FAULT) && !stall;
    if (!step_ok || halt_now || !running || reset) begin  // nothing changes but the status
      int_we = 1'b0;
      fp_we = 1'b0;
      addr_we = 1'b0;
      int_sram_we = 1'b0;
      fp_sram_we = 1'b0;
    end
    if (!running || reset) issue_valid = 3'b000;
    if (issue_valid != 3'b000 && fault != NO_FAULT) issue_valid = 3'b000;
  end
  wire unused_issue_ready = |(issue_ready & ~issue_valid);

  assign dma_issue_valid = issue_valid[0];
  assign matrix_issue_valid = issue_valid[1];
  assign vector_issue_valid = issue_valid[2];
  assign issue_word = word;
  assign issue_pc = pc_r;
  assign issue_mnemonic = mnemonic;
  assign issue_int_operands = int_values[32*`DNPU_INT_READ_SLOTS-1:0];
  assign issue_fp_operands = fp_values[32*`DNPU_FP_READ_SLOTS-1:0];
  assign issue_address_operand = addr_values[63:0];

  always @(posedge clk) begin
    if (reset) begin
      pc_r <= {PC_BITS{1'b0}};
      halted_r <= 1'b0;
      error_r <= NO_FAULT;
      cycles <= 32'd0;
      retired <= 32'd0;
    end else if (running) begin
      cycles <= cycles + 32'd1;
      if (fault != NO_FAULT) begin
        error_r <= fault;
      end else if (halt_now) begin
        halted_r <= 1'b1;
        retired <= retired + 32'd1;
      end else if (!stall) begin
        pc_r <= fetch_pc;
        retired <= retired + 32'd1;
      end
    end
  end
endmodule
`default_nettype wire
