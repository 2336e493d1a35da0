// npu_top_bench: simulation-only testbench that runs programs on npu_top with no host code in the
// loop (npu.rtl.top_sim.run_programs writes its input files, runs the simulator, reads the dumps).
// For each program p = 0 .. +programs-1 it holds npu_top in reset while it loads the program words
// through the program port, loads the DRAM image into bandwidth_dram (the cycle simulator's
// bandwidth backend), releases reset and runs until the machine has stopped (halt or a fault),
// every unit is idle and no DRAM response is owed, or until its cycle budget is spent; then it dumps
// the status, the registers, all four SRAMs and the DRAM. SRAMs carry over from one program to the
// next (an SRAM has no reset); DRAM is reloaded for each program.
//
// Files in the directory +work=<dir> (hex, one value per line, $readmemh / $writememh):
//   in:  settings.hex (per program: words, cycle budget), program_<p>.hex (PROGRAM_WORDS words),
//        dram_<p>.hex (DRAM_BYTES bytes)
//   out: status_<p>.hex (halted, error_code, core_cycles, retired, cycles, timed_out, DRAM requests,
//        DRAM bytes), int_regs_<p>.hex, fp_regs_<p>.hex, addr_regs_<p>.hex, int_sram_<p>.hex,
//        fp_sram_<p>.hex, vector_sram_<p>.hex, matrix_sram_<p>.hex, dram_out_<p>.hex
// +vcd=<file> +vcd_program=<p> [+vcd_cycles=<n>]: record npu_top's signals while program p runs
// (value change dump), its first n cycles (0 or absent: all); with +vcd_finish the simulation ends
// there (no state dump). Verilator needs a --trace build; Icarus always records.
// A line "npu_top_bench: program <p> ..." is printed as each program finishes (progress).
// Cycles: the first rising edge out of reset is cycle 0; `cycles` counts the rising edges until
// the machine is found stopped and idle (as the cycle simulator counts a program's cycles).
`timescale 1ns/1ps
`default_nettype none
`include "dnpu_core.vh"
module npu_top_bench #(
    parameter PROGRAM_WORDS = 1024,
    parameter INT_SRAM_WORDS = 256,
    parameter FP_SRAM_WORDS = 256,
    parameter DLLM_INSTRUCTIONS = 1,
    parameter QUEUE_DEPTH = 8,
    parameter VLEN = 8,
    parameter VECTOR_BITS = 16,
    parameter VECTOR_WORDS = 1024,
    parameter MATRIX_LANES = 16,
    parameter MATRIX_WORDS = 2048,
    parameter BLOCK = 8,
    parameter RANK_STEP_LANES = 4,
    parameter MLEN = 8,
    parameter BLEN = 2,
    parameter ACCUMULATORS = 2,
    parameter WROWS = 2,
    parameter DRAM_BYTES = 65536,
    parameter real BYTES_PER_CYCLE = 1.0,
    parameter DRAM_READ_LATENCY = 1,
    parameter DRAM_WRITE_LATENCY = 1,
    parameter DRAM_MAX_IN_FLIGHT = 256,
    parameter MAX_PROGRAMS = 65536
);
  localparam PC_BITS = $clog2(PROGRAM_WORDS) + 1;
  localparam DEBUG_BITS = $clog2((INT_SRAM_WORDS > FP_SRAM_WORDS) ? INT_SRAM_WORDS : FP_SRAM_WORDS);
  localparam BYTE_COUNT_BITS = $clog2(4 * BLOCK) + 1;
  localparam DEBUG_WORDS = (INT_SRAM_WORDS > FP_SRAM_WORDS) ? INT_SRAM_WORDS : FP_SRAM_WORDS;

  reg clk;
  initial clk = 1'b0;
  always #5 clk = ~clk;

  reg reset = 1'b1;
  reg program_write_enable = 1'b0;
  reg [PC_BITS-2:0] program_write_address = {PC_BITS-1{1'b0}};
  reg [31:0] program_write_data = 32'd0;
  reg [PC_BITS-1:0] program_length = {PC_BITS{1'b0}};
  reg [DEBUG_BITS-1:0] debug_index = {DEBUG_BITS{1'b0}};
  reg debug_sram_enable = 1'b0, debug_sram_matrix = 1'b0;
  reg [31:0] debug_sram_address = 32'd0;

  wire halted, stopped, idle;
  wire [`DNPU_FAULT_BITS-1:0] error_code;
  wire [31:0] core_cycles, retired;
  wire dram_request_valid, dram_request_ready, dram_request_write, dram_response_valid, dram_pending;
  wire [63:0] dram_request_address;
  wire [BYTE_COUNT_BITS-1:0] dram_request_bytes;
  wire [32*BLOCK-1:0] dram_request_data, dram_response_data;
  wire [31:0] dram_requests, dram_bytes_moved;
  wire [31:0] debug_int_register, debug_fp_register, debug_int_sram, debug_fp_sram;
  wire [63:0] debug_address_register;
  wire [VECTOR_BITS*VLEN-1:0] debug_vector_row;
  wire [16*MATRIX_LANES-1:0] debug_matrix_row;

  npu_top #(.PROGRAM_WORDS(PROGRAM_WORDS), .INT_SRAM_WORDS(INT_SRAM_WORDS), .FP_SRAM_WORDS(FP_SRAM_WORDS),
            .DLLM_INSTRUCTIONS(DLLM_INSTRUCTIONS), .QUEUE_DEPTH(QUEUE_DEPTH), .VLEN(VLEN),
            .VECTOR_BITS(VECTOR_BITS), .VECTOR_WORDS(VECTOR_WORDS), .MATRIX_LANES(MATRIX_LANES),
            .MATRIX_WORDS(MATRIX_WORDS), .BLOCK(BLOCK), .RANK_STEP_LANES(RANK_STEP_LANES), .MLEN(MLEN),
            .BLEN(BLEN), .ACCUMULATORS(ACCUMULATORS), .WROWS(WROWS), .DRAM_BYTES(DRAM_BYTES)) u_top (
      .clk(clk), .reset(reset), .program_write_enable(program_write_enable),
      .program_write_address(program_write_address), .program_write_data(program_write_data),
      .program_length(program_length), .halted(halted), .error_code(error_code), .stopped(stopped),
      .idle(idle), .core_cycles(core_cycles), .retired(retired),
      .dram_request_valid(dram_request_valid), .dram_request_ready(dram_request_ready),
      .dram_request_write(dram_request_write), .dram_request_address(dram_request_address),
      .dram_request_bytes(dram_request_bytes), .dram_request_data(dram_request_data),
      .dram_response_valid(dram_response_valid), .dram_response_data(dram_response_data),
      .debug_index(debug_index), .debug_int_register(debug_int_register),
      .debug_fp_register(debug_fp_register), .debug_address_register(debug_address_register),
      .debug_int_sram(debug_int_sram), .debug_fp_sram(debug_fp_sram), .debug_sram_enable(debug_sram_enable),
      .debug_sram_matrix(debug_sram_matrix), .debug_sram_address(debug_sram_address),
      .debug_vector_row(debug_vector_row), .debug_matrix_row(debug_matrix_row));

  bandwidth_dram #(.DRAM_BYTES(DRAM_BYTES), .BLOCK(BLOCK), .BYTES_PER_CYCLE(BYTES_PER_CYCLE),
                   .READ_LATENCY(DRAM_READ_LATENCY), .WRITE_LATENCY(DRAM_WRITE_LATENCY),
                   .MAX_IN_FLIGHT(DRAM_MAX_IN_FLIGHT)) u_dram (
      .clk(clk), .reset(reset), .request_valid(dram_request_valid), .request_ready(dram_request_ready),
      .request_write(dram_request_write), .request_address(dram_request_address),
      .request_bytes(dram_request_bytes), .request_data(dram_request_data),
      .response_valid(dram_response_valid), .response_data(dram_response_data), .pending(dram_pending),
      .requests(dram_requests), .bytes_moved(dram_bytes_moved));

  // ---- inputs and dumps ------------------------------------------------------------------
  reg [31:0] settings [0:2*MAX_PROGRAMS-1];   // per program: words, cycle budget
  reg [31:0] program_words [0:PROGRAM_WORDS-1];
  reg [31:0] status [0:7];
  reg [31:0] int_regs [0:15];
  reg [31:0] fp_regs [0:7];
  reg [63:0] addr_regs [0:7];
  reg [31:0] int_sram [0:INT_SRAM_WORDS-1];
  reg [31:0] fp_sram [0:FP_SRAM_WORDS-1];
  reg [VECTOR_BITS-1:0] vector_sram [0:VECTOR_WORDS-1];
  reg [15:0] matrix_sram [0:MATRIX_WORDS-1];

  reg [8*1024-1:0] work, vcd_file, path;
  integer programs, vcd_program, vcd_cycles, vcd_finish, p, i, j, words, budget, cycles, timed_out;

  // `$sformat` into `path`: <work>/<name>_<p>.hex
  task automatic file_name(input [8*64-1:0] name, input integer index);
    $sformat(path, "%0s/%0s_%0d.hex", work, name, index);
  endtask

  initial begin
    if (!$value$plusargs("work=%s", work)) begin
      $display("npu_top_bench: +work=<directory> is missing");
      $finish;
    end
    if (!$value$plusargs("programs=%d", programs)) programs = 1;
    if (!$value$plusargs("vcd_program=%d", vcd_program)) vcd_program = -1;
    if (!$value$plusargs("vcd=%s", vcd_file)) vcd_program = -1;
    if (!$value$plusargs("vcd_cycles=%d", vcd_cycles)) vcd_cycles = 0;
    vcd_finish = $test$plusargs("vcd_finish");
    $sformat(path, "%0s/settings.hex", work);
    $readmemh(path, settings, 0, 2 * programs - 1);
    @(negedge clk);
    for (p = 0; p < programs; p = p + 1) begin
      words = settings[2 * p];
      budget = settings[2 * p + 1];
      file_name("program", p);
      $readmemh(path, program_words);
      file_name("dram", p);
      $readmemh(path, u_dram.memory);
      reset = 1'b1;
      program_length = words[PC_BITS-1:0];
      program_write_enable = 1'b1;
      for (i = 0; i < words; i = i + 1) begin
        program_write_address = i[PC_BITS-2:0];
        program_write_data = program_words[i];
        @(negedge clk);
      end
      program_write_enable = 1'b0;
      @(negedge clk);
      if (p == vcd_program) begin
        $dumpfile(vcd_file);
        $dumpvars(0, u_top);
      end
      reset = 1'b0;
      cycles = 0;
      timed_out = 1;
      while (cycles < budget && timed_out != 0) begin
        @(negedge clk);
        cycles = cycles + 1;
        if (stopped && idle && !dram_pending && !dram_request_valid) timed_out = 0;
        if (p == vcd_program && cycles == vcd_cycles) begin
          $dumpflush;
          $dumpoff;
          if (vcd_finish != 0) $finish;   // only the activity was wanted (no state dump)
        end
      end
      if (p == vcd_program) $dumpoff;
      status[0] = {31'd0, halted};
      status[1] = {{32-`DNPU_FAULT_BITS{1'b0}}, error_code};
      status[2] = core_cycles;
      status[3] = retired;
      status[4] = cycles;
      status[5] = timed_out;
      status[6] = dram_requests;
      status[7] = dram_bytes_moved;
      for (i = 0; i < DEBUG_WORDS; i = i + 1) begin
        debug_index = i[DEBUG_BITS-1:0];
        #0.1;
        if (i < 16) int_regs[i] = debug_int_register;
        if (i < 8) begin
          fp_regs[i] = debug_fp_register;
          addr_regs[i] = debug_address_register;
        end
        if (i < INT_SRAM_WORDS) int_sram[i] = debug_int_sram;
        if (i < FP_SRAM_WORDS) fp_sram[i] = debug_fp_sram;
      end
      @(negedge clk);
      debug_sram_enable = 1'b1;
      debug_sram_matrix = 1'b0;
      for (i = 0; i < VECTOR_WORDS / VLEN; i = i + 1) begin
        debug_sram_address = i * VLEN;
        @(negedge clk);
        for (j = 0; j < VLEN; j = j + 1) vector_sram[i * VLEN + j] = debug_vector_row[VECTOR_BITS*j +: VECTOR_BITS];
      end
      debug_sram_matrix = 1'b1;
      for (i = 0; i < MATRIX_WORDS / MATRIX_LANES; i = i + 1) begin
        debug_sram_address = i * MATRIX_LANES;
        @(negedge clk);
        for (j = 0; j < MATRIX_LANES; j = j + 1) matrix_sram[i * MATRIX_LANES + j] = debug_matrix_row[16*j +: 16];
      end
      debug_sram_enable = 1'b0;
      file_name("status", p);      $writememh(path, status);
      file_name("int_regs", p);    $writememh(path, int_regs);
      file_name("fp_regs", p);     $writememh(path, fp_regs);
      file_name("addr_regs", p);   $writememh(path, addr_regs);
      file_name("int_sram", p);    $writememh(path, int_sram);
      file_name("fp_sram", p);     $writememh(path, fp_sram);
      file_name("vector_sram", p); $writememh(path, vector_sram);
      file_name("matrix_sram", p); $writememh(path, matrix_sram);
      file_name("dram_out", p);    $writememh(path, u_dram.memory);
      $display("npu_top_bench: program %0d of %0d: %0d cycles, error code %0d%0s", p + 1, programs, cycles,
               error_code, (timed_out != 0) ? ", timed out" : "");
    end
    $finish;
  end
endmodule
`default_nettype wire
