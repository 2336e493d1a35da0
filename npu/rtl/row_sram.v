// row_sram: one on-chip SRAM of the NPU (vector, matrix, FP or INT) as LANES sram_bank instances
// of one element each, so that one access reads or writes LANES consecutive elements starting at
// ANY element address (the functional simulator's SRAMs are element-addressed: DMA rows, strided
// activation rows and FP / INT SRAM rows need not be aligned; npu/sim/functional/memory.py).
//
// Element e lives in bank e mod LANES at bank word e / LANES. An access at `address` gives lane j
// element address + j: bank b serves lane (b - address) mod LANES, at word address / LANES, plus
// one where the row wraps past the bank word (element address + lane, upper bits). lane_enable selects the
// lanes accessed (a partial DMA block, the tail of a row); a disabled lane's bank is not selected.
// The caller keeps address + LANES within WORDS for the lanes it enables.
//
// Timing (the banks' own): one access per cycle; a write takes effect at the clock edge; a read
// returns its LANES elements in read_data after the clock edge (latency 1 cycle), rotated back to
// lane order, and read_data holds until the next read.
// Width per access = LANES x ELEMENT_BITS = the preset's width_bits (vector: VLEN elements of the
// vector format; matrix: WROWS x MLEN bf16; FP / INT: width_bits / 32 words); depth WORDS / LANES.
`default_nettype none
module row_sram #(
    parameter LANES = 8,            // elements per access, a power of two >= 2
    parameter ELEMENT_BITS = 16,    // bits per element (bank width)
    parameter WORDS = 1024,         // elements in the memory, a multiple of LANES
    parameter ADDRESS_BITS = $clog2(WORDS)
) (
    input  wire                         clk,
    input  wire                         enable,        // an access this cycle
    input  wire                         write,         // 1: write, 0: read
    input  wire [ADDRESS_BITS-1:0]      address,       // element address of lane 0
    input  wire [LANES-1:0]             lane_enable,   // lanes taking part
    input  wire [LANES*ELEMENT_BITS-1:0] write_data,   // lane j at [j*ELEMENT_BITS +: ELEMENT_BITS]
    output reg  [LANES*ELEMENT_BITS-1:0] read_data     // lane j = element (read address + j)
);
  localparam LANE_BITS = $clog2(LANES);
  localparam BANK_WORDS = WORDS / LANES;
  localparam BANK_ADDRESS_BITS = ADDRESS_BITS - LANE_BITS;

  wire [LANE_BITS-1:0] first_bank = address[LANE_BITS-1:0];
  reg  [LANE_BITS-1:0] read_rotation;   // first_bank of the last read
  wire [LANES*ELEMENT_BITS-1:0] bank_data;

  genvar b;
  generate
    for (b = 0; b < LANES; b = b + 1) begin : bank
      wire [LANE_BITS-1:0] lane = b[LANE_BITS-1:0] - first_bank;   // mod LANES
      /* verilator lint_off UNUSEDSIGNAL */  // the low bits of the element address are the bank, b
      wire [ADDRESS_BITS-1:0] element = address + {{(ADDRESS_BITS-LANE_BITS){1'b0}}, lane};
      /* verilator lint_on UNUSEDSIGNAL */
      wire [BANK_ADDRESS_BITS-1:0] bank_row = element[ADDRESS_BITS-1:LANE_BITS];
      sram_bank #(.WORDS(BANK_WORDS), .WIDTH(ELEMENT_BITS), .ADDRESS_BITS(BANK_ADDRESS_BITS)) u_bank (
          .clk(clk), .ADDRESS(bank_row), .wd(write_data[lane*ELEMENT_BITS +: ELEMENT_BITS]),
          .banksel(enable && lane_enable[lane]), .read(!write), .write(write),
          .dataout(bank_data[b*ELEMENT_BITS +: ELEMENT_BITS]));
    end
  endgenerate

  always @(posedge clk)
    if (enable && !write) read_rotation <= first_bank;

  integer j;
  reg [LANE_BITS-1:0] source_bank;
  always @* begin
    read_data = {LANES*ELEMENT_BITS{1'b0}};
    source_bank = {LANE_BITS{1'b0}};
    for (j = 0; j < LANES; j = j + 1) begin
      source_bank = j[LANE_BITS-1:0] + read_rotation;   // mod LANES
      read_data[j*ELEMENT_BITS +: ELEMENT_BITS] = bank_data[source_bank*ELEMENT_BITS +: ELEMENT_BITS];
    end
  end
`ifndef SYNTHESIS
  initial read_rotation = {LANE_BITS{1'b0}};
`endif
endmodule
`default_nettype wire
