"""Multi-vector features: MiniLM's token vectors and EfficientNet-Lite0's region grid."""
import pytest
import torch
from PIL import Image

from mmgraph.errors import ConfigError
from mmgraph.features.encoders import get_encoder, split_local


def test_text_tokens_keep_the_pooled_vector_first_and_pad_with_zero_rows():
    texts = ["a red apple on a wooden table", "hi"]
    pooled = get_encoder("minilm").encode_text(texts)
    enc = get_encoder("minilm", tokens=6)
    x = enc.encode_text(texts)
    assert x.shape == (2, 7 * 384) and enc.dim == 7 * 384
    glob, local, mask = split_local(x, 6)
    torch.testing.assert_close(glob, pooled, atol=1e-5, rtol=1e-5)
    assert mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]  # [CLS] hi [SEP], then padding
    assert torch.count_nonzero(local[1, 3:]) == 0
    assert "tokens" not in get_encoder("minilm").spec() and enc.spec()["tokens"] == 6  # cache keys apart


def test_image_grid_keeps_the_pooled_vector_first():
    img = Image.new("RGB", (60, 90), "red")
    img.paste((0, 0, 255), (0, 0, 30, 45))
    plain = get_encoder("efficientnet_lite0")
    grid = get_encoder("efficientnet_lite0", output="grid", grid=2)
    x = grid.encode_image([grid.prepare_image(img)])
    assert x.shape == (1, 5 * 1280) and grid.dim == 5 * 1280
    glob, cells, mask = split_local(x, 4)
    torch.testing.assert_close(glob, plain.encode_image([plain.prepare_image(img)]), atol=1e-5, rtol=1e-5)
    assert mask.all() and not torch.allclose(cells[0, 0], cells[0, 3])  # regions differ
    assert grid.spec()["grid"] == 2 and "grid" not in plain.spec()


def test_bad_local_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="tokens must be a non-negative integer"):
        get_encoder("minilm", tokens=-1)
    with pytest.raises(ConfigError, match="grid must be an integer from 1 to 7"):
        get_encoder("efficientnet_lite0", output="grid", grid=9)
    with pytest.raises(ConfigError, match="not 5 equal vectors"):
        split_local(torch.zeros(2, 1281), 4)
