#!/usr/bin/env bash
# s26c: the SGLang 0.5.17 TP 1 e2e (tiny model: logprobs, greedy, decode speed as the fastest of 5 rounds of 1024
# tokens) from the carried .bundle-sglang.
STAGE_TIMEOUT=540 timeout -s KILL 590 bash .variants/sg.sh sglang-tp1; echo "rc=$?"
