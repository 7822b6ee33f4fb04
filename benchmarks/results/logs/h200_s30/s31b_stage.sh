#!/usr/bin/env bash
# Local, before each s31b call: puts one piece of the vLLM 0.26 bundle in .bvs (ignored; carried as `.bvs`). The
# bundle's three 60 MiB parts plus the tree are over the 64 MiB a call carries, so they travel as three 47 MB pieces
# in three calls back to back (the machine keeps /tmp while warm): `s31b_stage.sh 0`, call 1; `... 1`, call 2;
# `... 2`, call 3 (with the checksums and the unpacker). Pieces: `cat .bundle-vllm/bundle.tar.xz.part-* | split -b
# 47000000 -d -a 1 - /tmp/bvsplit/p` (.bundle-vllm from `mla-backend bundle build --recipe vllm-0.26.0`).
set -euo pipefail
piece=$1
[ -f /tmp/bvsplit/p2 ] || { mkdir -p /tmp/bvsplit; cat .bundle-vllm/bundle.tar.xz.part-* | split -b 47000000 -d -a 1 - /tmp/bvsplit/p; }
rm -rf .bvs && mkdir .bvs && cp "/tmp/bvsplit/p$piece" .bvs/
[ "$piece" != 2 ] || cp .bundle-vllm/SHA256SUMS .bundle-vllm/mla_backend_bundle.py .bvs/
ls -la .bvs
