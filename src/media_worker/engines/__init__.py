"""The thumbnail engine port and its adapters.

`port.py` the port; `local.py` the in-process engine (`sniff.py` the type, `probe.py` the
header, `images/` and `video.py` the decode, `encode.py` the sizes, `placeholders/` the
BlurHash); `imagor/` the engine of an imagor-protocol service; `isolation.py` the killable
decoder processes both use (`allocator.py`, `decode_budget.py` their memory).
"""
