// Leading zeros of `value` (WIDTH when it is zero): the normalising shift of the fp32 adder
// and multiplier. One definition for both, so their rounding paths cannot drift apart.
module leading_zero_count #(
    parameter WIDTH = 27,
    parameter COUNT_BITS = 5
) (
    input  wire [WIDTH-1:0]      value,
    output reg  [COUNT_BITS-1:0] count
);
  localparam [COUNT_BITS-1:0] ALL_ZERO = WIDTH;
  localparam [COUNT_BITS-1:0] TOP = WIDTH - 1;
  reg [COUNT_BITS-1:0] position;
  integer i;
  always @* begin
    count = ALL_ZERO;
    position = TOP;
    for (i = 0; i < WIDTH; i = i + 1) begin
      if (value[i]) count = position;
      position = position - 1'b1;
    end
  end
endmodule
