"""Generated DeepSeek-shaped checkpoints with random weights, made locally: tiny_model (the default model of
`mla-backend serve`, and the tests' checkpoint) and serving_model (benchmarks/bench_serving.py's default)."""
