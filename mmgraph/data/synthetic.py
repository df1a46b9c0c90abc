r"""A deterministic synthetic multimodal graph (``dataset=synthetic``).

The generator draws one graph of ``item`` nodes with labels, edges, real text strings and
procedural images, all from one integer ``seed``. Its purpose is controlled experiments: every
property a multimodal graph learner depends on has its own knob.

**Generative model.**

1. *Labels.* ``num_nodes`` nodes are split into ``num_classes`` classes of equal size (up to
   one node), in a random order.
2. *Edges: a degree-corrected stochastic block model.* Each node gets a degree propensity
   :math:`\theta_i = 1 + \mathrm{Lomax}(\gamma - 1)`, a Pareto tail whose expected degree
   distribution falls like :math:`d^{-\gamma}` with ``gamma = degree_power`` (``None``: all
   propensities equal, a plain SBM), capped at the structural cutoff: no expected degree above
   :math:`\sqrt{N \bar d}`. An edge picks its first endpoint with probability
   proportional to :math:`\theta`; with probability ``homophily`` the second endpoint is drawn
   from the first one's class, otherwise from the other classes, again proportional to
   :math:`\theta`. The same-class and cross-class edges are sampled as two exact quotas, so the
   measured edge homophily equals ``homophily`` up to rounding. Self loops and duplicate pairs
   are dropped and re-drawn. The graph is undirected with both directions stored:
   ``edge_index`` has exactly ``2 * (num_edges // 2)`` columns, sorted by (source, target).
3. *Per-node clarity.* Each node gets a text clarity and an image clarity, independent draws from
   ``Beta(k * p, k * (1 - p))`` with ``p`` the modality's informativeness and
   ``k = clarity_concentration``. Their mean is ``p``; a small ``k`` makes nodes either clear or
   uninformative (so text and image fail on *different* nodes and combining them helps), a
   large ``k`` (``inf``) gives every node clarity ``p``.
4. *Text.* Every class owns ``vocab_size`` pronounceable pseudo-words built from syllables; a
   shared vocabulary of ``noise_vocab_size`` noise words belongs to no class. A text has
   ``text_length`` tokens (uniform, inclusive). Each token is a word of the node's class with
   probability equal to the node's text clarity; otherwise it is a noise word, or (one time in
   three) a word of a uniformly random class, so class words are not exclusive to their class.
   Words inside a vocabulary follow a Zipf law. ``x_text`` is the mean of fixed random word
   vectors over the tokens (a bag-of-words encoder) plus Gaussian noise of std ``feature_noise``.
5. *Images.* Every class has a prototype (shape, hue, texture). Each of a node's three attributes
   follows the prototype with probability equal to its image clarity (the hue with a small
   jitter), otherwise it is uniformly random. Size, position, rotation and background brightness
   are class-independent nuisances. ``image`` holds a reference ``"synthetic:shape=..;hue=..;..."``
   that :func:`render_image` draws on demand (nothing is rendered at generation time).
   ``x_image`` is a fixed random linear projection of the attribute descriptor (one-hot shape,
   hue as (cos, sin), one-hot texture, nuisances) plus Gaussian noise of std ``feature_noise``.
6. *Missing modalities.* A node's text is missing with probability ``missing_rate`` and its image
   with probability ``missing_rate``; the two events are mutually exclusive, so every node keeps
   at least one modality (hence ``missing_rate <= 0.5``). Missing text is ``None`` with a zero
   row in ``x_text`` and ``text_mask`` False; the same for images.
7. *Tags (optional, off by default).* With ``num_tags > 0`` there is a second node type, ``tag``
   (no features; ``name`` = ``tag_<i>``), for heterogeneous models. Tag ``t`` belongs to class
   ``t mod num_classes``. Each item draws ``tags_per_node`` tags (duplicates merged): with
   probability ``tag_informativeness`` a uniform tag of its own class, otherwise a uniform tag.
   Relations ``(item, has_tag, tag)`` and its reverse ``(tag, tag_of, item)``. Everything else,
   and with ``num_tags = 0`` the whole graph and its fingerprints, is unchanged.

Independent random streams (children of ``numpy.random.SeedSequence(seed)``) drive labels,
edges, text, images, missingness and feature noise, so e.g. changing ``homophily`` leaves the
texts unchanged. Everything is vectorised with numpy/torch except building the Python strings.
"""
from __future__ import annotations

