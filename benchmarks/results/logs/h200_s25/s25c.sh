#!/usr/bin/env bash
# s25c (the call's command line): SGLang 0.5.17 adapter tests against the real SGLang, then the TP 1 e2e, from the
# carried .bundle-sglang; kept under integration_tests/results/h200/sglang_e2e_tp1_1be9fc1/.
STAGE_TIMEOUT=440 timeout -s KILL 585 bash .variants/sg.sh sglang-unit sglang-tp1; echo "rc=$?"
