"""SGLang adapter: `--attention-backend mla_backend` runs MLA decode on mla_backend's kernel.

    plugin.py    entry point of group `sglang.srt.plugins`: adds the name to SGLang's choices and registers
                 the backend factory and the DeepSeek attention handler for it
    backend.py   MLABackend: SGLang's FlashMLA backend with decode and target-verify on our kernel
    pages.py     SGLang's req_to_token rows turned into the kernel's block table (64-token pages)

Nothing is imported here, so that loading the plugin stays cheap.
"""