import colorsys
import logging
import math
import warnings
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch_geometric.data import HeteroData

from mmgraph.checks import integer, number
from mmgraph.data.graph import RawList, add_feature, new_graph, set_model_input
from mmgraph.errors import ConfigError, DataError

__all__ = ["make_synthetic", "render_image", "parse_image_ref", "SHAPES", "TEXTURES"]

SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
TEXTURES = ("solid", "stripes", "dots", "checker", "grid")

EDGE_TYPE = ("item", "links", "item")

# Emits one DEBUG record per finished generation stage (benchmarks time them).
logger = logging.getLogger(__name__)

# Share of the uninformative tokens that are words of a random class rather than noise words.
_CROSS_CLASS_SHARE = 1.0 / 3.0
# Zipf exponent of word frequencies inside a vocabulary.
_ZIPF_EXPONENT = 1.0
# Std of the hue jitter around the class hue, as a fraction of the hue gap between classes.
_HUE_JITTER = 0.15
# Nodes per chunk when building texts: bounds the temporary token arrays (~16 tokens per node).
_TEXT_CHUNK = 1 << 17

_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "z", "br", "ch", "cl", "dr", "gr", "pl", "sh", "st", "th", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "", "", "n", "r", "s", "l", "m", "x", "th", "nd")


# ----------------------------------------------------------------------------- validation

def _validate(num_nodes, num_classes, num_edges, homophily, degree_power, text_dim, image_dim,
              text_informativeness, image_informativeness, missing_rate, text_length, vocab_size,
              noise_vocab_size, clarity_concentration, feature_noise, seed) -> dict:
    p: dict[str, Any] = {}
    p["num_classes"] = integer("num_classes", num_classes, 2)
    p["num_nodes"] = integer("num_nodes", num_nodes, 1)
    if p["num_nodes"] < p["num_classes"]:
        raise ConfigError(f"num_nodes must be >= num_classes={p['num_classes']}; got {num_nodes}")
    p["num_edges"] = integer("num_edges", num_edges, 0)
    p["homophily"] = number("homophily", homophily, 0.0, 1.0)
    if degree_power is None:
        p["degree_power"] = None
    else:
        p["degree_power"] = number("degree_power", degree_power, 1.0)
        if p["degree_power"] <= 1.0:
            raise ConfigError(f"degree_power must be > 1 (or None for equal propensities); "
                              f"got {degree_power}")
    p["text_dim"] = integer("text_dim", text_dim, 1)
    p["image_dim"] = integer("image_dim", image_dim, 1)
    p["text_informativeness"] = number("text_informativeness", text_informativeness, 0.0, 1.0)
    p["image_informativeness"] = number("image_informativeness", image_informativeness, 0.0, 1.0)
    p["missing_rate"] = number("missing_rate", missing_rate, 0.0, 0.5)
    if (not isinstance(text_length, (tuple, list)) or len(text_length) != 2):
        raise ConfigError(f"text_length must be a pair (min, max) of token counts; got {text_length!r}")
    lo = integer("text_length[0]", text_length[0], 1)
    hi = integer("text_length[1]", text_length[1], lo)
    p["text_length"] = [lo, hi]
    p["vocab_size"] = integer("vocab_size", vocab_size, 1)
    p["noise_vocab_size"] = integer("noise_vocab_size", noise_vocab_size, 1)
    p["clarity_concentration"] = number("clarity_concentration", clarity_concentration, 0.0)
    if p["clarity_concentration"] <= 0:
        raise ConfigError(f"clarity_concentration must be > 0 (inf for equal clarity); "
                          f"got {clarity_concentration}")
    p["feature_noise"] = number("feature_noise", feature_noise, 0.0)
    p["seed"] = integer("seed", seed, 0)
    return p


# ----------------------------------------------------------------------------- labels, edges

def _labels(n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced classes in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % c)


