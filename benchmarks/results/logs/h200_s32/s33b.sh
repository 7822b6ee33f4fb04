#!/usr/bin/env bash
# s33b (prepared in the thirty-second session, not yet run; after s33a, worth it if v88 gains): two refinements of
# v88, FlashMLA's choices: V88E (`exp-v88e-evict-first`: the KV loads hinted L2 evict-first) and V88D
# (`exp-v88d-late-v0-refill`: warpgroup 0 refills A's V0 after B's softmax). One call (carry .variants/s33; ~5 min).
# Predicted: each within +-2% of v88 (FlashMLA's comments call the second "seems to be faster"; the first can cost
# the second m-tile CTA its L2 hits).
bash benchmarks/results/logs/h200_s32/probe_kit.sh main-nocheck V88 V88E V88D
