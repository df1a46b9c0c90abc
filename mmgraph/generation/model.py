"""A pretrained language model that writes a node's text while reading its multimodal neighbours.

:class:`NeighborLM` is MMGL's generator (Yoon et al. 2023, "Multimodal Graph Learning for
Generative Tasks"): a Hugging Face causal LM (Llama/SmolLM2, OPT, GPT-2, ...) or encoder-decoder
LM (T5, ...) reads an :class:`~mmgraph.generation.examples.Example`'s input text and its items
(texts and images on the nodes of a small local graph) and is trained, teacher-forced, to write
the example's target.

**Neighbour encodings** (``encoding``), MMGL's three:

* ``sa_te`` (self-attention, text + embeddings): text items enter the token stream as raw text
  (cut to ``max_item_chars`` characters), image items as ``tokens_per_item`` embedding tokens;
* ``sa_e`` (self-attention, embeddings): every item enters as ``tokens_per_item`` embedding
  tokens;
* ``ca_e`` (cross-attention, embeddings): the token stream holds the instruction and the input
  text only; every item's embedding tokens form a per-example memory that gated cross-attention
  layers, added after decoder layers ``0, k, 2k, ...`` (``k = xattn_every``), attend to.

An item's embedding tokens are a linear map (one per modality) of its frozen-encoder feature
(``GenerationSet.features[modality][row]``) to ``tokens_per_item`` vectors of the LM's width.

**Prompt layout** (one line per part; a part is tokenized on its own, so that training and
decoding see the same tokens)::

    <BOS if the tokenizer adds one> {prompt}
    Input: {input_text}
    Image: <4 embedding tokens>                 (the input items)
    Context:
    Text: {a neighbour's text}                  (sa_te) or  Text: <4 embedding tokens>  (sa_e)
    Image: <4 embedding tokens>
    Output: {target}<EOS>                       (the target only when training)

``ca_e`` keeps ``{prompt}``, ``Input: {input_text}`` and ``Output:``. Causal LMs read it all,
left-padded (the layout decoding uses); encoder-decoder LMs read the prompt in the encoder
(right-padded, with the tokenizer's end token when it adds one) and the target in the decoder.
The prompt is cut to ``max_input_tokens``: the input text comes first (cut, never dropped, when
it alone is too long), then the input items, then the context items in order; an item that does
not fit is dropped (a text item of ``sa_te`` is cut instead when at least 4 of its tokens fit),
and no context item is shown once an input item was dropped.
The target is cut to ``max_target_tokens`` tokens, EOS included.

**Positional encodings** (``pe``) of the local graph, added to every embedding token of an item
(at its node): ``laplacian``: the ``pe_dim`` eigenvectors of the smallest eigenvalues of the
symmetric normalised Laplacian (zero columns when the graph has fewer nodes; computed once per
example id), each with a random sign per example and eigenvector in training, mapped linearly to
the LM's width; ``gnn``: a two-layer GCN over the local graph whose node inputs are the mean of
the node's items' projected embeddings (the mean over their tokens; zeros for a node without
items; with ``sa_te`` the text items count too, through a text projector that serves only this),
its output at the LM's width.

**Training the LM** (``peft``): ``lora`` (peft LoRA on ``lora_targets``, by default peft's
modules for the architecture: ``q_proj,v_proj`` for Llama/OPT, ``c_attn`` for GPT-2, ``q,v`` for
T5; ``lora_alpha`` 16 with ``lora_r`` 64 as QLoRA), ``prefix`` (peft prefix tuning,
``prefix_tokens`` virtual key/values per layer; causal LMs only), ``flamingo`` (the LM frozen:
only cross-attention layers; ``ca_e`` only), ``full`` (every weight) or ``frozen`` (none of the
LM's). The projectors, the positional encoding and the cross-attention layers always train.

**Cross-attention** (``ca_e``): a forward hook on each chosen decoder layer (Llama ``model.layers``,
GPT-2 ``transformer.h``, OPT ``model.decoder.layers``, T5 ``decoder.block``, else the model's
decoder layer list) replaces the layer's hidden states ``h`` by ``h + tanh(a) * attn(LN(h),
memory)`` and then ``h + tanh(f) * FF(LN(h))``, the gates ``a, f`` starting at 0 (so the
untrained model is the plain LM); rows with an empty memory are left as they are.

Decoding is :func:`mmgraph.generation.decoding.decode` (greedy or beam search with a KV cache).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor, nn

from mmgraph.checks import choice, integer, number
from mmgraph.errors import ConfigError, first_line
from mmgraph.generation.examples import Example, Item

log = logging.getLogger(__name__)

__all__ = ["NeighborLM", "ENCODINGS", "PES", "PEFTS", "laplacian_eigenvectors"]

ENCODINGS = ("sa_te", "sa_e", "ca_e")
PES = ("none", "laplacian", "gnn")
PEFTS = ("lora", "prefix", "flamingo", "full", "frozen")
DTYPES = ("auto", "float32", "bfloat16")
DEFAULT_PROMPT = "Write a short description."

_MIN_CUT = 4          # a sa_te text item is cut rather than dropped when this many tokens fit
_FF_MULT = 4          # width of the cross-attention feed-forward, in LM widths
#: where the decoder layers are, by architecture (the first that exists is used)
_LAYER_PATHS = ("model.layers", "transformer.h", "model.decoder.layers", "decoder.block",
                "model.language_model.layers", "gpt_neox.layers", "transformer.blocks")


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """An OmegaConf container as plain Python (Hydra hands dicts and lists over as those)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _attr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@functools.lru_cache(maxsize=8)
def _tokenizer(path: str, gguf_file: str | None):
    """A tokenizer, loaded once per process (it is only read: this module pads by itself)."""
    from transformers import AutoTokenizer

    from mmgraph.zeroshot.generate import _quiet_loading

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    with _quiet_loading():
        return AutoTokenizer.from_pretrained(path, **kw)


