"""Node features from raw text and images: encoders, a resumable cache and the extraction loop.

>>> from mmgraph.features import encode_nodes
>>> result = encode_nodes(data, "text", "minilm")          # doctest: +SKIP
>>> data["clipart"].x_text.shape, result.from_cache        # doctest: +SKIP

Ctrl-C during extraction raises :class:`Interrupted` (a ``KeyboardInterrupt``) once the finished
batches are saved; its message says what was saved, and a second run resumes.

Command line: ``python -m mmgraph.features dataset=openclipart encoder=minilm``.
"""
from mmgraph.features.cache import FeatureCache
from mmgraph.features.encoders import (EfficientNetLite0Encoder, Encoder, HFJointEncoder, HFTextEncoder,
                                       HFVLMEncoder, encoder_names, get_encoder, register_encoder)
from mmgraph.features.extract import FeatureResult, attach_features, default_cache_dir, encode_nodes
from mmgraph.features.loop import Interrupted

__all__ = ["Encoder", "get_encoder", "register_encoder", "encoder_names", "HFTextEncoder", "HFJointEncoder",
           "HFVLMEncoder", "EfficientNetLite0Encoder", "FeatureCache", "FeatureResult", "encode_nodes",
           "attach_features", "default_cache_dir", "Interrupted"]