def _propensities(n: int, num_edges: int, degree_power: float | None,
                  rng: np.random.Generator) -> np.ndarray:
    if degree_power is None or math.isinf(degree_power):
        return np.ones(n)
    # Pareto(x_m=1, alpha) has P(theta > t) = t^-alpha; degrees then fall like d^-(alpha+1).
    theta = 1.0 + rng.pareto(degree_power - 1.0, size=n)
    # Cap expected degrees at the structural cutoff sqrt(N * mean degree): beyond it a hub
    # would need more distinct neighbours than uncorrelated sampling can give it.
    mean_degree = max(num_edges / n, 1.0)
    return np.minimum(theta, theta.mean() * math.sqrt(n / mean_degree))


class _BlockSampler:
    """Draws DC-SBM endpoints with one ``searchsorted`` over class-sorted cumulative propensities."""

    def __init__(self, y: np.ndarray, theta: np.ndarray, num_classes: int):
        self.y = y
        self.order = np.argsort(y, kind="stable")          # node ids grouped by class
        self.cum = np.cumsum(theta[self.order])            # float64: exact enough for 1e9 nodes
        ys = y[self.order]
        self.start = np.searchsorted(ys, np.arange(num_classes), side="left")
        self.end = np.searchsorted(ys, np.arange(num_classes), side="right")
        # Class mass taken from the same cumsum, so sampled offsets land inside their class.
        self.before = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.mass = self.cum[self.end - 1] - self.before
        self.total = self.cum[-1]

    def _lookup(self, r: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.cum, r, side="right")
        return np.minimum(idx, self.cum.size - 1)

    def source(self, k: int, rng: np.random.Generator) -> np.ndarray:
        return self.order[self._lookup(rng.random(k) * self.total)]

    def same_class(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.y[u]
        idx = self._lookup(self.before[c] + rng.random(u.size) * self.mass[c])
        # Float rounding at the class boundary could step outside the class: clamp it back.
        idx = np.clip(idx, self.start[c], self.end[c] - 1)
        return self.order[idx]

    def other_class(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.y[u]
        # Draw from the total mass with the own class cut out, then skip over the gap.
        r = rng.random(u.size) * (self.total - self.mass[c])
        r = r + (r >= self.before[c]) * self.mass[c]
        return self.order[self._lookup(r)]


def _sample_pairs(sampler: _BlockSampler, quota: int, same: bool, n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """``quota`` distinct undirected pairs as keys ``min * n + max``, in draw order."""
    keys = np.empty(0, dtype=np.int64)
    for _ in range(200):
        need = quota - keys.size
        if need <= 0:
            break
        k = int(need * 1.2) + 64
        u = sampler.source(k, rng)
        v = sampler.same_class(u, rng) if same else sampler.other_class(u, rng)
        ok = (u != v) & ((sampler.y[u] == sampler.y[v]) == same)
        u, v = u[ok], v[ok]
        new = np.minimum(u, v) * n + np.maximum(u, v)
        both = np.concatenate([keys, new])
        # Keep the first occurrence of each pair in draw order, so truncating stays unbiased.
        _, first = np.unique(both, return_index=True)
        keys = both[np.sort(first)]
    else:
        raise ConfigError(f"could not draw {quota} distinct {'same' if same else 'cross'}-class "
                          f"edges; lower num_edges or degree_power heterogeneity")
    return keys[:quota]


def _edges(y: np.ndarray, theta: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    n, c, h = p["num_nodes"], p["num_classes"], p["homophily"]
    pairs = p["num_edges"] // 2
    n_same = int(round(h * pairs))
    n_cross = pairs - n_same
    sizes = np.bincount(y, minlength=c).astype(np.float64)
    cap_same = float((sizes * (sizes - 1) / 2).sum())
    cap_cross = n * (n - 1) / 2 - cap_same
    # Rejection sampling of distinct pairs stalls near saturation: allow half of each kind.
    if n_same > cap_same / 2 or n_cross > cap_cross / 2:
        lim = min(cap_same / 2 / h if h > 0 else math.inf,
                  cap_cross / 2 / (1 - h) if h < 1 else math.inf)
        raise ConfigError(f"num_edges={p['num_edges']} is too dense for num_nodes={n}, "
                          f"num_classes={c}, homophily={h}: at most {2 * int(lim)}")
    if pairs == 0:
        return np.empty((2, 0), dtype=np.int64)
    sampler = _BlockSampler(y, theta, c)
    keys = np.concatenate([_sample_pairs(sampler, n_same, True, n, rng),
                           _sample_pairs(sampler, n_cross, False, n, rng)])
    a, b = keys // n, keys % n
    del keys
    # Both directions, sorted by (source, target) like a coalesced PyG edge_index.
    directed = np.sort(np.concatenate([a * n + b, b * n + a]))
    del a, b
    return np.stack([directed // n, directed % n])


# ----------------------------------------------------------------------------- text

def _make_words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct pronounceable pseudo-words of 2-3 syllables."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < count:
        k = (count - len(words)) * 2 + 16
        n_syl = np.where(rng.random(k) < 0.7, 2, 3)  # mostly two syllables
        on = rng.integers(0, len(_ONSETS), size=(k, 3))
        vo = rng.integers(0, len(_VOWELS), size=(k, 3))
        co = rng.integers(0, len(_CODAS), size=(k, 3))
        for i in range(k):  # building strings: one Python step per word is unavoidable
            w = "".join(_ONSETS[on[i, j]] + _VOWELS[vo[i, j]] + _CODAS[co[i, j]]
                        for j in range(n_syl[i]))
            if w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == count:
                    break
    return words


def _zipf_cdf(size: int) -> np.ndarray:
    w = 1.0 / np.arange(1, size + 1) ** _ZIPF_EXPONENT
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def _clarity(n: int, p: float, k: float, rng: np.random.Generator) -> np.ndarray:
    if p <= 0.0 or p >= 1.0 or math.isinf(k):
        return np.full(n, p)
    return rng.beta(k * p, k * (1.0 - p), size=n)


def _text(y: np.ndarray, clarity: np.ndarray, present: np.ndarray, p: dict,
          rng: np.random.Generator, noise_rng: np.random.Generator):
    """Texts (``None`` where absent) and their bag-of-words features ``[N, text_dim]``."""
    n, c = p["num_nodes"], p["num_classes"]
    vc, vn, d = p["vocab_size"], p["noise_vocab_size"], p["text_dim"]
    vocab = _make_words(c * vc + vn, rng)      # class c owns ids [c*vc, (c+1)*vc); noise last
    v_total = len(vocab)
    emb = torch.from_numpy(rng.standard_normal((v_total, d), dtype=np.float32))
    cdf_class, cdf_noise = _zipf_cdf(vc), _zipf_cdf(vn)
    # Each word once with a trailing space and once with a newline (for the text's last token):
    # one "".join of the whole chunk then split("\n") builds all strings at C speed.
    pieces = np.array([w + " " for w in vocab] + [w + "\n" for w in vocab], dtype=object)
    lo, hi = p["text_length"]
    lengths = rng.integers(lo, hi + 1, size=n)
    texts: list[str | None] = []
    x = torch.zeros(n, d)
    for a in range(0, n, _TEXT_CHUNK):
        b = min(a + _TEXT_CHUNK, n)
        ln = lengths[a:b]
        t = int(ln.sum())
        node = np.repeat(np.arange(b - a), ln)
        own = rng.random(t) < clarity[a:b][node]
        cross = ~own & (rng.random(t) < _CROSS_CLASS_SHARE)
        cls = np.where(own, y[a:b][node], rng.integers(0, c, size=t))
        r_cls = np.minimum(np.searchsorted(cdf_class, rng.random(t)), vc - 1)
        r_noise = np.minimum(np.searchsorted(cdf_noise, rng.random(t)), vn - 1)
        tok = np.where(own | cross, cls * vc + r_cls, c * vc + r_noise)
        del node, own, cross, cls, r_cls, r_noise
        crow = np.zeros(b - a + 1, dtype=np.int64)
        np.cumsum(ln, out=crow[1:])
        last = tok.copy()
        last[crow[1:] - 1] += v_total
        chunk = "".join(pieces[last].tolist()).split("\n")[:-1]
        del last
        pres = present[a:b]
        texts.extend(s if keep else None for s, keep in zip(chunk, pres.tolist()))
        # Mean word vector as a sparse [n, V] matrix of 1/length weights times the embedding,
        # avoiding the [tokens, d] intermediate.
        val = np.repeat(1.0 / ln, ln).astype(np.float32)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": not actionable
            warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support.*")
            bow = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(tok),
                                          torch.from_numpy(val), size=(b - a, v_total),
                                          check_invariants=False)  # valid by construction
            xc = bow @ emb
        if p["feature_noise"] > 0:
            xc += p["feature_noise"] * torch.from_numpy(
                noise_rng.standard_normal((b - a, d), dtype=np.float32))
        xc[torch.from_numpy(~pres)] = 0.0
        x[a:b] = xc
    return RawList(texts), x, vocab


# ----------------------------------------------------------------------------- images

def _image_attributes(y: np.ndarray, clarity: np.ndarray, p: dict,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, c = p["num_nodes"], p["num_classes"]
    # Class prototypes: shapes and textures cycle through a random order so that neighbouring
    # class ids do not share them; hues are evenly spaced around the colour wheel.
    proto_shape = rng.permutation(len(SHAPES))[np.arange(c) % len(SHAPES)]
    proto_texture = rng.permutation(len(TEXTURES))[(np.arange(c) // len(SHAPES) + np.arange(c))
                                                   % len(TEXTURES)]
    proto_hue = (rng.random() + np.arange(c) / c) % 1.0

    def follows() -> np.ndarray:
        return rng.random(n) < clarity

    shape = np.where(follows(), proto_shape[y], rng.integers(0, len(SHAPES), size=n))
    texture = np.where(follows(), proto_texture[y], rng.integers(0, len(TEXTURES), size=n))
    jitter = rng.normal(0.0, _HUE_JITTER / c, size=n)
    hue = np.where(follows(), proto_hue[y] + jitter, rng.random(n)) % 1.0
    size = rng.uniform(0.35, 0.8, size=n)
    # Rounded to the precision of the reference string, so features and renders agree exactly.
    attrs = {
        "shape": shape,
        "hue": np.round(hue, 4) % 1.0,
        "texture": texture,
        "size": np.round(size, 3),
        "x": np.round(rng.uniform(size / 2, 1 - size / 2), 3),
        "y": np.round(rng.uniform(size / 2, 1 - size / 2), 3),
        "rot": np.round(rng.uniform(0.0, 360.0, size=n), 1),
        "bg": np.round(rng.uniform(0.1, 0.9, size=n), 3),
    }
    return attrs


def _image_refs(attrs: dict[str, np.ndarray], present: np.ndarray) -> RawList:
    cols = [attrs[k].tolist() for k in ("shape", "hue", "texture", "size", "x", "y", "rot", "bg")]
    refs = [f"synthetic:shape={SHAPES[s]};hue={h:.4f};texture={TEXTURES[t]};size={z:.3f};"
            f"x={cx:.3f};y={cy:.3f};rot={r:.1f};bg={g:.3f}" if keep else None
            for s, h, t, z, cx, cy, r, g, keep in zip(*cols, present.tolist())]
    return RawList(refs)


def _image_features(attrs: dict[str, np.ndarray], present: np.ndarray, p: dict,
                    rng: np.random.Generator, noise_rng: np.random.Generator) -> torch.Tensor:
    n = p["num_nodes"]
    rot = np.deg2rad(attrs["rot"])
    hue = 2 * np.pi * attrs["hue"]
    # Descriptor: what a frozen image encoder could read off the picture; nuisances centred.
    desc = np.concatenate([
        np.eye(len(SHAPES), dtype=np.float32)[attrs["shape"]],
        np.eye(len(TEXTURES), dtype=np.float32)[attrs["texture"]],
        np.stack([np.cos(hue), np.sin(hue), np.cos(rot), np.sin(rot),
                  (attrs["size"] - 0.575) * 4, (attrs["x"] - 0.5) * 4, (attrs["y"] - 0.5) * 4,
                  (attrs["bg"] - 0.5) * 2], axis=1).astype(np.float32),
    ], axis=1)
    proj = rng.standard_normal((desc.shape[1], p["image_dim"]), dtype=np.float32)
    # Descriptor rows have squared norm ~4-5 (two one-hots, two unit (cos, sin) pairs): this
    # keeps each feature of x near unit variance, the scale ``feature_noise`` is relative to.
    proj /= np.float32(2.0)
    x = torch.from_numpy(desc) @ torch.from_numpy(proj)
    del desc
    if p["feature_noise"] > 0:
        x += p["feature_noise"] * torch.from_numpy(
            noise_rng.standard_normal((n, p["image_dim"]), dtype=np.float32))
    x[torch.from_numpy(~present)] = 0.0
    return x


# ----------------------------------------------------------------------------- public API

def make_synthetic(num_nodes: int = 3000, num_classes: int = 6, num_edges: int = 30000,
                   homophily: float = 0.8, degree_power: float | None = 2.5,
                   text_dim: int = 128, image_dim: int = 128,
                   text_informativeness: float = 0.6, image_informativeness: float = 0.6,
                   missing_rate: float = 0.1, text_length: tuple[int, int] = (8, 24),
                   vocab_size: int = 50, noise_vocab_size: int = 300,
                   clarity_concentration: float = 2.0, feature_noise: float = 0.3,
                   seed: int = 0, num_tags: int = 0, tags_per_node: int = 3,
                   tag_informativeness: float = 0.6) -> HeteroData:
    """Generate a synthetic multimodal graph; see the module docstring for the model.

    Args:
        num_nodes: number of ``item`` nodes (>= num_classes).
        num_classes: number of classes (>= 2), equal-sized.
        num_edges: directed edges in ``edge_index``; both directions of ``num_edges // 2``
            distinct undirected pairs are stored.
        homophily: fraction of edges joining nodes of the same class, in [0, 1].
        degree_power: tail exponent (> 1) of the degree distribution; ``None`` for a plain SBM.
        text_dim: dimension of ``x_text``.
        image_dim: dimension of ``x_image``.
        text_informativeness: mean probability, in [0, 1], that a token is a class word.
        image_informativeness: mean probability, in [0, 1], that an image attribute (shape,
            hue, texture) follows the class prototype.
        missing_rate: probability, in [0, 0.5], that a node's text (likewise its image) is
            missing; never both.
        text_length: inclusive (min, max) number of tokens per text.
        vocab_size: words per class vocabulary.
        noise_vocab_size: words in the shared, class-free noise vocabulary.
        clarity_concentration: concentration (> 0, ``inf`` allowed) of the per-node Beta
            clarity; small values make nodes either clear or uninformative.
        feature_noise: std of the Gaussian noise added to present feature rows.
        seed: seed of every random draw.
        num_tags: number of ``tag`` nodes (0: none; else >= num_classes).
        tags_per_node: tag draws per item (>= 1).
        tag_informativeness: probability, in [0, 1], that a draw is a tag of the item's class.

    Returns:
        A :class:`HeteroData` following :mod:`mmgraph.data.graph`, with ``item`` nodes carrying
        ``y``, ``text``/``text_mask``/``x_text``, ``image``/``image_mask``/``x_image`` and ``x``,
        and the relation ``("item", "links", "item")``; with ``num_tags > 0`` also ``tag``
        nodes and the relations ``("item", "has_tag", "tag")`` and ``("tag", "tag_of", "item")``.

    Raises:
        ConfigError: an argument is outside its valid range.
    """
    p = _validate(num_nodes, num_classes, num_edges, homophily, degree_power, text_dim,
                  image_dim, text_informativeness, image_informativeness, missing_rate,
                  text_length, vocab_size, noise_vocab_size, clarity_concentration,
                  feature_noise, seed)
    p.update(_validate_tags(num_tags, tags_per_node, tag_informativeness, p["num_classes"]))
    n, c = p["num_nodes"], p["num_classes"]
    streams = np.random.SeedSequence(p["seed"]).spawn(9)  # children 0-7 as with spawn(8)
    (rng_label, rng_degree, rng_edge, rng_text, rng_image, rng_missing,
     rng_text_noise, rng_image_noise, rng_tags) = (np.random.default_rng(s) for s in streams)

    y = _labels(n, c, rng_label)
    theta = _propensities(n, p["num_edges"], p["degree_power"], rng_degree)
    edge_index = _edges(y, theta, p, rng_edge)
    del theta
    logger.debug("stage done: labels, edges")

    # Missingness as one categorical draw: text missing, image missing or both present.
    u = rng_missing.random(n)
    text_present = ~(u < p["missing_rate"])
    image_present = ~((u >= p["missing_rate"]) & (u < 2 * p["missing_rate"]))

    k = p["clarity_concentration"]
    text_clarity = _clarity(n, p["text_informativeness"], k, rng_text)
    image_clarity = _clarity(n, p["image_informativeness"], k, rng_image)
    logger.debug("stage done: missingness, clarity")

    width = len(str(c - 1))
    data = new_graph(name="synthetic", version="1", target="item",
                     class_names=[f"class_{i:0{width}d}" for i in range(c)],
                     generator=dict(p), image_root=None)
    store = data["item"]
    store.num_nodes = n
    store.y = torch.from_numpy(y)
    data[EDGE_TYPE].edge_index = torch.from_numpy(edge_index)
    del edge_index

    texts, x_text, _ = _text(y, text_clarity, text_present, p, rng_text, rng_text_noise)
    store.text = texts
    add_feature(data, "text", x_text, encoder="synthetic-bag-of-words", spec=dict(p),
                mask=torch.from_numpy(text_present))
    del x_text
    logger.debug("stage done: text")

    attrs = _image_attributes(y, image_clarity, p, rng_image)
    store.image = _image_refs(attrs, image_present)
    x_image = _image_features(attrs, image_present, p, rng_image, rng_image_noise)
    del attrs
    add_feature(data, "image", x_image, encoder="synthetic-image-attributes", spec=dict(p),
                mask=torch.from_numpy(image_present))
    del x_image
    logger.debug("stage done: image")

    if p.get("num_tags"):
        _add_tags(data, y, p, rng_tags)
        logger.debug("stage done: tags")

    set_model_input(data, ["text", "image"])
    logger.debug("stage done: model input")
    return data


def _validate_tags(num_tags: Any, tags_per_node: Any, informativeness: Any, c: int) -> dict:
    """The tag parameters for ``p``: none at all when ``num_tags`` is 0 (fingerprints unchanged)."""
    tags = {"num_tags": integer("num_tags", num_tags, 0),  # checked even when unused
            "tags_per_node": integer("tags_per_node", tags_per_node, 1),
            "tag_informativeness": number("tag_informativeness", informativeness, 0.0, 1.0)}
    if tags["num_tags"] == 0:
        return {}
    if num_tags < c:
        raise ConfigError(f"num_tags must be 0 or >= num_classes={c} (a tag per class); got {num_tags}")
    return tags


def _add_tags(data: HeteroData, y: np.ndarray, p: dict, rng: np.random.Generator) -> None:
    n, c, t, k = p["num_nodes"], p["num_classes"], p["num_tags"], p["tags_per_node"]
    node = np.repeat(np.arange(n, dtype=np.int64), k)
    cls = y[node]
    per_class = (t - 1 - cls) // c + 1                     # tags cls, cls + c, cls + 2c, ... < t
    own = cls + c * np.floor(rng.random(node.size) * per_class).astype(np.int64)
    tag = np.where(rng.random(node.size) < p["tag_informativeness"], own,
                   rng.integers(0, t, size=node.size))
    keys = np.unique(node * t + tag)                       # sorted by (item, tag), no duplicates
    has = torch.from_numpy(np.stack([keys // t, keys % t]))
    width = len(str(t - 1))
    data["tag"].num_nodes = t
    data["tag"].name = RawList(f"tag_{i:0{width}d}" for i in range(t))
    data["item", "has_tag", "tag"].edge_index = has
    back = has.flip(0)
    data["tag", "tag_of", "item"].edge_index = back[:, torch.argsort(back[0] * n + back[1])]


def parse_image_ref(ref: str) -> dict[str, Any]:
    """Parse ``"synthetic:shape=..;hue=..;..."`` into its attributes.

    Raises:
        DataError: the reference is not a valid synthetic image reference.
    """
    if not isinstance(ref, str) or not ref.startswith("synthetic:"):
        raise DataError(f"not a synthetic image reference: {str(ref)[:80]!r}")
    out: dict[str, Any] = {"size": 0.6, "x": 0.5, "y": 0.5, "rot": 0.0, "bg": 0.5}
    try:
        for item in ref[len("synthetic:"):].split(";"):
            if not item:
                continue
            key, value = item.split("=", 1)
            out[key.strip()] = value.strip() if key.strip() in ("shape", "texture") else float(value)
    except ValueError:
        raise DataError(f"malformed synthetic image reference {ref[:120]!r}; "
                        f"expected 'synthetic:key=value;...'") from None
    for key, allowed in (("shape", SHAPES), ("texture", TEXTURES)):
        if out.get(key) not in allowed:
            raise DataError(f"synthetic image reference {ref[:120]!r}: {key} must be one of "
                            f"{', '.join(allowed)}")
    if "hue" not in out:
        raise DataError(f"synthetic image reference {ref[:120]!r} has no hue")
    return out


def _polygon(shape: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    """Vertices of ``shape`` centred at (cx, cy) with outer radius ``r``, rotated by ``rot`` rad."""
    if shape == "square":
        angles, radii = np.arange(4) * np.pi / 2 + np.pi / 4, np.full(4, r)
    elif shape == "diamond":
        angles, radii = np.arange(4) * np.pi / 2, np.array([r, 0.6 * r, r, 0.6 * r])
    elif shape in ("triangle", "pentagon", "hexagon"):
        k = {"triangle": 3, "pentagon": 5, "hexagon": 6}[shape]
        angles, radii = np.arange(k) * 2 * np.pi / k - np.pi / 2, np.full(k, r)
    elif shape == "star":
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, 0.42 * r)
    elif shape == "cross":
        w = 0.33 * r
        pts = np.array([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r),
                        (-w, w), (-r, w), (-r, -w), (-w, -w)])
        angles, radii = np.arctan2(pts[:, 1], pts[:, 0]), np.hypot(pts[:, 0], pts[:, 1])
    else:
        raise ValueError(shape)
    a = angles + rot
    return list(zip((cx + radii * np.cos(a)).tolist(), (cy + radii * np.sin(a)).tolist()))


def render_image(ref: str, size: int = 64) -> Image.Image:
    """Draw the RGB image a ``"synthetic:..."`` reference describes, deterministically.

    Args:
        ref: a reference produced by :func:`make_synthetic` (see :func:`parse_image_ref`).
        size: side of the square output in pixels.

    Raises:
        DataError: the reference is malformed.
    """
    a = parse_image_ref(ref)
    size = int(size)
    if size < 1:
        raise DataError(f"image size must be >= 1 pixel; got {size}")
    s = 2 * size  # supersampled, then box-averaged down for anti-aliased edges
    rot = math.radians(a["rot"])
    cx, cy, r = a["x"] * s, a["y"] * s, a["size"] * s / 2
    mask_img = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(mask_img)
    if a["shape"] == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        draw.polygon(_polygon(a["shape"], cx, cy, r, rot), fill=255)
    mask = np.asarray(mask_img) > 127

    # Texture in the shape's rotated frame, with a period tied to the shape's size.
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    u = (xx - cx) * math.cos(rot) + (yy - cy) * math.sin(rot)
    v = -(xx - cx) * math.sin(rot) + (yy - cy) * math.cos(rot)
    period = max(4.0, r / 2.2)
    tex = a["texture"]
    if tex == "solid":
        alt = np.zeros((s, s), dtype=bool)
    elif tex == "stripes":
        alt = np.floor(u / (period / 2)) % 2 == 1
    elif tex == "checker":
        alt = (np.floor(u / period) + np.floor(v / period)) % 2 == 1
    elif tex == "dots":
        du = (u / period) - np.round(u / period)
        dv = (v / period) - np.round(v / period)
        alt = du * du + dv * dv < 0.3 ** 2
    else:  # grid
        alt = ((u / period) % 1 < 0.22) | ((v / period) % 1 < 0.22)

    fg = np.array(colorsys.hsv_to_rgb(a["hue"] % 1.0, 0.85, 0.95)) * 255
    dark = np.array(colorsys.hsv_to_rgb(a["hue"] % 1.0, 0.9, 0.45)) * 255
    bg = np.full(3, min(max(a["bg"], 0.0), 1.0) * 255)
    pix = np.where(mask[..., None], np.where(alt[..., None], dark, fg), bg)
    img = Image.fromarray(pix.round().astype(np.uint8), "RGB")
    return img.resize((size, size), Image.Resampling.BOX)
