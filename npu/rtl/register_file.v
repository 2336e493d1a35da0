// register_file: COUNT registers of WIDTH bits, READS combinational read ports (port p: index in
// read_index[p*INDEX_BITS +: INDEX_BITS], data in read_data[p*WIDTH +: WIDTH]) and one write
// port, plus a second write port (unit_write_*) for the queued units' register results (the vector
// unit's vsum / vmaxr / vargmax, ISA rule 3); of two writes to one register in a cycle the unit's
// wins (the synchronisation rules keep the core off a register the vector unit still owes).
// ZERO_REGISTER = 1 makes register 0 read as zero and ignore writes (the INT file's r0).
// Synchronous reset clears every register, as the functional simulator's reset does.
`default_nettype none
module register_file #(
    parameter COUNT = 16,
    parameter WIDTH = 32,
    parameter INDEX_BITS = 4,
    parameter READS = 1,
    parameter ZERO_REGISTER = 0
) (
    input  wire                        clk,
    input  wire                        reset,
    input  wire                        write_enable,
    input  wire [INDEX_BITS-1:0]       write_index,
    input  wire [WIDTH-1:0]            write_data,
    input  wire                        unit_write_enable,
    input  wire [INDEX_BITS-1:0]       unit_write_index,
    input  wire [WIDTH-1:0]            unit_write_data,
    input  wire [READS*INDEX_BITS-1:0] read_index,
    output reg  [READS*WIDTH-1:0]      read_data
);
  reg [WIDTH-1:0] registers [0:COUNT-1];
  integer r, p;
  always @(posedge clk) begin
    if (reset) begin
      for (r = 0; r < COUNT; r = r + 1) registers[r] <= {WIDTH{1'b0}};
    end else begin
      if (write_enable && !(ZERO_REGISTER != 0 && write_index == {INDEX_BITS{1'b0}}))
        registers[write_index] <= write_data;
      if (unit_write_enable && !(ZERO_REGISTER != 0 && unit_write_index == {INDEX_BITS{1'b0}}))
        registers[unit_write_index] <= unit_write_data;
    end
  end
  always @* begin
    for (p = 0; p < READS; p = p + 1) begin
      if (ZERO_REGISTER != 0 && read_index[p*INDEX_BITS +: INDEX_BITS] == {INDEX_BITS{1'b0}})
        read_data[p*WIDTH +: WIDTH] = {WIDTH{1'b0}};
      else
        read_data[p*WIDTH +: WIDTH] = registers[read_index[p*INDEX_BITS +: INDEX_BITS]];
    end
  end
endmodule
`default_nettype wire
