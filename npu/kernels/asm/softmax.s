# softmax.s - softmax of each row: max, subtract, exp, sum, reciprocal, scale.
#
# Layout contract (assembler constants; X_HI / X_LO are the upper / lower 16 bits of X):
#   DRAM   X_HI/LO   ROWS rows of COLS values in {ACT_FMT}, ROW_BYTES apart
#          Y_HI/LO   out: the same shape
#   VECTOR SRAM  BUF_HI/LO   ROWS * COLS elements, VLEN-aligned (rows computed in place)
#   Sizes: COLS = CHUNKS * VLEN.
#
# Per row: m = max(x) (vmaxr from -inf); e = exp(x - m) in place, S = sum of e (vsum per chunk,
# fp32 across chunks); y = e * (1 / S) with one scalar reciprocal - no vector division.
#
# Registers: r2 = BUF, r3 = ROWS, r4 = COLS, r5 = ROW_BYTES, r6 = row, r7 = chunk;
#   f0 = m, f1 = S, f2 = 1 / S.

        lui  r1, X_HI
        ori  r1, r1, X_LO
        amov a0, r1
        lui  r1, Y_HI
        ori  r1, r1, Y_LO
        amov a1, r1
        lui  r2, BUF_HI
        ori  r2, r2, BUF_LO
        addi r3, r0, ROWS
        addi r4, r0, COLS
        addi r5, r0, ROW_BYTES
        dld.v a0, r2, r3, r4, r5, r4, {ACT_FMT}
        wait dma
        addi r6, r2, 0
        loop r3, softmax_rows_end
        flui f0, -inf
        addi r7, r6, 0
        loopi CHUNKS, softmax_max_end
        vmaxr f0, r7
        addi r7, r7, VLEN
softmax_max_end:
        wait vector
        flui f1, 0.0
        addi r7, r6, 0
        loopi CHUNKS, softmax_exp_end
        vsubs r7, r7, f0
        vexp  r7, r7
        vsum  f1, r7
        addi  r7, r7, VLEN
softmax_exp_end:
        wait vector
        frecip f2, f1
        addi r7, r6, 0
        loopi CHUNKS, softmax_scale_end
        vmuls r7, r7, f2
        addi  r7, r7, VLEN
softmax_scale_end:
        add  r6, r6, r4
softmax_rows_end:
        wait vector
        dst.v a1, r2, r3, r4, r5, r4, {ACT_FMT}
        wait dma
        halt
