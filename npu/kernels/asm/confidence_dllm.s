# confidence_dllm.s - per position: x0 = argmax and its softmax probability, ONE pass over
# the logits (dLLM lowering: running argmax with `vargmax`).
#
# Layout contract (assembler constants; X_HI / X_LO are the upper / lower 16 bits of X):
#   DRAM   LOGITS_HI/LO      POSITIONS rows of VOCAB logits in {ACT_FMT}, LOGITS_ROW_HI/LO bytes apart
#          NOISE_HI/LO       (USE_NOISE = 1) POSITIONS rows of VOCAB Gumbel values g in fp32,
#                            NOISE_ROW_HI/LO bytes apart
#          X0_OUT_HI/LO      out: POSITIONS int32 token ids x0
#          CONF_OUT_HI/LO    out: POSITIONS fp32 confidences
#   VECTOR SRAM  BUF0, BUF1  two tile blocks (double buffer) of 2 * TILE elements each:
#                            [TILE logits][TILE perturbed logits]; VLEN-aligned
#   INT SRAM     X0_SRAM     out: POSITIONS words x0 (left there for the commit kernel)
#   FP SRAM      CONF_SRAM   out: POSITIONS words confidence (left there for the commit kernel)
#                FSCRATCH    one scratch word
#   Sizes: VOCAB = TILES * TILE, TILE = TILE_CHUNKS * VLEN, TILE_BYTES = TILE * bytes({ACT_FMT}),
#          NOISE_TILE_BYTES = TILE * 4.
#   Scalars: USE_NOISE (0 greedy, 1 temperature sampling), TEMP_HI/LO = fp32 bits of the
#          temperature T, FORBID_HI/LO = vocabulary id whose logit is set to -inf first (the
#          [MASK] token; -1 = none). The kernel writes -inf into that DRAM logit in place.
#
# Per position, tile by tile (the DMA fetches tile t+1 while the vector unit works on tile t):
#   argmax source s = logits (greedy) or logits + T * g (temperature, Gumbel-max sampling)
#   vargmax over the tile's chunks keeps the running max of s and the SRAM address of its
#   first occurrence (ties: lowest index); M = running max of the raw logits
#   online softmax: if M grew, S = S * exp(M_old - M); then S += sum(exp(l - M)) over the tile
#   confidence = 1 / S (greedy: x0 holds the max) or exp(l[x0] - M) / S (temperature: the
#   softmax of the raw logits at x0, as LLaDA; l[x0] is one 2-byte DMA, not a second pass).
#
# Registers: r1 = 1, r2 = TILE, r3 = tiles left, r4 = position, r5 = vargmax address,
#   r6 = vocabulary id of the tile's first logit, r7 / r8 = current / next tile block,
#   r9 = BUF0 ^ BUF1, r10 = USE_NOISE, r12 = argmax-source base, r13 = x0, r14 = chunk pointer;
#   f0 = M, f1 = S, f2 = source max before the tile, f3 = M before the tile, f5 = confidence,
#   f6 = running source max, f7 = T; a0 / a2 = logits / noise row, a1 / a3 = their next tile.

        addi r1, r0, 1
        addi r2, r0, TILE
        addi r9, r0, BUF0
        addi r11, r0, BUF1
        xor  r9, r9, r11
        addi r10, r0, USE_NOISE
        lui  r11, TEMP_HI
        ori  r11, r11, TEMP_LO
        fmv.f.i f7, r11
        lui  r11, LOGITS_HI
        ori  r11, r11, LOGITS_LO
        amov a6, r11
        lui  r11, NOISE_HI
        ori  r11, r11, NOISE_LO
        amov a7, r11
        addi r4, r0, 0
        addi r15, r0, POSITIONS
        loop r15, conf_positions_end
        lui  r11, LOGITS_ROW_HI
        ori  r11, r11, LOGITS_ROW_LO
        amac a0, a6, r4, r11            # a0 = this position's logits
        lui  r11, NOISE_ROW_HI
        ori  r11, r11, NOISE_ROW_LO
        amac a2, a7, r4, r11            # a2 = this position's noise
        lui  r11, FORBID_HI
        ori  r11, r11, FORBID_LO
        blt  r11, r0, conf_no_forbid
        addi r12, r0, ACT_BYTES
        amac a4, a0, r11, r12
        flui f4, -inf
        fsw  f4, FSCRATCH(r0)
        addi r12, r0, FSCRATCH
        dst.f a4, r12, r1, r1, r0, r0, {ACT_FMT}   # logits[FORBID] = -inf