def laplacian_eigenvectors(num_nodes: int, edge_index: Tensor, k: int) -> Tensor:
    """``[num_nodes, k]``: the eigenvectors of the ``k`` smallest eigenvalues of the symmetric
    normalised Laplacian ``I - D^-1/2 A D^-1/2`` of the undirected graph (self-loops ignored;
    an isolated node's row is that of the identity), zero columns past ``num_nodes``."""
    n = int(num_nodes)
    adj = torch.zeros(n, n, dtype=torch.float64)
    if edge_index.numel():
        adj[edge_index[0], edge_index[1]] = 1.0
        adj = torch.maximum(adj, adj.t())
    adj.fill_diagonal_(0.0)
    deg = adj.sum(1)
    inv = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    lap = torch.eye(n, dtype=torch.float64) - inv[:, None] * adj * inv[None, :]
    _, vectors = torch.linalg.eigh(lap)
    out = torch.zeros(n, k)
    m = min(n, k)
    out[:, :m] = vectors[:, :m].float()
    return out


class GatedCrossAttention(nn.Module):
    """Flamingo's gated cross-attention block: ``h + tanh(a) * attn(LN(h), memory)``, then
    ``h + tanh(f) * FF(LN(h))``; ``a = f = 0`` at initialisation. Rows whose memory mask is all
    false are returned unchanged."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff_norm = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, _FF_MULT * width), nn.GELU(),
                                nn.Linear(_FF_MULT * width, width))
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def forward(self, h: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        dtype = h.dtype
        x = h.float()
        has = mask.any(1)                                   # [B]
        ignore = ~mask
        ignore[~has, 0] = False                             # a dummy key: no all-masked softmax
        attended, _ = self.attn(self.norm(x), memory.float(), memory.float(), key_padding_mask=ignore,
                                need_weights=False)
        keep = has.to(x.dtype)[:, None, None]
        x = x + torch.tanh(self.attn_gate) * attended * keep
        x = x + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(x)) * keep
        return x.to(dtype)


class _GraphEncoder(nn.Module):
    """Two GCN layers over the batched local graphs."""

    def __init__(self, width: int):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(width, width)
        self.conv2 = GCNConv(width, width)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.conv2(torch.relu(self.conv1(x, edge_index)), edge_index)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
class NeighborLM(nn.Module):
    """A language model that generates a node's text from its input and its neighbours (see the
    module docstring for the encodings, the prompt layout, PE and peft).

    Args:
        lm: a Hub id, a local Hugging Face folder, or ``smollm2-135m-instruct`` (offline).
        feature_dims: ``{modality: feature width}`` of the item feature tables (from the task).
        device: where the model runs (from the task).
        lm_config: a dict for ``AutoConfig.for_model`` (``model_type`` and sizes): a randomly
            initialised LM of that family (seeded by ``seed_weights``) instead of ``lm``'s weights;
            ``lm`` then only names the tokenizer. ``vocab_size`` and the pad/eos/bos (and, for
            encoder-decoders, decoder start) ids default to the tokenizer's.
        tokenizer: a Hub id or folder of the tokenizer (default: ``lm``'s).
        encoding: ``sa_te``, ``sa_e`` or ``ca_e``.
        pe: ``none``, ``laplacian`` or ``gnn``; ``pe_dim``: Laplacian eigenvectors used.
        peft: ``lora``, ``prefix``, ``flamingo`` (``ca_e`` only), ``full`` or ``frozen``.
        lora_r, lora_alpha, lora_dropout: LoRA rank, scale numerator, dropout.
        lora_targets: module names (a list, or a comma-separated string) LoRA adapts; ``None``:
            peft's defaults for the architecture.
        prefix_tokens: prefix-tuning virtual tokens (causal LMs).
        xattn_every: ``ca_e`` adds cross-attention after decoder layers ``0, k, 2k, ...``.
        tokens_per_item: embedding tokens per item.
        max_input_tokens: the prompt's length cap (see the module docstring for what is cut).
        max_target_tokens: the target's length cap, EOS included.
        max_item_chars: a ``sa_te`` text item's character cap.
        max_new_tokens, num_beams, length_penalty: decoding defaults of :meth:`generate`.
        prompt: the instruction that starts every prompt (``""``: none).
        dtype: ``auto`` (bfloat16 on CUDA, float32 elsewhere), ``float32`` or ``bfloat16``: the
            LM's weights (projectors, PE and cross-attention stay float32).
        seed_weights: the seed of an ``lm_config`` model's random weights (pretrained weights are
            not random and ignore it).
    """

    has_trainable = True

    def __init__(self, lm: str = "smollm2-135m-instruct", *, feature_dims: dict[str, int],
                 device: str = "cpu", lm_config: dict | None = None, tokenizer: str | None = None,
                 encoding: str = "sa_e", pe: str = "none", pe_dim: int = 8, peft: str = "lora",
                 lora_r: int = 64, lora_alpha: float = 16, lora_dropout: float = 0.05,
                 lora_targets: Sequence[str] | str | None = None, prefix_tokens: int = 20,
                 xattn_every: int = 1, tokens_per_item: int = 4, max_input_tokens: int = 512,
                 max_target_tokens: int = 128, max_item_chars: int = 300, max_new_tokens: int = 32,
                 num_beams: int = 1, length_penalty: float = 1.0, prompt: str = DEFAULT_PROMPT,
                 dtype: str = "auto", seed_weights: int = 0):
        super().__init__()
        from mmgraph.zeroshot.generate import _resolve_dtype

        if not isinstance(lm, str) or not lm:
            raise ConfigError(f"lm must be a Hub id, a model folder or smollm2-135m-instruct; got {lm!r}")
        self.lm_name = lm
        feature_dims = _plain(feature_dims)
        if (not isinstance(feature_dims, dict) or not feature_dims
                or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                           for k, v in feature_dims.items())):
            raise ConfigError(f"feature_dims must map modality names to feature widths, e.g. "
                              f"{{'text': 384, 'image': 1280}}; got {feature_dims!r}")
        self.feature_dims = dict(feature_dims)
        self._device = torch.device(device)
        lm_config = _plain(lm_config)
        if lm_config is not None and (not isinstance(lm_config, dict) or "model_type" not in lm_config):
            raise ConfigError(f"lm_config must be null or a dict with a model_type (e.g. llama) and sizes; "
                              f"got {lm_config!r}")
        self.lm_config = dict(lm_config) if lm_config is not None else None
        if tokenizer is not None and (not isinstance(tokenizer, str) or not tokenizer):
            raise ConfigError(f"tokenizer must be null, a Hub id or a folder; got {tokenizer!r}")
        self.tokenizer_name = tokenizer
        self.encoding = choice("encoding", encoding, ENCODINGS)
        self.pe = choice("pe", pe, PES)
        self.pe_dim = integer("pe_dim", pe_dim, 1)
        self.peft = choice("peft", peft, PEFTS)
        if self.peft == "flamingo" and self.encoding != "ca_e":
            raise ConfigError(f"peft=flamingo trains only cross-attention layers, which only encoding=ca_e "
                              f"has; use encoding=ca_e or another peft (lora, prefix, full, frozen)")
        self.lora_r = integer("lora_r", lora_r, 1)
        self.lora_alpha = number("lora_alpha", lora_alpha, 0.0)
        self.lora_dropout = number("lora_dropout", lora_dropout, 0.0, 0.99)
        self.lora_targets = self._check_targets(_plain(lora_targets))
        self.prefix_tokens = integer("prefix_tokens", prefix_tokens, 1)
        self.xattn_every = integer("xattn_every", xattn_every, 1)
        self.tokens_per_item = integer("tokens_per_item", tokens_per_item, 1)
        self.max_input_tokens = integer("max_input_tokens", max_input_tokens, 1)
        self.max_target_tokens = integer("max_target_tokens", max_target_tokens, 2)
        self.max_item_chars = integer("max_item_chars", max_item_chars, 1)
        self.max_new_tokens = integer("max_new_tokens", max_new_tokens, 1)
        self.num_beams = integer("num_beams", num_beams, 1)
        self.length_penalty = number("length_penalty", length_penalty)
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt must be a string (an instruction, or empty); got {prompt!r}")
        self.prompt = prompt
        self.dtype_name = _resolve_dtype(choice("dtype", dtype, DTYPES), self._device)
        self.seed_weights = integer("seed_weights", seed_weights, 0)
        self._eigen: dict[tuple, Tensor] = {}
        self._memory: tuple[Tensor, Tensor] | None = None
        self._hooks: list = []
        self._load_tokenizer()
        self._build()

    @staticmethod
    def _check_targets(targets: Any) -> list[str] | None:
        if targets is None:
            return None
        if isinstance(targets, str):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        if (not isinstance(targets, (list, tuple)) or not targets
                or not all(isinstance(t, str) and t for t in targets)):
            raise ConfigError(f"lora_targets must be null or a non-empty list of module names, e.g. "
                              f"[q_proj, v_proj]; got {targets!r}")
        return list(targets)

    # ------------------------------------------------------------------ loading
    def _source(self, name: str) -> tuple[str, str | None]:
        """The folder (or Hub id) and GGUF file that ``name`` loads from."""
        from mmgraph.zeroshot.generate import SMOLLM2, SMOLLM2_GGUF, _smollm2_package, smollm2_folder

        if name == SMOLLM2:
            folder = smollm2_folder()
            if folder is None:
                return str(_smollm2_package()), SMOLLM2_GGUF
            return str(folder), None
        return name, None

    def _load_tokenizer(self) -> None:
        from mmgraph.zeroshot.generate import _not_found

        name = self.tokenizer_name or self.lm_name
        path, gguf = self._source(name)
        try:
            tok = _tokenizer(path, gguf)
        except Exception as exc:
            raise _not_found(name, exc) from exc
        self.tokenizer = tok
        eos = tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        if eos is None or pad is None:
            raise ConfigError(f"tokenizer of {name!r} has no end-of-sequence token; use another tokenizer")
        self._tok_eos, self._tok_pad, self._tok_bos = int(eos), int(pad), tok.bos_token_id
        plain = tok("x", add_special_tokens=False)["input_ids"]
        full = tok("x")["input_ids"]
        at = next((i for i in range(len(full) - len(plain) + 1) if full[i:i + len(plain)] == plain), None)
        self._special_head = list(full[:at]) if at is not None else []
        self._special_tail = list(full[at + len(plain):]) if at is not None else []

    def _load_lm(self):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        from mmgraph.zeroshot.generate import _DTYPES, _not_found, _quiet_loading

        dtype = _DTYPES[self.dtype_name]
        if self.lm_config is not None:
            cfg = dict(self.lm_config)
            cfg.setdefault("vocab_size", len(self.tokenizer))
            for key, value in (("pad_token_id", self._tok_pad), ("eos_token_id", self._tok_eos),
                               ("bos_token_id", self._tok_bos)):
                cfg.setdefault(key, value)
            try:
                config = AutoConfig.for_model(**cfg)
            except Exception as exc:
                raise ConfigError(f"lm_config cannot build a model config ({first_line(exc)}); give a "
                                  f"model_type transformers knows (llama, gpt2, opt, t5, ...) and its "
                                  f"options") from exc
            if config.is_encoder_decoder and getattr(config, "decoder_start_token_id", None) is None:
                config.decoder_start_token_id = self._tok_bos if self._tok_bos is not None else self._tok_pad
            if config.vocab_size < len(self.tokenizer):
                raise ConfigError(f"lm_config vocab_size={config.vocab_size} is smaller than the tokenizer's "
                                  f"{len(self.tokenizer)} tokens; raise it or leave it out")
            cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed_weights)
                try:
                    model = cls.from_config(config, dtype=dtype)
                except Exception as exc:
                    raise ConfigError(f"lm_config cannot build a {config.model_type} language model "
                                      f"({first_line(exc)}); check its options") from exc
            self._folder = None
        else:
            path, gguf = self._source(self.lm_name)
            kw = {"gguf_file": gguf} if gguf else {}
            try:
                config = AutoConfig.from_pretrained(path, **kw)
            except Exception as exc:
                raise _not_found(self.lm_name, exc) from exc
            cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            try:
                with _quiet_loading():
                    model = cls.from_pretrained(path, dtype=dtype, **kw)
            except (OSError, ValueError) as exc:
                raise _not_found(self.lm_name, exc) from exc
            self._folder = path if Path(path).is_dir() else None
        rows = model.get_input_embeddings().num_embeddings
        if rows < len(self.tokenizer):
            raise ConfigError(f"the tokenizer has {len(self.tokenizer)} tokens but {self.lm_name!r} embeds "
                              f"only {rows}; use the model's own tokenizer")
        return model

    def _special_ids(self, lm) -> None:
        """EOS, pad and decoder-start ids for training and decoding."""
        eos = getattr(getattr(lm, "generation_config", None), "eos_token_id", None)
        if isinstance(eos, (list, tuple)):
            eos = eos[0] if eos else None
        self.eos_id = int(eos) if eos is not None else self._tok_eos
        self.pad_id = self._tok_pad
        start = getattr(lm.config, "decoder_start_token_id", None)
        self.decoder_start_id = int(start) if start is not None else None
        if self.seq2seq and self.decoder_start_id is None:
            raise ConfigError(f"{self.lm_name!r} is an encoder-decoder without a decoder_start_token_id; "
                              f"set it in lm_config")

    def _build(self) -> None:
        """(Re)build the LM from its source, the adapters, projectors, PE and cross-attention."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        lm = self._load_lm()
        self.seq2seq = bool(lm.config.is_encoder_decoder)
        if self.peft == "prefix" and self.seq2seq:
            raise ConfigError("peft=prefix supports causal LMs only (decoding cannot start an "
                              "encoder-decoder from a prefix); use peft=lora for this model")
        self._special_ids(lm)
        text_config = _text_config(lm)
        self.embed_width = int(lm.get_input_embeddings().embedding_dim)
        self.layer_width = int(getattr(text_config, "hidden_size", self.embed_width))
        self.width = self.layer_width if self.encoding == "ca_e" else self.embed_width
        # peft
        lm.requires_grad_(self.peft == "full")
        self._lora_modules: list[str] = []
        if self.peft in ("lora", "prefix"):
            import peft as peft_lib

            task = "SEQ_2_SEQ_LM" if self.seq2seq else "CAUSAL_LM"
            if self.peft == "lora":
                targets = self._lora_target_names(lm)
                fan_in_fan_out = any(type(m).__name__ == "Conv1D" for n, m in lm.named_modules()
                                     if _matches(n, targets))
                config = peft_lib.LoraConfig(task_type=task, r=self.lora_r, lora_alpha=self.lora_alpha,
                                             lora_dropout=self.lora_dropout, target_modules=targets,
                                             fan_in_fan_out=fan_in_fan_out)
                self._lora_modules = targets
            else:
                config = peft_lib.PrefixTuningConfig(task_type=task, num_virtual_tokens=self.prefix_tokens)
            with warnings.catch_warnings():  # peft asks a deprecated transformers attribute
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                backbone = peft_lib.get_peft_model(lm, config)
        else:
            backbone = lm
        self.backbone = backbone
        self.__dict__["_lm"] = lm   # inside backbone already: not registered twice
        # projectors: one per modality that enters as embedding tokens (or feeds the GNN)
        mods = [m for m in self.feature_dims
                if self.encoding != "sa_te" or m != "text" or self.pe == "gnn"]
        self.projectors = nn.ModuleDict({m: nn.Linear(self.feature_dims[m], self.tokens_per_item * self.width)
                                         for m in mods})
        self.pe_linear = nn.Linear(self.pe_dim, self.width) if self.pe == "laplacian" else None
        self.gnn = _GraphEncoder(self.width) if self.pe == "gnn" else None
        # cross-attention
        self.xattn_layers: list[int] = []
        self.xattn = None
        if self.encoding == "ca_e":
            _, layers = _decoder_layers(lm)
            self.xattn_layers = list(range(0, len(layers), self.xattn_every))
            heads = int(getattr(text_config, "num_attention_heads", 1) or 1)
            if self.layer_width % heads:
                heads = 1
            self.xattn = nn.ModuleList([GatedCrossAttention(self.layer_width, heads) for _ in self.xattn_layers])
            for slot, i in enumerate(self.xattn_layers):
                self._hooks.append(layers[i].register_forward_hook(functools.partial(self._xattn_hook, slot)))
        for module in (self.projectors, self.pe_linear, self.gnn, self.xattn):
            if module is not None:
                module.requires_grad_(True)
        self.to(self._device)
        self.train(self.training)  # from_pretrained returns the LM in eval mode
        self._labels = self._constant_ids()

    def _lora_target_names(self, lm) -> list[str]:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

        names = [n for n, _ in lm.named_modules() if n]
        if self.lora_targets is None:
            targets = DEFAULTS.get(lm.config.model_type)
            if not targets:
                raise ConfigError(f"no default LoRA modules for model type {lm.config.model_type!r}; set "
                                  f"lora_targets, e.g. {_module_examples(lm)}")
            return list(targets)
        missing = [t for t in self.lora_targets if not any(_matches(n, [t]) for n in names)]
        if missing:
            raise ConfigError(f"lora_targets {missing} match no module of {self.lm_name!r}; its linear "
                              f"layers include {_module_examples(lm)}")
        return list(self.lora_targets)

    def reset_parameters(self) -> None:
        """Back to the LM's pretrained weights (or its seeded random ones for ``lm_config``), with
        fresh adapters, prefix, projectors, PE and cross-attention from the current torch RNG."""
        was_training = self.training
        self._device = self.device  # where the model is now (it may have been moved)
        self._build()
        self.train(was_training)

    # ------------------------------------------------------------------ properties
    @property
    def lm(self):
        """The Hugging Face model with its LoRA layers injected in place: what training and
        decoding run (the prefix of ``peft=prefix`` lives in :attr:`peft_model`; each batch
        gets it as a key/value cache)."""
        return self._lm

    @property
    def device(self) -> torch.device:
        """Where the LM's weights are (batches are moved there)."""
        return self._lm.get_input_embeddings().weight.device

    @property
    def peft_model(self):
        """The peft wrapper (``lora``, ``prefix``), else ``None``."""
        return self.backbone if self.backbone is not self._lm else None

    def trainable_parameters(self) -> int:
        """How many parameters train (adapters or the LM, projectors, PE, cross-attention)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> dict[str, Any]:
        """The LM (id, folder, class), the encoding, PE and peft with their settings, and the
        parameter counts (``total``, ``trainable``, ``lm``: the LM's own, adapters excluded)."""
        total = sum(p.numel() for p in self.parameters())
        lm_total = sum(p.numel() for n, p in self._lm.named_parameters() if "lora_" not in n)
        peft_settings: dict[str, Any] = {}
        if self.peft == "lora":
            peft_settings = {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout,
                             "targets": self._lora_modules}
        elif self.peft == "prefix":
            peft_settings = {"prefix_tokens": self.prefix_tokens}
        out = {"lm": self.lm_name, "folder": self._folder, "lm_config": self.lm_config,
               "tokenizer": self.tokenizer_name or self.lm_name, "class": type(self._lm).__name__,
               "model_type": self._lm.config.model_type, "seq2seq": self.seq2seq, "dtype": self.dtype_name,
               "encoding": self.encoding, "pe": self.pe, "pe_dim": self.pe_dim if self.pe == "laplacian" else None,
               "peft": self.peft, "peft_settings": peft_settings, "tokens_per_item": self.tokens_per_item,
               "xattn_every": self.xattn_every if self.encoding == "ca_e" else None,
               "xattn_layers": self.xattn_layers, "prompt": self.prompt,
               "max_input_tokens": self.max_input_tokens, "max_target_tokens": self.max_target_tokens,
               "max_item_chars": self.max_item_chars, "max_new_tokens": self.max_new_tokens,
               "num_beams": self.num_beams, "length_penalty": self.length_penalty,
               "parameters": {"total": total, "trainable": self.trainable_parameters(), "lm": lm_total}}
        if self.lm_config is not None:
            out["seed_weights"] = self.seed_weights
        return out

    def settings(self) -> dict[str, Any]:
        """The choices that tell runs apart in tables (decoding ones included: the generation
        cache keys on them)."""
        return {"lm": self.lm_name if self.lm_config is None else f"random {self.lm_config['model_type']}",
                "encoding": self.encoding, "pe": self.pe, "peft": self.peft,
                "tokens_per_item": self.tokens_per_item, "num_beams": self.num_beams,
                "max_new_tokens": self.max_new_tokens, "length_penalty": self.length_penalty,
                "prompt": self.prompt, "max_input_tokens": self.max_input_tokens,
                "max_item_chars": self.max_item_chars}

    # ------------------------------------------------------------------ collation
    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _constant_ids(self) -> dict[str, Any]:
        head = self._tokenize([self.prompt])[0] if self.prompt else []
        mods = sorted(set(self.feature_dims) | {"text", "image"})
        labels = self._tokenize(["\nInput:" if self.prompt else "Input:", "\nContext:", "\nOutput:"]
                                + [f"\n{m.capitalize()}:" for m in mods])
        out = {"head": head, "input": labels[0], "context": labels[1], "output": labels[2],
               "item": dict(zip(mods, labels[3:]))}
        fixed = (len(self._special_head) + len(head) + len(out["input"]) + len(out["output"])
                 + (len(self._special_tail) if self.seq2seq else 0))
        if fixed >= self.max_input_tokens:
            raise ConfigError(f"max_input_tokens={self.max_input_tokens} leaves no room for the input: the "
                              f"instruction and labels take {fixed} tokens; raise max_input_tokens or "
                              f"shorten prompt")
        out["fixed"] = fixed
        return out

    def _layout(self, ex: Example, input_ids: list[int], text_ids: dict[int, list[int]],
                target_ids: list[int] | None) -> dict[str, Any]:
        """One example's prompt: token ids (placeholders at embedding slots), slots, items."""
        c, T = self._labels, self.tokens_per_item
        budget = self.max_input_tokens - c["fixed"]
        inp = input_ids[:budget]
        budget -= len(inp)
        seq = list(self._special_head) + c["head"] + c["input"] + inp
        slots: list[tuple[int, int, int]] = []      # (position, item in `items`, token)
        items: list[tuple[Item, bool]] = []         # (item, enters as embedding tokens)
        if self.encoding == "ca_e":
            items = [(it, True) for it in ex.items]
        else:
            dropped_input = False
            for role, header in (("input", []), ("context", c["context"])):
                if role == "context" and dropped_input:
                    break  # the context never takes the place of the example's own items
                paid = False
                for j, it in enumerate(ex.items):
                    if it.role != role:
                        continue
                    as_text = self.encoding == "sa_te" and it.modality == "text"
                    label = c["item"].get(it.modality) or self._tokenize([f"\n{it.modality.capitalize()}:"])[0]
                    extra = len(label) + (0 if paid else len(header))
                    body = text_ids.get(j, []) if as_text else [self.pad_id] * T
                    if not body:  # a text item without text
                        continue
                    if extra + len(body) > budget:
                        if not as_text or budget - extra < _MIN_CUT:
                            dropped_input |= role == "input"
                            continue
                        body = body[:budget - extra]
                    budget -= extra + len(body)
                    if not paid:
                        seq += header
                        paid = True
                    seq += label
                    if not as_text:
                        items.append((it, True))
                        slots += [(len(seq) + k, len(items) - 1, k) for k in range(T)]
                    elif it.modality in self.projectors:   # a sa_te text item feeds the GNN only
                        items.append((it, False))
                    seq += body
        seq += c["output"]
        if self.seq2seq:
            seq += self._special_tail
        return {"ids": seq, "slots": slots, "items": items, "target": target_ids}

    def collate(self, examples: Sequence[Example], features: dict[str, Tensor], *,
                with_target: bool) -> dict[str, Any]:
        """Tokenize and lay out ``examples`` (see the module docstring): a batch for :meth:`loss`
        (``with_target=True``) or :meth:`generate` (``False``).

        Keys: ``input_ids``, ``attention_mask`` (causal: left-padded prompt, plus target and EOS
        when training; encoder-decoder: the right-padded encoder input); ``labels`` (training;
        -100 outside the target); encoder-decoders, training: ``decoder_input_ids``,
        ``decoder_attention_mask``; ``item_features`` / ``item_index`` (per modality: the items'
        features and their indices in the batch's item table), ``item_row`` / ``item_node``
        (example row; node in the batched local graphs), ``memory_index`` (ca_e: an item's
        place in its example's memory), ``memory_len`` ([B] items per memory), ``num_items``;
        ``slot_row`` / ``slot_pos`` / ``slot_item`` / ``slot_k`` (which position gets which
        item's which embedding token); ``graph_edge_index``, ``graph_batch`` (node -> example),
        ``pe_eigvecs`` (laplacian); ``ids``, ``with_target``.
        """
        examples = list(examples)
        if not examples:
            raise ValueError("collate needs at least one example")
        T = self.tokens_per_item
        with_text = self.encoding == "sa_te"
        inputs = self._tokenize([" " + (e.input_text or "").strip() for e in examples])
        inputs = [ids if (e.input_text or "").strip() else [] for ids, e in zip(inputs, examples)]
        texts, where = [], []
        if with_text:
            for i, e in enumerate(examples):
                for j, it in enumerate(e.items):
                    if it.modality == "text" and (it.text or "").strip():
                        texts.append(" " + (it.text or "")[:self.max_item_chars].strip())
                        where.append((i, j))
        text_ids: list[dict[int, list[int]]] = [{} for _ in examples]
        for (i, j), ids in zip(where, self._tokenize(texts)):
            text_ids[i][j] = ids
        targets: list[list[int] | None] = [None] * len(examples)
        if with_target:
            lead = "" if self.seq2seq else " "
            tok = self._tokenize([lead + e.target.strip() for e in examples])
            targets = [ids[:self.max_target_tokens - 1] + [self.eos_id] for ids in tok]
        rows = [self._layout(e, inputs[i], text_ids[i], targets[i]) for i, e in enumerate(examples)]
        batch: dict[str, Any] = {"ids": [e.id for e in examples], "with_target": bool(with_target)}
        B = len(rows)
        # token stream
        offsets = []
        if self.seq2seq:
            L = max(len(r["ids"]) for r in rows)
            ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            mask = torch.zeros(B, L, dtype=torch.long)
            for b, r in enumerate(rows):
                ids[b, :len(r["ids"])] = torch.tensor(r["ids"])
                mask[b, :len(r["ids"])] = 1
                offsets.append(0)
            if with_target:
                Lt = max(len(r["target"]) for r in rows)
                dec = torch.full((B, Lt), self.pad_id, dtype=torch.long)
                dmask = torch.zeros(B, Lt, dtype=torch.long)
                labels = torch.full((B, Lt), -100, dtype=torch.long)
                for b, r in enumerate(rows):
                    t = r["target"]
                    labels[b, :len(t)] = torch.tensor(t)
                    dec[b, :len(t)] = torch.tensor([self.decoder_start_id] + t[:-1])
                    dmask[b, :len(t)] = 1
                batch.update(decoder_input_ids=dec, decoder_attention_mask=dmask, labels=labels)
        else:
            full = [r["ids"] + (r["target"] or []) for r in rows]
            L = max(len(f) for f in full)
            ids = torch.full((B, L), self.pad_id, dtype=torch.long)
            mask = torch.zeros(B, L, dtype=torch.long)
            labels = torch.full((B, L), -100, dtype=torch.long)
            for b, (r, f) in enumerate(zip(rows, full)):
                start = L - len(f)
                offsets.append(start)
                ids[b, start:] = torch.tensor(f)
                mask[b, start:] = 1
                if with_target:
                    labels[b, start + len(r["ids"]):] = torch.tensor(r["target"])
            if with_target:
                batch["labels"] = labels
        batch.update(input_ids=ids, attention_mask=mask)
        # items, slots, memory, graphs
        item_mod, item_row_list, item_node_list, item_rows, mem_index = [], [], [], [], []
        slot_row, slot_pos, slot_item, slot_k = [], [], [], []
        edges, graph_batch, eig = [], [], []
        node_offset = 0
        memory_len = torch.zeros(B, dtype=torch.long)
        for b, (e, r) in enumerate(zip(examples, rows)):
            base = len(item_mod)
            for local, (it, embedded) in enumerate(r["items"]):
                if it.modality not in self.projectors:
                    raise ConfigError(f"example {e.id} has a {it.modality!r} item but feature_dims has only "
                                      f"{', '.join(self.feature_dims)}; give the model every modality's "
                                      f"feature width")
                if not 0 <= it.node < e.num_nodes:
                    raise ValueError(f"example {e.id}: item node {it.node} >= num_nodes {e.num_nodes}")
                item_mod.append(it.modality)
                item_rows.append(it.row)
                item_row_list.append(b)
                item_node_list.append(node_offset + it.node)
                if embedded and self.encoding == "ca_e":
                    mem_index.append(int(memory_len[b]))
                    memory_len[b] += 1
                else:
                    mem_index.append(-1)
            for pos, local, k in r["slots"]:
                slot_row.append(b)
                slot_pos.append(offsets[b] + pos)
                slot_item.append(base + local)
                slot_k.append(k)
            if e.edge_index.numel():
                edges.append(e.edge_index.long() + node_offset)
            graph_batch += [b] * e.num_nodes
            if self.pe == "laplacian":
                eig.append(self._eigenvectors(e))
            node_offset += e.num_nodes
        feats, index = {}, {}
        for m in sorted(set(item_mod)):
            which = [i for i, mm in enumerate(item_mod) if mm == m]
            table = features.get(m)
            if table is None:
                raise ConfigError(f"no {m!r} feature table was given to collate; pass the GenerationSet's "
                                  f"features")
            feats[m] = table[torch.tensor([item_rows[i] for i in which])].float()
            index[m] = torch.tensor(which, dtype=torch.long)
        lt = functools.partial(torch.tensor, dtype=torch.long)
        batch.update(item_features=feats, item_index=index, num_items=len(item_mod),
                     item_row=lt(item_row_list), item_node=lt(item_node_list), memory_index=lt(mem_index),
                     memory_len=memory_len, slot_row=lt(slot_row), slot_pos=lt(slot_pos),
                     slot_item=lt(slot_item), slot_k=lt(slot_k),
                     graph_edge_index=torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.long),
                     graph_batch=lt(graph_batch))
        if self.pe == "laplacian":
            batch["pe_eigvecs"] = torch.cat(eig) if eig else torch.zeros(0, self.pe_dim)
        return batch

    def _eigenvectors(self, e: Example) -> Tensor:
        key = (e.id, e.num_nodes, int(e.edge_index.size(1)))
        if key not in self._eigen:
            self._eigen[key] = laplacian_eigenvectors(e.num_nodes, e.edge_index, self.pe_dim)
        return self._eigen[key]

    # ------------------------------------------------------------------ embedding
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        def move(v):
            if isinstance(v, Tensor):
                return v.to(self.device)
            if isinstance(v, dict):
                return {k: move(x) for k, x in v.items()}
            return v
        return {k: move(v) for k, v in batch.items()}

    def _item_tokens(self, b: dict[str, Any]) -> Tensor | None:
        """``[N, tokens_per_item, width]`` float32: the items' projected embeddings plus PE."""
        n, T = int(b["num_items"]), self.tokens_per_item
        if n == 0:
            return None
        tokens = torch.zeros(n, T, self.width, device=self.device)
        for m, idx in b["item_index"].items():
            proj = self.projectors[m](b["item_features"][m]).view(-1, T, self.width)
            tokens = tokens.index_copy(0, idx, proj)
        if self.pe == "laplacian":
            vectors = b["pe_eigvecs"]
            if self.training:  # eigenvectors are defined up to their sign: learn not to rely on it
                rows = int(b["graph_batch"].max()) + 1 if b["graph_batch"].numel() else 0
                sign = torch.randint(0, 2, (rows, self.pe_dim), device=self.device) * 2 - 1
                vectors = vectors * sign[b["graph_batch"]]
            tokens = tokens + self.pe_linear(vectors)[b["item_node"]][:, None]
        elif self.pe == "gnn":
            nodes = b["graph_batch"].numel()
            x = torch.zeros(nodes, self.width, device=self.device)
            x = x.index_add(0, b["item_node"], tokens.mean(1))
            count = torch.zeros(nodes, device=self.device).index_add(
                0, b["item_node"], torch.ones(n, device=self.device))
            x = x / count.clamp(min=1)[:, None]
            tokens = tokens + self.gnn(x, b["graph_edge_index"])[b["item_node"]][:, None]
        return tokens

    def _embed(self, b: dict[str, Any]) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Input embeddings with the items' tokens at their slots, and the ca_e memory."""
        embed = self._lm.get_input_embeddings()
        x = embed(b["input_ids"])
        tokens = self._item_tokens(b)
        memory = None
        if tokens is not None and b["slot_row"].numel():
            values = tokens[b["slot_item"], b["slot_k"]].to(x.dtype)
            x = x.index_put((b["slot_row"], b["slot_pos"]), values)
        if self.encoding == "ca_e":
            B, T = x.size(0), self.tokens_per_item
            size = max(int(b["memory_len"].max()) * T, 1)
            mem = torch.zeros(B, size, self.width, device=self.device)
            if tokens is not None:
                keep = b["memory_index"] >= 0
                rows = b["item_row"][keep].repeat_interleave(T)
                cols = (b["memory_index"][keep][:, None] * T
                        + torch.arange(T, device=self.device)).reshape(-1)
                mem = mem.index_put((rows, cols), tokens[keep].reshape(-1, self.width))
            mask = torch.arange(size, device=self.device)[None, :] < (b["memory_len"] * T)[:, None]
            memory = (mem, mask)
        return x, memory

    def _xattn_hook(self, slot: int, module: nn.Module, args: Any, output: Any) -> Any:
        if self._memory is None:
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        mem, mask = self._memory
        if hidden.size(0) != mem.size(0):
            raise RuntimeError(f"cross-attention memory has {mem.size(0)} rows but the layer sees "
                               f"{hidden.size(0)}")
        new = self.xattn[slot](hidden, mem, mask)
        return (new,) + tuple(output[1:]) if isinstance(output, tuple) else new

    @contextlib.contextmanager
    def _with_memory(self, memory: tuple[Tensor, Tensor] | None) -> Iterator[None]:
        self._memory = memory
        try:
            yield
        finally:
            self._memory = None

    def _prefix(self, rows: int):
        """The prefix-tuning cache for ``rows`` rows and its length (``None, 0`` without)."""
        if self.peft != "prefix":
            return None, 0
        return self.backbone.get_prompt(rows), self.prefix_tokens

    # ------------------------------------------------------------------ training
    def target_logits(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits ``[B, S, V]`` at the positions that predict the target tokens, and
        the gold tokens ``[B, S]`` (-100 where a row has no target token). Causal LMs: the last
        ``S`` predictions of every left-padded row; encoder-decoders: the decoder's."""
        if "labels" not in batch:
            raise ValueError("the batch holds no target: collate it with with_target=True")
        b = self._to_device(batch)
        x, memory = self._embed(b)
        mask, labels = b["attention_mask"], b["labels"]
        with self._with_memory(memory):
            if self.seq2seq:
                logits = self._lm(inputs_embeds=x, attention_mask=mask,
                                  decoder_input_ids=b["decoder_input_ids"],
                                  decoder_attention_mask=b["decoder_attention_mask"],
                                  use_cache=False, return_dict=True).logits
                return logits, labels
            B, L = mask.shape
            prefix, P = self._prefix(B)
            # the target sits at the right end of every (left-padded) row
            span = int((labels != -100).sum(1).max()) + 1
            kw: dict[str, Any] = {}
            if _accepts(self._lm, "logits_to_keep"):
                kw["logits_to_keep"] = span
            if _accepts(self._lm, "position_ids"):  # as decode: P + cumsum(mask) - 1
                kw["position_ids"] = (mask.cumsum(1) - 1).clamp(min=0) + P
            if prefix is not None:
                kw["past_key_values"] = prefix
                mask = torch.cat([torch.ones(B, P, dtype=mask.dtype, device=mask.device), mask], 1)
            else:
                kw["use_cache"] = False
            logits = self._lm(inputs_embeds=x, attention_mask=mask, return_dict=True, **kw).logits
            return logits[:, -span:][:, :-1], labels[:, L - span + 1:]

    def loss(self, batch: dict[str, Any]) -> Tensor:
        """Teacher-forced cross-entropy, the mean over the batch's target tokens (EOS included)."""
        logits, gold = self.target_logits(batch)
        return nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), gold.reshape(-1),
                                           ignore_index=-100)

    def forward(self, batch: dict[str, Any]) -> Tensor:
        return self.loss(batch)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, batch: dict[str, Any], *, max_new_tokens: int | None = None,
                 num_beams: int | None = None) -> tuple[list[str], torch.LongTensor]:
        """Decode a batch collated with ``with_target=False``: the texts (special tokens removed,
        stripped) and the new tokens per example (EOS included), greedy or with beam search
        (defaults: the constructor's ``max_new_tokens`` and ``num_beams``). Runs in eval mode."""
        from mmgraph.generation.decoding import decode

        if batch.get("with_target") and not self.seq2seq:
            raise ValueError("generate needs a batch collated with with_target=False (a causal LM's "
                             "training batch holds the target)")
        max_new = integer("max_new_tokens", self.max_new_tokens if max_new_tokens is None else max_new_tokens, 1)
        beams = integer("num_beams", self.num_beams if num_beams is None else num_beams, 1)
        was_training = self.training
        self.eval()
        try:
            b = self._to_device(batch)
            x, memory = self._embed(b)
            rows = x.size(0) * beams
            if memory is not None and beams > 1:
                memory = (memory[0].repeat_interleave(beams, 0), memory[1].repeat_interleave(beams, 0))
            prefix, P = self._prefix(rows)
            with self._with_memory(memory):
                out = decode(self._lm, x, b["attention_mask"], max_new_tokens=max_new, num_beams=beams,
                             eos_token_id=self.eos_id, pad_token_id=self.pad_id,
                             prefix_past_key_values=prefix, prefix_length=P,
                             length_penalty=self.length_penalty,
                             decoder_start_token_id=self.decoder_start_id if self.seq2seq else None)
        finally:
            self.train(was_training)
        seqs = out.sequences.cpu().tolist()
        lengths = out.lengths.cpu()
        texts = [self.tokenizer.decode(s[:int(n)], skip_special_tokens=True).strip()
                 for s, n in zip(seqs, lengths)]
        return texts, lengths.long()


