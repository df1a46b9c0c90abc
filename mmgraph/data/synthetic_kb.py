"""A deterministic synthetic knowledge base with mentions (``dataset=synthetic_kb``), features
included: entity linking without downloads or encoders (tests, smoke runs, the ranking benchmark).

**Generative model** (one integer ``seed``):

1. ``num_groups`` groups with latent centres ``c_g ~ N(0, I_k)``; each entity belongs to one group
   (uniformly) and has the latent ``z_e = c_g + spread * u_e`` with ``u_e ~ N(0, I_k)``.
2. Each modality ``m`` (text, image) has a fixed random map ``W_m`` (``k -> dim``). An entity's
   features are ``W_m z_e + entity_noise * eps``; a group node's text feature is
   ``W_text c_g + entity_noise * eps``. A mention of entity ``e`` has ``W_m z_e +
   mention_noise * eps`` (a fresh draw per mention). ``missing_rate`` of the mentions' and
   entities' image features are missing (mask cleared, row zero).
3. Relations: ``(entity, in_group, group)`` and ``(group, has_member, entity)``. The KB's group
   structure thus tells a graph linker what an entity's noisy features only hint at.
4. Mentions: ``mentions_per_entity`` per entity. ``unseen_ratio`` of the entities have no training
   mention (half of them in validation, half in test); the other entities' mentions are split
   ``train_ratio`` / ``val_ratio`` / rest, with at least one training mention each.
"""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.checks import integer, number
from mmgraph.data.graph import add_feature
from mmgraph.data.kb import Entity, Mention, kb_graph

VERSION = "1"


def entity_split(num_entities: int, counts: np.ndarray, unseen_ratio: float, train_ratio: float,
                 val_ratio: float, rng: np.random.Generator) -> list[list[str]]:
    """Per entity, the splits of its ``counts[e]`` mentions: ``unseen_ratio`` of the entities
    (drawn by ``rng``) have all their mentions in validation (half of those entities) or test (the
    other half); every other entity has at least one training mention and the rest split
    ``train_ratio`` / ``val_ratio`` / remainder in a random order."""
    order = rng.permutation(num_entities)
    n_unseen = int(round(unseen_ratio * num_entities))
    unseen = {int(e): ("val" if i % 2 == 0 else "test") for i, e in enumerate(order[:n_unseen])}
    out = []
    for e in range(num_entities):
        c = int(counts[e])
        if e in unseen:
            out.append([unseen[e]] * c)
            continue
        n_train = max(1, int(round(train_ratio * c))) if c else 0
        n_val = min(c - n_train, int(round(val_ratio * c)))
        parts = ["train"] * n_train + ["val"] * n_val + ["test"] * (c - n_train - n_val)
        out.append([parts[i] for i in rng.permutation(c)] if c else [])
    return out


def make_synthetic_kb(num_entities: int = 2000, num_groups: int = 50, mentions_per_entity: int = 5,
                      latent_dim: int = 16, text_dim: int = 64, image_dim: int = 64, spread: float = 0.5,
                      entity_noise: float = 1.5, mention_noise: float = 1.0, missing_rate: float = 0.1,
                      unseen_ratio: float = 0.2, train_ratio: float = 0.6, val_ratio: float = 0.2,
                      seed: int = 0) -> HeteroData:
    """The synthetic KB described in the module doc, as :func:`mmgraph.data.kb.kb_graph`'s graph
    with ``x_text`` / ``x_image`` on ``mention`` and ``entity`` nodes and ``x_text`` on ``group``."""
    n = integer("num_entities", num_entities, 2)
    g = integer("num_groups", num_groups, 1)
    per = integer("mentions_per_entity", mentions_per_entity, 1)
    k = integer("latent_dim", latent_dim, 1)
    dims = {"text": integer("text_dim", text_dim, 1), "image": integer("image_dim", image_dim, 1)}
    for name, v in (("spread", spread), ("entity_noise", entity_noise), ("mention_noise", mention_noise)):
        number(name, v, 0.0)
    number("missing_rate", missing_rate, 0.0, 1.0)
    number("unseen_ratio", unseen_ratio, 0.0, 1.0)
    number("train_ratio", train_ratio, 0.0, 1.0)
    number("val_ratio", val_ratio, 0.0, 1.0)
    rng = np.random.default_rng(integer("seed", seed, 0))

    centres = rng.standard_normal((g, k))
    group = rng.integers(0, g, n)
    z = centres[group] + spread * rng.standard_normal((n, k))
    maps = {m: rng.standard_normal((k, d)) / np.sqrt(k) for m, d in dims.items()}
    splits = entity_split(n, np.full(n, per), unseen_ratio, train_ratio, val_ratio, rng)
    owner = np.repeat(np.arange(n), per)

    entities = [Entity(f"E{e}", f"entity {e}") for e in range(n)]
    mentions = [Mention(f"M{i}", f"mention {i}", "", s, f"E{e}")
                for i, (e, s) in enumerate((e, s) for e in range(n) for s in splits[e])]
    members = np.stack([np.arange(n), group])
    data = kb_graph("synthetic_kb", VERSION, entities, mentions, image_root=None,
                    relations={("entity", "in_group", "group"): members,
                               ("group", "has_member", "entity"): members[::-1].copy()},
                    node_types={"group": {"name": [f"group {i}" for i in range(g)]}},
                    source="mmgraph.data.synthetic_kb (generated)", license="CC0-1.0",
                    build_options={"num_entities": n, "num_groups": g, "mentions_per_entity": per,
                                   "latent_dim": k, **{f"{m}_dim": d for m, d in dims.items()},
                                   "spread": spread, "entity_noise": entity_noise,
                                   "mention_noise": mention_noise, "missing_rate": missing_rate,
                                   "unseen_ratio": unseen_ratio, "train_ratio": train_ratio,
                                   "val_ratio": val_ratio, "seed": seed})
    spec = {"generator": "synthetic_kb", **data.meta["build_options"]}
    for m, w in maps.items():
        x_ent = z @ w + entity_noise * rng.standard_normal((n, dims[m]))
        x_men = z[owner] @ w + mention_noise * rng.standard_normal((owner.size, dims[m]))
        masks = {"entity": np.ones(n, bool), "mention": np.ones(owner.size, bool)}
        if m == "image":
            masks = {t: rng.random(v.size) >= missing_rate for t, v in masks.items()}
        for t, x in (("entity", x_ent), ("mention", x_men)):
            x = np.where(masks[t][:, None], x, 0.0)
            add_feature(data, m, torch.tensor(x, dtype=torch.float32), "synthetic", spec=spec, node_type=t,
                        mask=torch.from_numpy(masks[t]))
    x_grp = centres @ maps["text"] + entity_noise * rng.standard_normal((g, dims["text"]))
    add_feature(data, "text", torch.tensor(x_grp, dtype=torch.float32), "synthetic", spec=spec, node_type="group")
    return data
