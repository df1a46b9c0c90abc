"""Zero-shot node classification by (vision-)language models: neighbours, prompts, answer parsing."""
