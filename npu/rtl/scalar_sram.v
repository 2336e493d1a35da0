// scalar_sram: the INT or FP SRAM of npu_core, a behavioural array of WORDS 32-bit words with
//  - the core's word port (lw / sw, flw / fsw): a combinational read and a write at the clock edge,
//    both in the instruction's issue cycle (the core is not pipelined, docs/rtl.md);
//  - a debug read (the testbench's dump), combinational;
//  - a row port for the queued units (DMA, vector unit): LANES consecutive words from any word
//    address, lane-masked writes, read data registered (latency 1 cycle, like row_sram).
// The row port's writes land after the core's in a cycle (the synchronisation rules keep the two
// off the same words). Addresses wrap modulo WORDS (a power of two); the units check ranges.
// Binding ASAP7 macros (single-port) here needs the core's access to go through a port with a
// stall, which the single-cycle core has not: left behavioural (docs/rtl.md).
`default_nettype none
module scalar_sram #(
    parameter WORDS = 1024,
    parameter ADDRESS_BITS = 10,
    parameter LANES = 8
) (
    input  wire                    clk,
    input  wire                    write_enable,
    input  wire [ADDRESS_BITS-1:0] write_address,
    input  wire [31:0]             write_data,
    input  wire [ADDRESS_BITS-1:0] read_address,
    output wire [31:0]             read_data,
    input  wire [ADDRESS_BITS-1:0] debug_address,
    output wire [31:0]             debug_data,
    input  wire                    row_enable,
    input  wire                    row_write,
    input  wire [ADDRESS_BITS-1:0] row_address,
    input  wire [LANES-1:0]        row_lane_enable,
    input  wire [32*LANES-1:0]     row_write_data,
    output reg  [32*LANES-1:0]     row_read_data
);
  reg [31:0] words [0:WORDS-1];
  integer i, j;
`ifndef SYNTHESIS
  initial begin
    for (i = 0; i < WORDS; i = i + 1) words[i] = 32'd0;
    row_read_data = {32*LANES{1'b0}};
  end
`endif
  wire [ADDRESS_BITS*LANES-1:0] lane_address;   // lane j: row_address + j (mod WORDS)
  genvar g;
  generate
    for (g = 0; g < LANES; g = g + 1) begin : lane
      assign lane_address[g*ADDRESS_BITS +: ADDRESS_BITS] = row_address + g[ADDRESS_BITS-1:0];
    end
  endgenerate
  always @(posedge clk) begin
    if (write_enable) words[write_address] <= write_data;
    for (j = 0; j < LANES; j = j + 1)
      if (row_enable && row_lane_enable[j]) begin
        if (row_write) words[lane_address[j*ADDRESS_BITS +: ADDRESS_BITS]] <= row_write_data[32*j +: 32];
        else row_read_data[32*j +: 32] <= words[lane_address[j*ADDRESS_BITS +: ADDRESS_BITS]];
      end
  end
  assign read_data = words[read_address];
  assign debug_data = words[debug_address];
endmodule
`default_nettype wire
