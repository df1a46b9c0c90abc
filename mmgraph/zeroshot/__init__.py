"""Zero-shot node classification by (vision-)language models: neighbours, prompts, answer parsing,
and the two models of :class:`mmgraph.tasks.ZeroShotNodeClassification`."""
from mmgraph.zeroshot.clip_classifier import ClipClassifier
from mmgraph.zeroshot.lm_classifier import LMClassifier

__all__ = ["LMClassifier", "ClipClassifier"]
