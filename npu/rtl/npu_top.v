// npu_top: the dnpu core with its units. npu_core (fetch, decode, scalar units, scalar SRAMs)
// issues queued instructions into three issue_queues of QUEUE_DEPTH entries (the cycle
// simulator's queue_depth); behind them the DMA engine (dma_engine), the vector unit
// (vector_sequencer + vector_unit) and the matrix unit (matrix_sequencer + matrix_unit). The vector
// and matrix SRAMs are row_srams (ASAP7 bank-macro ports); the INT / FP SRAMs stay in the core
// (scalar_sram) with a row port for the units. DRAM is outside: the DMA's request / response
// port is the top's dram_* port (the testbench serves it).
//
// SRAM ports: one per SRAM, granted by fixed priority DMA > matrix > vector (the debug port,
// used by the testbench only while everything is idle, overrides all). A unit whose request is
// not granted waits (the DMA never does).
//
// Faults: the first fault of a unit is kept in unit_fault (sticky until reset); error_code is it,
// else the core's. After a unit fault no queue is popped any more and `stopped` rises. `idle`:
// every queue empty and every unit done.
`default_nettype none
`include "dnpu_isa.vh"
`include "dnpu_core.vh"
module npu_top #(
    parameter PROGRAM_WORDS = 1024,
    parameter INT_SRAM_WORDS = 256,
    parameter FP_SRAM_WORDS = 256,
    parameter DLLM_INSTRUCTIONS = 1,
    parameter QUEUE_DEPTH = 8,          // power of two
    parameter VLEN = 8,
    parameter VECTOR_BITS = 16,
    parameter VECTOR_WORDS = 1024,      // vector SRAM elements
    parameter MATRIX_LANES = 16,        // matrix SRAM elements per access (width_bits / 16)
    parameter MATRIX_WORDS = 2048,      // matrix SRAM elements (bf16)
    parameter BLOCK = 8,                // mx_block (divides VLEN)
    parameter RANK_STEP_LANES = 4,
    parameter MLEN = 8,
    parameter BLEN = 2,
    parameter ACCUMULATORS = 2,
    parameter WROWS = 2,
    parameter DRAM_BYTES = 65536,
    parameter PC_BITS = $clog2(PROGRAM_WORDS) + 1,
    parameter DEBUG_BITS = $clog2((INT_SRAM_WORDS > FP_SRAM_WORDS) ? INT_SRAM_WORDS : FP_SRAM_WORDS),
    parameter BYTE_COUNT_BITS = $clog2(4 * BLOCK) + 1
) (
    input  wire                clk,
    input  wire                reset,
    input  wire                program_write_enable,
    input  wire [PC_BITS-2:0]  program_write_address,
    input  wire [31:0]         program_write_data,
    input  wire [PC_BITS-1:0]  program_length,
    output wire                halted,      // the core executed `halt`
    output wire [`DNPU_FAULT_BITS-1:0] error_code,
    output wire                stopped,     // halted or faulted (core or unit)
    output wire                idle,        // queues empty, units done
    output wire [31:0]         core_cycles,
    output wire [31:0]         retired,
    // DRAM (served by the testbench)
    output wire                dram_request_valid,
    input  wire                dram_request_ready,
    output wire                dram_request_write,
    output wire [63:0]         dram_request_address,
    output wire [BYTE_COUNT_BITS-1:0] dram_request_bytes,
    output wire [32*BLOCK-1:0] dram_request_data,
    input  wire                dram_response_valid,
    input  wire [32*BLOCK-1:0] dram_response_data,
    // dump ports (testbench)
    input  wire [DEBUG_BITS-1:0] debug_index,
    output wire [31:0]         debug_int_register,
    output wire [31:0]         debug_fp_register,
    output wire [63:0]         debug_address_register,
    output wire [31:0]         debug_int_sram,
    output wire [31:0]         debug_fp_sram,
    input  wire                debug_sram_enable,       // read a row of the vector (0) or matrix (1) SRAM
    input  wire                debug_sram_matrix,
    input  wire [31:0]         debug_sram_address,
    output wire [VECTOR_BITS*VLEN-1:0] debug_vector_row,  // the cycle after
    output wire [16*MATRIX_LANES-1:0]  debug_matrix_row
);
  localparam INT_ADDRESS_BITS = $clog2(INT_SRAM_WORDS);
  localparam FP_ADDRESS_BITS = $clog2(FP_SRAM_WORDS);
  localparam VECTOR_ADDRESS_BITS = $clog2(VECTOR_WORDS);
  localparam MATRIX_ADDRESS_BITS = $clog2(MATRIX_WORDS);
  localparam SLOTS = `DNPU_INT_READ_SLOTS;
  localparam FP_SLOTS = `DNPU_FP_READ_SLOTS;
  localparam PAYLOAD = 64 + 32 * FP_SLOTS + 32 * SLOTS + `DNPU_MNEMONIC_BITS + 32 + PC_BITS;
  localparam [1:0] TARGET_VECTOR = 2'd0, TARGET_MATRIX = 2'd1, TARGET_FP = 2'd2, TARGET_INT = 2'd3;

  // ---- the core and its queues -----------------------------------------------------------
  wire [2:0] issue_valid, issue_ready, unit_busy, queue_occupied, pop_valid, pop_ready;
  wire [31:0] issue_word;
  wire [PC_BITS-1:0] issue_pc;
  wire [`DNPU_MNEMONIC_BITS-1:0] issue_mnemonic;
  wire [32*SLOTS-1:0] issue_int_operands;
  wire [32*FP_SLOTS-1:0] issue_fp_operands;
  wire [63:0] issue_address_operand;
  /* verilator lint_off UNUSEDSIGNAL */  // each unit takes the fields it needs
  wire [PAYLOAD*3-1:0] popped;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [`DNPU_FAULT_BITS-1:0] core_error;
  wire core_stopped;
  wire [PC_BITS-1:0] unused_pc;

  // unit access to the scalar SRAMs and registers
  reg  int_row_enable, int_row_write, fp_row_enable, fp_row_write;
  /* verilator lint_off UNUSEDSIGNAL */  // addresses beyond the memory were range-checked
  reg  [31:0] int_row_address, fp_row_address;
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [VLEN-1:0] int_row_lanes, fp_row_lanes;
  reg  [32*VLEN-1:0] int_row_data, fp_row_data;
  wire [32*VLEN-1:0] int_row_read, fp_row_read;
  wire [2:0]  vector_fp_read_index, vector_fp_write_index;
  wire [31:0] vector_fp_read_data, vector_fp_write_data, vector_int_write_data;
  wire [3:0]  vector_int_write_index;
  wire        vector_fp_write_enable, vector_int_write_enable;

  npu_core #(.PROGRAM_WORDS(PROGRAM_WORDS), .INT_SRAM_WORDS(INT_SRAM_WORDS), .FP_SRAM_WORDS(FP_SRAM_WORDS),
             .DLLM_INSTRUCTIONS(DLLM_INSTRUCTIONS), .UNIT_LANES(VLEN)) u_core (
      .clk(clk), .reset(reset), .program_write_enable(program_write_enable),
      .program_write_address(program_write_address), .program_write_data(program_write_data),
      .program_length(program_length), .halted(halted), .error_code(core_error), .stopped(core_stopped),
      .pc(unused_pc), .cycles(core_cycles), .retired(retired),
      .dma_issue_valid(issue_valid[0]), .dma_issue_ready(issue_ready[0]), .dma_busy(unit_busy[0]),
      .matrix_issue_valid(issue_valid[1]), .matrix_issue_ready(issue_ready[1]), .matrix_busy(unit_busy[1]),
      .vector_issue_valid(issue_valid[2]), .vector_issue_ready(issue_ready[2]), .vector_busy(unit_busy[2]),
      .issue_word(issue_word), .issue_pc(issue_pc), .issue_mnemonic(issue_mnemonic),
      .issue_int_operands(issue_int_operands), .issue_fp_operands(issue_fp_operands),
      .issue_address_operand(issue_address_operand), .debug_index(debug_index),
      .debug_int_register(debug_int_register), .debug_fp_register(debug_fp_register),
      .debug_address_register(debug_address_register), .debug_int_sram(debug_int_sram),
      .debug_fp_sram(debug_fp_sram),
      .unit_int_sram_enable(int_row_enable), .unit_int_sram_write(int_row_write),
      .unit_int_sram_address(int_row_address[INT_ADDRESS_BITS-1:0]), .unit_int_sram_lane_enable(int_row_lanes),
      .unit_int_sram_write_data(int_row_data), .unit_int_sram_read_data(int_row_read),
      .unit_fp_sram_enable(fp_row_enable), .unit_fp_sram_write(fp_row_write),
      .unit_fp_sram_address(fp_row_address[FP_ADDRESS_BITS-1:0]), .unit_fp_sram_lane_enable(fp_row_lanes),
      .unit_fp_sram_write_data(fp_row_data), .unit_fp_sram_read_data(fp_row_read),
      .unit_fp_read_index(vector_fp_read_index), .unit_fp_read_data(vector_fp_read_data),
      .unit_fp_write_enable(vector_fp_write_enable), .unit_fp_write_index(vector_fp_write_index),
      .unit_fp_write_data(vector_fp_write_data), .unit_int_write_enable(vector_int_write_enable),
      .unit_int_write_index(vector_int_write_index), .unit_int_write_data(vector_int_write_data));

  wire [PAYLOAD-1:0] payload = {issue_address_operand, issue_fp_operands, issue_int_operands, issue_mnemonic,
                                issue_word, issue_pc};
  reg [`DNPU_FAULT_BITS-1:0] unit_fault;
  wire faulted = unit_fault != `DNPU_FAULT_NONE;
  wire [2:0] unit_working;
  genvar q;
  generate
    for (q = 0; q < 3; q = q + 1) begin : queue
      issue_queue #(.DEPTH(QUEUE_DEPTH), .WIDTH(PAYLOAD), .INDEX_BITS($clog2(QUEUE_DEPTH))) u_queue (
          .clk(clk), .reset(reset), .push_valid(issue_valid[q]), .push_ready(issue_ready[q]),
          .push_data(payload), .pop_valid(pop_valid[q]), .pop_ready(pop_ready[q] && !faulted),
          .pop_data(popped[q*PAYLOAD +: PAYLOAD]), .occupied(queue_occupied[q]));
      assign unit_busy[q] = queue_occupied[q] | unit_working[q];
    end
  endgenerate
  wire fault_pulse;   // a unit reports a fault this cycle (unit_fault takes it at the edge)
  assign idle = !(|unit_busy) && !fault_pulse;
  assign stopped = core_stopped || faulted;
  assign error_code = faulted ? unit_fault : core_error;

  // queue entry fields
  localparam PAYLOAD_WORD = PC_BITS, PAYLOAD_MNEMONIC = PC_BITS + 32;
  localparam PAYLOAD_INT = PAYLOAD_MNEMONIC + `DNPU_MNEMONIC_BITS, PAYLOAD_FP = PAYLOAD_INT + 32 * SLOTS;
  localparam PAYLOAD_ADDRESS = PAYLOAD_FP + 32 * FP_SLOTS;

  // ---- DMA engine ------------------------------------------------------------------------
  wire dma_fault_valid, dma_sram_enable, dma_sram_write;
  wire [`DNPU_FAULT_BITS-1:0] dma_fault_code;
  wire [1:0] dma_sram_target;
  wire [31:0] dma_sram_address;
  wire [BLOCK-1:0] dma_sram_lanes;
  wire [32*BLOCK-1:0] dma_sram_write_data;
  reg  [32*BLOCK-1:0] dma_sram_read_data;
  dma_engine #(.BLOCK(BLOCK), .VECTOR_BITS(VECTOR_BITS), .VECTOR_WORDS(VECTOR_WORDS), .MATRIX_WORDS(MATRIX_WORDS),
               .FP_WORDS(FP_SRAM_WORDS), .INT_WORDS(INT_SRAM_WORDS), .DRAM_BYTES(DRAM_BYTES),
               .BYTE_COUNT_BITS(BYTE_COUNT_BITS)) u_dma (
      .clk(clk), .reset(reset), .command_valid(pop_valid[0] && !faulted), .command_ready(pop_ready[0]),
      .command_mnemonic(popped[PAYLOAD_MNEMONIC +: `DNPU_MNEMONIC_BITS]),
      .command_word(popped[PAYLOAD_WORD +: 32]), .command_int_operands(popped[PAYLOAD_INT +: 32 * SLOTS]),
      .command_address_operand(popped[PAYLOAD_ADDRESS +: 64]), .busy(unit_working[0]),
      .fault_valid(dma_fault_valid), .fault_code(dma_fault_code),
      .sram_enable(dma_sram_enable), .sram_write(dma_sram_write), .sram_target(dma_sram_target),
      .sram_address(dma_sram_address), .sram_lane_enable(dma_sram_lanes), .sram_write_data(dma_sram_write_data),
      .sram_grant(1'b1), .sram_read_data(dma_sram_read_data),
      .dram_request_valid(dram_request_valid), .dram_request_ready(dram_request_ready),
      .dram_request_write(dram_request_write), .dram_request_address(dram_request_address),
      .dram_request_bytes(dram_request_bytes), .dram_request_data(dram_request_data),
      .dram_response_valid(dram_response_valid), .dram_response_data(dram_response_data));

  // ---- vector unit -----------------------------------------------------------------------
  wire vector_fault_valid;
  wire [`DNPU_FAULT_BITS-1:0] vector_fault_code;
  wire vector_vreq, vector_vwrite, vector_freq, vector_fwrite, vector_ireq, vector_iwrite;
  wire [31:0] vector_vaddress, vector_faddress, vector_iaddress;
  wire [VECTOR_BITS*VLEN-1:0] vector_vdata;
  wire [32*VLEN-1:0] vector_fdata, vector_idata;
  wire [VECTOR_BITS*VLEN-1:0] vector_row_read;
  wire vector_vgrant, vector_fgrant, vector_igrant;
  vector_sequencer #(.VLEN(VLEN), .VECTOR_BITS(VECTOR_BITS), .RANK_STEP_LANES(RANK_STEP_LANES),
                     .VECTOR_WORDS(VECTOR_WORDS), .FP_WORDS(FP_SRAM_WORDS), .INT_WORDS(INT_SRAM_WORDS)) u_vector (
      .clk(clk), .reset(reset), .command_valid(pop_valid[2] && !faulted), .command_ready(pop_ready[2]),
      .command_mnemonic(popped[2*PAYLOAD + PAYLOAD_MNEMONIC +: `DNPU_MNEMONIC_BITS]),
      .command_word(popped[2*PAYLOAD + PAYLOAD_WORD +: 32]),
      .command_int_operands(popped[2*PAYLOAD + PAYLOAD_INT +: 32 * SLOTS]),
      .command_fp_operands(popped[2*PAYLOAD + PAYLOAD_FP +: 32 * FP_SLOTS]),
      .busy(unit_working[2]), .fault_valid(vector_fault_valid), .fault_code(vector_fault_code),
      .vector_request(vector_vreq), .vector_write(vector_vwrite), .vector_address(vector_vaddress),
      .vector_write_data(vector_vdata), .vector_grant(vector_vgrant), .vector_read_data(vector_row_read),
      .fp_request(vector_freq), .fp_write(vector_fwrite), .fp_address(vector_faddress),
      .fp_write_data(vector_fdata), .fp_grant(vector_fgrant), .fp_read_data(fp_row_read),
      .int_request(vector_ireq), .int_write(vector_iwrite), .int_address(vector_iaddress),
      .int_write_data(vector_idata), .int_grant(vector_igrant), .int_read_data(int_row_read),
      .fp_register_read_index(vector_fp_read_index), .fp_register_read_data(vector_fp_read_data),
      .fp_register_write_enable(vector_fp_write_enable), .fp_register_write_index(vector_fp_write_index),
      .fp_register_write_data(vector_fp_write_data), .int_register_write_enable(vector_int_write_enable),
      .int_register_write_index(vector_int_write_index), .int_register_write_data(vector_int_write_data));

  wire dma_v = dma_sram_enable && dma_sram_target == TARGET_VECTOR;
  wire dma_m = dma_sram_enable && dma_sram_target == TARGET_MATRIX;
  wire dma_f = dma_sram_enable && dma_sram_target == TARGET_FP;
  wire dma_i = dma_sram_enable && dma_sram_target == TARGET_INT;

  // ---- matrix unit -----------------------------------------------------------------------
  wire matrix_fault_valid;
  wire [`DNPU_FAULT_BITS-1:0] matrix_fault_code;
  wire matrix_vreq, matrix_vwrite, matrix_mreq;
  wire [31:0] matrix_vaddress, matrix_maddress;
  wire [VECTOR_BITS*VLEN-1:0] matrix_vdata;
  wire matrix_vgrant, matrix_mgrant;
  wire [16*MATRIX_LANES-1:0] matrix_row_read;
  matrix_sequencer #(.MLEN(MLEN), .BLEN(BLEN), .ACCUMULATORS(ACCUMULATORS), .VEC_BITS(VECTOR_BITS),
                     .WROWS(WROWS), .VLEN(VLEN), .VECTOR_WORDS(VECTOR_WORDS), .MATRIX_WORDS(MATRIX_WORDS),
                     .MATRIX_LANES(MATRIX_LANES), .DMA_BLOCK(BLOCK)) u_matrix (
      .clk(clk), .reset(reset), .command_valid(pop_valid[1] && !faulted), .command_ready(pop_ready[1]),
      .command_mnemonic(popped[PAYLOAD + PAYLOAD_MNEMONIC +: `DNPU_MNEMONIC_BITS]),
      .command_word(popped[PAYLOAD + PAYLOAD_WORD +: 32]),
      .command_int_operands(popped[PAYLOAD + PAYLOAD_INT +: 32 * SLOTS]),
      .busy(unit_working[1]), .fault_valid(matrix_fault_valid), .fault_code(matrix_fault_code),
      .vector_request(matrix_vreq), .vector_write(matrix_vwrite), .vector_address(matrix_vaddress),
      .vector_write_data(matrix_vdata), .vector_grant(matrix_vgrant), .vector_read_data(vector_row_read),
      .matrix_request(matrix_mreq), .matrix_address(matrix_maddress), .matrix_grant(matrix_mgrant),
      .matrix_read_data(matrix_row_read), .dma_matrix_write(dma_m && dma_sram_write),
      .dma_matrix_address(dma_sram_address));

  assign fault_pulse = dma_fault_valid || matrix_fault_valid || vector_fault_valid;
  always @(posedge clk)
    if (reset) unit_fault <= `DNPU_FAULT_NONE;
    else if (!faulted) begin
      if (dma_fault_valid) unit_fault <= dma_fault_code;
      else if (matrix_fault_valid) unit_fault <= matrix_fault_code;
      else if (vector_fault_valid) unit_fault <= vector_fault_code;
    end

  // ---- vector SRAM: DMA > matrix > vector; the debug port when the testbench dumps ---------
  assign matrix_vgrant = matrix_vreq && !dma_v;
  assign vector_vgrant = vector_vreq && !dma_v && !matrix_vreq;
  assign matrix_mgrant = matrix_mreq && !dma_m;
  assign vector_fgrant = vector_freq && !dma_f;
  assign vector_igrant = vector_ireq && !dma_i;

  reg  v_enable, v_write;
  /* verilator lint_off UNUSEDSIGNAL */
  reg  [31:0] v_address;
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [VLEN-1:0] v_lanes;
  reg  [VECTOR_BITS*VLEN-1:0] v_data;
  reg  m_enable, m_write;
  /* verilator lint_off UNUSEDSIGNAL */
  reg  [31:0] m_address;
  /* verilator lint_on UNUSEDSIGNAL */
  reg  [MATRIX_LANES-1:0] m_lanes;
  reg  [16*MATRIX_LANES-1:0] m_data;
  wire [16*MATRIX_LANES-1:0] m_read;
  integer lane;
  always @* begin
    // vector SRAM
    v_enable = dma_v || matrix_vreq || vector_vreq || debug_sram_enable && !debug_sram_matrix;
    v_write = 1'b0;
    v_address = 32'd0;
    v_lanes = {VLEN{1'b1}};
    v_data = {VECTOR_BITS*VLEN{1'b0}};
    if (debug_sram_enable) begin
      v_address = debug_sram_address;
    end else if (dma_v) begin
      v_write = dma_sram_write;
      v_address = dma_sram_address;
      v_lanes = {{(VLEN-BLOCK){1'b0}}, dma_sram_lanes};
      for (lane = 0; lane < BLOCK; lane = lane + 1)
        v_data[lane*VECTOR_BITS +: VECTOR_BITS] = dma_sram_write_data[32*lane + 32 - VECTOR_BITS +: VECTOR_BITS];
    end else if (matrix_vreq) begin
      v_write = matrix_vwrite;
      v_address = matrix_vaddress;
      v_data = matrix_vdata;
    end else begin
      v_write = vector_vwrite;
      v_address = vector_vaddress;
      v_data = vector_vdata;
    end
    // matrix SRAM: the DMA's rows, the matrix unit's weight reads
    m_enable = dma_m || matrix_mreq || debug_sram_enable && debug_sram_matrix;
    m_write = 1'b0;
    m_address = 32'd0;
    m_lanes = {MATRIX_LANES{1'b1}};
    m_data = {16*MATRIX_LANES{1'b0}};
    if (debug_sram_enable) begin
      m_address = debug_sram_address;
    end else if (dma_m) begin
      m_write = dma_sram_write;
      m_address = dma_sram_address;
      m_lanes = {{(MATRIX_LANES-BLOCK){1'b0}}, dma_sram_lanes};
      for (lane = 0; lane < BLOCK; lane = lane + 1)
        m_data[lane*16 +: 16] = dma_sram_write_data[32*lane + 16 +: 16];
    end else begin
      m_address = matrix_maddress;
    end
    // FP / INT SRAM row ports: DMA > vector unit
    fp_row_enable = dma_f || vector_freq;
    fp_row_write = dma_f ? dma_sram_write : vector_fwrite;
    fp_row_address = dma_f ? dma_sram_address : vector_faddress;
    fp_row_lanes = dma_f ? {{(VLEN-BLOCK){1'b0}}, dma_sram_lanes} : {VLEN{1'b1}};
    fp_row_data = dma_f ? {{(32*(VLEN-BLOCK)){1'b0}}, dma_sram_write_data} : vector_fdata;
    int_row_enable = dma_i || vector_ireq;
    int_row_write = dma_i ? dma_sram_write : vector_iwrite;
    int_row_address = dma_i ? dma_sram_address : vector_iaddress;
    int_row_lanes = dma_i ? {{(VLEN-BLOCK){1'b0}}, dma_sram_lanes} : {VLEN{1'b1}};
    int_row_data = dma_i ? {{(32*(VLEN-BLOCK)){1'b0}}, dma_sram_write_data} : vector_idata;
  end

  row_sram #(.LANES(VLEN), .ELEMENT_BITS(VECTOR_BITS), .WORDS(VECTOR_WORDS)) u_vector_sram (
      .clk(clk), .enable(v_enable), .write(v_write), .address(v_address[VECTOR_ADDRESS_BITS-1:0]),
      .lane_enable(v_lanes), .write_data(v_data), .read_data(vector_row_read));
  row_sram #(.LANES(MATRIX_LANES), .ELEMENT_BITS(16), .WORDS(MATRIX_WORDS)) u_matrix_sram (
      .clk(clk), .enable(m_enable), .write(m_write), .address(m_address[MATRIX_ADDRESS_BITS-1:0]),
      .lane_enable(m_lanes), .write_data(m_data), .read_data(m_read));
  assign matrix_row_read = m_read;
  assign debug_vector_row = vector_row_read;
  assign debug_matrix_row = m_read;

  // the DMA's read data: the SRAM it read last cycle, widened to float32 bits
  reg [1:0] dma_read_target;
  always @(posedge clk) if (dma_sram_enable) dma_read_target <= dma_sram_target;
  always @* begin
    dma_sram_read_data = {32*BLOCK{1'b0}};
    for (lane = 0; lane < BLOCK; lane = lane + 1)
      case (dma_read_target)
        TARGET_VECTOR: dma_sram_read_data[32*lane + 32 - VECTOR_BITS +: VECTOR_BITS] =
                           vector_row_read[lane*VECTOR_BITS +: VECTOR_BITS];
        TARGET_MATRIX: dma_sram_read_data[32*lane + 16 +: 16] = m_read[lane*16 +: 16];
        TARGET_FP: dma_sram_read_data[32*lane +: 32] = fp_row_read[32*lane +: 32];
        default: dma_sram_read_data[32*lane +: 32] = int_row_read[32*lane +: 32];
      endcase
  end
endmodule
`default_nettype wire