# ---------------------------------------------------------------------------------------------
# Module helpers
# ---------------------------------------------------------------------------------------------
def _matches(name: str, targets: Sequence[str]) -> bool:
    """peft's rule for a list of target names: the module's name or its dotted suffix."""
    return any(name == t or name.endswith("." + t) for t in targets)


def _module_examples(lm, limit: int = 8) -> str:
    seen: list[str] = []
    for name, module in lm.named_modules():
        if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":
            last = name.rsplit(".", 1)[-1]
            if last not in seen:
                seen.append(last)
    return ", ".join(seen[:limit]) or "(none)"


def _decoder_layers(lm) -> tuple[str, nn.ModuleList]:
    """The decoder layers of ``lm`` (the modules cross-attention hooks attach to)."""
    for path in _LAYER_PATHS:
        mod = _attr_path(lm, path)
        if isinstance(mod, nn.ModuleList) and len(mod):
            return path, mod
    config = _text_config(lm)
    n = getattr(config, "num_decoder_layers", None) or getattr(config, "num_hidden_layers", None)
    for name, mod in lm.named_modules():
        if (isinstance(mod, nn.ModuleList) and len(mod) == n
                and (not lm.config.is_encoder_decoder or "decoder" in name)):
            return name, mod
    raise ConfigError(f"cannot find the decoder layers of {type(lm).__name__} for cross-attention; "
                      f"use encoding sa_e or sa_te with this model")


def _text_config(lm):
    """The config of ``lm``'s (decoder) text model."""
    config = lm.config
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def _accepts(module: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
