// bandwidth_dram: simulation-only DRAM behind npu_top's request / response port, timed as the cycle
// simulator's bandwidth backend (npu.sim.cost.dram.BandwidthDram): one data pipe of
// BYTES_PER_CYCLE (the preset's refresh-limited peak) and a fixed access latency. A request of n
// bytes accepted in cycle t finishes its transfer at free = max(t, free) + n / BYTES_PER_CYCLE; its
// response is presented in cycle ceil(free) + READ_LATENCY (or WRITE_LATENCY), responses in order,
// at most one per cycle. Data moves when the request is accepted: a write updates `memory` at once,
// a read takes its bytes then. `request_ready` falls while MAX_IN_FLIGHT responses are owed (the
// backend has no such limit: the default is larger than anything npu_top keeps in flight).
// Cycle t counts the rising edges since `reset` fell (the first edge out of reset is cycle 0).
// `memory` is loaded and saved by the testbench (npu_top_bench: $readmemh / $writememh).
// Not synthesizable (real arithmetic); read by Icarus Verilog (-g2012) and Verilator (--timing).
// The bookkeeping (queue pointers, the pipe's `free` time, the cycle count, the memory array) is
// local to the one clocked process and updated in program order within a cycle, so it uses
// blocking assignments on purpose; only the ports are assigned nonblocking.
`default_nettype none
module bandwidth_dram #(
    parameter DRAM_BYTES = 65536,
    parameter BLOCK = 8,                          // npu_top's mx_block: 4 x BLOCK bytes per request at most
    parameter BYTE_COUNT_BITS = $clog2(4 * BLOCK) + 1,
    parameter real BYTES_PER_CYCLE = 1.0,
    parameter READ_LATENCY = 1,
    parameter WRITE_LATENCY = 1,
    parameter MAX_IN_FLIGHT = 256
) (
    input  wire                       clk,
    input  wire                       reset,
    input  wire                       request_valid,
    output wire                       request_ready,
    input  wire                       request_write,
    input  wire [63:0]                request_address,
    input  wire [BYTE_COUNT_BITS-1:0] request_bytes,
    input  wire [32*BLOCK-1:0]        request_data,
    output reg                        response_valid,
    output reg  [32*BLOCK-1:0]        response_data,
    output wire                       pending,          // responses still owed
    output reg  [31:0]                requests,         // accepted since reset
    output reg  [31:0]                bytes_moved
);
  localparam ADDRESS_BITS = $clog2(DRAM_BYTES);
  localparam [63:0] READ_DELAY = READ_LATENCY, WRITE_DELAY = WRITE_LATENCY;
  reg [7:0] memory [0:DRAM_BYTES-1];

  // responses owed, oldest first: the cycle each is due and the read data
  reg [63:0] due [0:MAX_IN_FLIGHT-1];
  reg [32*BLOCK-1:0] data [0:MAX_IN_FLIGHT-1];
  integer head, count;
  reg [63:0] cycle;
  real free;                                   // cycle the data pipe finishes what it accepted

  assign request_ready = count < MAX_IN_FLIGHT;
  assign pending = count != 0;

  integer i, n, done_cycle;
  reg [ADDRESS_BITS-1:0] address;
  reg [32*BLOCK-1:0] word;
  initial begin
    head = 0;
    count = 0;
    cycle = 64'd0;
    free = 0.0;
    response_valid = 1'b0;
    response_data = {32*BLOCK{1'b0}};
    requests = 32'd0;
    bytes_moved = 32'd0;
  end

  /* verilator lint_off BLKSEQ */
  always @(posedge clk) begin
    if (reset) begin
      head = 0;
      count = 0;
      cycle = 64'd0;
      free = 0.0;
      response_valid <= 1'b0;
      requests <= 32'd0;
      bytes_moved <= 32'd0;
    end else begin
      if (request_valid && request_ready) begin
        n = {{(32 - BYTE_COUNT_BITS){1'b0}}, request_bytes};
        // npu_top checks DRAM ranges before it asks (fault dram_range), so this is a model error
        if (request_address + {32'd0, n} > DRAM_BYTES)
          $fatal(1, "bandwidth_dram: a %0d-byte request at address %0d runs past the %0d-byte DRAM",
                 n, request_address, DRAM_BYTES);
        if ($itor(cycle) > free) free = $itor(cycle);
        free = free + n / BYTES_PER_CYCLE;
        word = {32*BLOCK{1'b0}};
        for (i = 0; i < n; i = i + 1) begin
          address = request_address[ADDRESS_BITS-1:0] + i[ADDRESS_BITS-1:0];
          if (request_write) memory[address] = request_data[8*i +: 8];
          else word[8*i +: 8] = memory[address];
        end
        done_cycle = $rtoi($ceil(free - 1e-9));
        due[(head + count) % MAX_IN_FLIGHT] = {32'd0, done_cycle[31:0]} + (request_write ? WRITE_DELAY : READ_DELAY);
        data[(head + count) % MAX_IN_FLIGHT] = word;
        count = count + 1;
        requests <= requests + 32'd1;
        bytes_moved <= bytes_moved + n;
      end
      // the response for the next cycle
      if (count != 0 && due[head] <= cycle + 64'd1) begin
        response_valid <= 1'b1;
        response_data <= data[head];
        head = (head + 1) % MAX_IN_FLIGHT;
        count = count - 1;
      end else begin
        response_valid <= 1'b0;
      end
      cycle = cycle + 64'd1;
    end
  end
  /* verilator lint_on BLKSEQ */
endmodule
`default_nettype wire
