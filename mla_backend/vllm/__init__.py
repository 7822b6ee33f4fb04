"""vLLM adapter: `--attention-backend CUSTOM` runs MLA decode on mla_backend's kernel.

    plugin.py    entry point of group `vllm.general_plugins`: registers CUSTOM -> backend.MLABackend
    backend.py   the backend's static facts and the reasons vLLM gives for a configuration it refuses
    metadata.py  per-step metadata: vLLM's block tables and seq lens plus our tile-scheduler plan
    impl.py      forward_mqa: vLLM's absorbed decode query through mla_decode_with_kvcache

Nothing is imported here, so that loading the plugin stays cheap.
"""
