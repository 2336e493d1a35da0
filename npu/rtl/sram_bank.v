// sram_bank: a behavioural single-port SRAM bank with the port list of the ASAP7 SRAM bank macros
// srambank_{R}x4x{W}_6t122 (../shared/pdk/asap7_sram/verilog, The-OpenROAD-Project/asap7_sram_0p0):
// clk, ADDRESS, wd, banksel, read, write, dataout. One access per clock edge; a write (write and
// banksel) has priority over a read; a read (read and banksel, no write) latches the word into
// dataout at the clock edge: read latency 1 cycle, and dataout holds until the next read, whatever
// is written meanwhile - as the macro's model does. Synthesis replaces this module by a tiling of
// macros of WIDTH bits (a macro width W dividing WIDTH side by side, R x 4 words stacked to WORDS).
// Contents start at zero in simulation, as the functional simulator's SRAMs do (an SRAM has no reset).
`default_nettype none
module sram_bank #(
    parameter WORDS = 1024,
    parameter WIDTH = 16,
    parameter ADDRESS_BITS = $clog2(WORDS)
) (
    input  wire                    clk,
    input  wire [ADDRESS_BITS-1:0] ADDRESS,
    input  wire [WIDTH-1:0]        wd,
    input  wire                    banksel,
    input  wire                    read,
    input  wire                    write,
    output reg  [WIDTH-1:0]        dataout
);
  reg [WIDTH-1:0] mem [0:WORDS-1];
`ifndef SYNTHESIS
  integer i;
  initial begin
    for (i = 0; i < WORDS; i = i + 1) mem[i] = {WIDTH{1'b0}};
    dataout = {WIDTH{1'b0}};
  end
`endif
  always @(posedge clk)
    if (write && banksel) mem[ADDRESS] <= wd;
    else if (read && banksel) dataout <= mem[ADDRESS];
endmodule
`default_nettype wire
