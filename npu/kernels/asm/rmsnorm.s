# rmsnorm.s - RMSNorm of each row with a weight: y = x * rsqrt(mean(x^2) + eps) * w.
#
# Layout contract (assembler constants; X_HI / X_LO are the upper / lower 16 bits of X):
#   DRAM   X_HI/LO   ROWS rows of COLS values in {ACT_FMT}, ROW_BYTES apart
#          W_HI/LO   one row of COLS weights in {ACT_FMT}
#          Y_HI/LO   out: the same shape as X
#   VECTOR SRAM  BUF_HI/LO   ROWS * COLS elements (rows normalised in place)
#                WBUF_HI/LO  COLS elements;  SQ_HI/LO  one scratch row
#   Sizes: COLS = CHUNKS * VLEN.  Scalars: INV_N_HI/LO = fp32 bits of 1 / COLS,
#          EPS_HI/LO = fp32 bits of eps.
#
# Per row: ss = sum of x*x (vmul per chunk, vsum, fp32 across chunks); r = rsqrt(ss * (1/COLS)
# + eps) on the scalar unit; y = (x * r) * w - the order of the model's RMSNorm.
#
# Registers: r2 = BUF, r3 = ROWS, r4 = COLS, r5 = ROW_BYTES, r6 = row, r7 = chunk,
#   r8 = SQ, r9 = WBUF, r10 = weight chunk; f0 = ss, f1 = r, f5 = 1 / COLS, f6 = eps.

        lui  r1, X_HI
        ori  r1, r1, X_LO
        amov a0, r1
        lui  r1, W_HI
        ori  r1, r1, W_LO
        amov a1, r1
        lui  r1, Y_HI
        ori  r1, r1, Y_LO
        amov a2, r1
        lui  r2, BUF_HI
        ori  r2, r2, BUF_LO
        lui  r9, WBUF_HI
        ori  r9, r9, WBUF_LO
        lui  r8, SQ_HI
        ori  r8, r8, SQ_LO
        addi r1, r0, 1
        addi r3, r0, ROWS
        addi r4, r0, COLS
        addi r5, r0, ROW_BYTES
        dld.v a0, r2, r3, r4, r5, r4, {ACT_FMT}
        dld.v a1, r9, r1, r4, r5, r4, {ACT_FMT}
        lui  r1, INV_N_HI
        ori  r1, r1, INV_N_LO
        fmv.f.i f5, r1
        lui  r1, EPS_HI
        ori  r1, r1, EPS_LO
        fmv.f.i f6, r1
        wait dma
        addi r6, r2, 0
        loop r3, rms_rows_end
        flui f0, 0.0
        addi r7, r6, 0
        loopi CHUNKS, rms_square_end
        vmul r8, r7, r7
        vsum f0, r8
        addi r7, r7, VLEN
rms_square_end:
        wait vector
        fmul f1, f0, f5
        fadd f1, f1, f6
        frsqrt f1, f1
        addi r7, r6, 0
        addi r10, r9, 0
        loopi CHUNKS, rms_scale_end
        vmuls r7, r7, f1
        vmul  r7, r7, r10
        addi  r7, r7, VLEN
        addi  r10, r10, VLEN
rms_scale_end:
        add  r6, r6, r4
rms_rows_end:
        wait vector
        dst.v a2, r2, r3, r4, r5, r4, {ACT_FMT}
        wait dma
        halt
