// word_memory: a behavioural array of WORDS words with one synchronous write port and two
// combinational read ports (the core's access and a debug / scan read). It stands for the program
// memory and the INT / FP scalar SRAMs until the SRAM wrappers bind ASAP7 macros.
// Contents start at zero in simulation, as the functional simulator's SRAMs do (not reset: an SRAM
// keeps its data across a core reset).
`default_nettype none
module word_memory #(
    parameter WORDS = 1024,
    parameter ADDRESS_BITS = 10,
    parameter WIDTH = 32
) (
    input  wire                    clk,
    input  wire                    write_enable,
    input  wire [ADDRESS_BITS-1:0] write_address,
    input  wire [WIDTH-1:0]        write_data,
    input  wire [ADDRESS_BITS-1:0] read_address,
    output wire [WIDTH-1:0]        read_data,
    input  wire [ADDRESS_BITS-1:0] debug_address,
    output wire [WIDTH-1:0]        debug_data
);
  reg [WIDTH-1:0] words [0:WORDS-1];
`ifndef SYNTHESIS
  integer i;
  initial for (i = 0; i < WORDS; i = i + 1) words[i] = {WIDTH{1'b0}};
`endif
  always @(posedge clk)
    if (write_enable) words[write_address] <= write_data;
  assign read_data = words[read_address];
  assign debug_data = words[debug_address];
endmodule
`default_nettype wire
