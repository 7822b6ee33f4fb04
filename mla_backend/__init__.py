"""Hopper (sm_90a) MLA decode kernel for paged KV caches, as PyTorch ops and an engine attention backend."""

__version__ = "0.1.0"

__all__ = ["__version__", "flash_mla_with_kvcache", "get_mla_metadata", "mla_decode_with_kvcache"]
_OPS = frozenset(__all__) - {"__version__"}


def __getattr__(name):
    # Importing the package stays cheap (no torch, no extension build) until an op is asked for.
    if name in _OPS:
        from . import ops

        return getattr(ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_OPS})
