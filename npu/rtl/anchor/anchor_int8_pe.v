// anchor_int8_pe: one INT8 x INT8 -> INT32 processing element of a weight-stationary systolic
// array, the kind of PE of the OpenROAD-flow-scripts ASAP7 array designs: it exists only as the
// anchor row of docs/synthesis.md, so that our flow's area per PE can be set beside published
// open-flow figures. The NPU's own PE (matrix_pe) multiplies bf16 and accumulates fp32.
//
// The PE holds a signed 8-bit weight (loaded when w_load is high), takes a signed 8-bit
// activation from its left neighbour and a 32-bit partial sum from the PE above, and passes the
// activation right and psum_in + act_in * weight down, both registered (latency 1 cycle). The
// sum wraps modulo 2^32 (two's complement), as an INT32 accumulator does.
`default_nettype none
module anchor_int8_pe (
    input  wire              clk,
    input  wire              w_load,
    input  wire signed [7:0] w_data,
    input  wire signed [7:0] act_in,
    input  wire       [31:0] psum_in,
    output reg  signed [7:0] act_out,
    output reg        [31:0] psum_out
);
  reg signed [7:0] weight;
  wire signed [15:0] product = act_in * weight;
  always @(posedge clk) begin
    if (w_load) weight <= w_data;
    act_out <= act_in;
    psum_out <= psum_in + {{16{product[15]}}, product};
  end
endmodule
`default_nettype wire