conf_no_forbid:
        flui f0, -inf
        flui f1, 0.0
        flui f6, -inf
        addi r13, r0, 0
        addi r6, r0, 0
        addi r7, r0, BUF0
        xor  r8, r7, r9
        aaddi a1, a0, 0
        aaddi a3, a2, 0
        dld.v a1, r7, r1, r2, r0, r0, {ACT_FMT}    # tile 0
        beq  r10, r0, conf_first_tile_loaded
        add  r12, r7, r2
        dld.v a3, r12, r1, r2, r0, r0, fp32
conf_first_tile_loaded:
        addi r3, r0, TILES
        loopi TILES, conf_tiles_end
        wait dma|vector
        addi r3, r3, -1
        aaddi a1, a1, TILE_BYTES
        aaddi a3, a3, NOISE_TILE_BYTES
        beq  r3, r0, conf_prefetched
        dld.v a1, r8, r1, r2, r0, r0, {ACT_FMT}    # prefetch the next tile
        beq  r10, r0, conf_prefetched
        add  r12, r8, r2
        dld.v a3, r12, r1, r2, r0, r0, fp32
conf_prefetched:
        fmov f2, f6
        fmov f3, f0
        addi r14, r7, 0
        bne  r10, r0, conf_noise_max
        addi r12, r7, 0                 # greedy: the source is the logits
        loopi TILE_CHUNKS, conf_greedy_max_end
        vargmax f6, r5, r14, r14
        addi r14, r14, VLEN
conf_greedy_max_end:
        j    conf_max_done
conf_noise_max:
        add  r12, r7, r2                # temperature: the source is logits + T * g
        addi r11, r12, 0
        loopi TILE_CHUNKS, conf_noise_max_end
        vmuls r11, r11, f7
        vadd  r11, r11, r14
        vargmax f6, r5, r11, r11
        vmaxr f0, r14
        addi r11, r11, VLEN
        addi r14, r14, VLEN
conf_noise_max_end:
conf_max_done:
        wait vector
        bne  r10, r0, conf_have_max
        fmov f0, f6
conf_have_max:
        flt  r11, f2, f6                # a new source maximum in this tile: r5 is its address
        beq  r11, r0, conf_same_x0
        sub  r13, r5, r12
        add  r13, r13, r6
conf_same_x0:
        flt  r11, f3, f0                # M grew: rescale the running sum
        beq  r11, r0, conf_sum_tile
        fsub f4, f3, f0
        fexp f4, f4
        fmul f1, f1, f4
conf_sum_tile:
        addi r14, r7, 0
        loopi TILE_CHUNKS, conf_sum_end
        vsubs r14, r14, f0
        vexp  r14, r14
        vsum  f1, r14
        addi  r14, r14, VLEN
conf_sum_end:
        xor  r7, r7, r9
        xor  r8, r8, r9
        add  r6, r6, r2
conf_tiles_end:
        wait vector
        frecip f5, f1
        beq  r10, r0, conf_store
        addi r12, r0, ACT_BYTES
        amac a4, a0, r13, r12
        addi r12, r0, FSCRATCH
        dld.f a4, r12, r1, r1, r0, r0, {ACT_FMT}   # l[x0]
        wait dma
        flw  f4, FSCRATCH(r0)
        fsub f4, f4, f0
        fexp f4, f4
        fmul f5, f4, f5
conf_store:
        fsw  f5, CONF_SRAM(r4)
        sw   r13, X0_SRAM(r4)
        addi r4, r4, 1
conf_positions_end:
        addi r11, r0, POSITIONS
        lui  r12, X0_OUT_HI
        ori  r12, r12, X0_OUT_LO
        amov a4, r12
        addi r12, r0, X0_SRAM
        dst.i a4, r12, r1, r11, r0, r0, int32
        lui  r12, CONF_OUT_HI
        ori  r12, r12, CONF_OUT_LO
        amov a5, r12
        addi r12, r0, CONF_SRAM
        dst.f a5, r12, r1, r11, r0, r0, fp32
        wait dma
