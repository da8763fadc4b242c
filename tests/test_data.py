"""Image loading, conversion and writing."""

import numpy as np
import pytest

from dipjax.data import BUNDLED, ImageError, load_image, save_png


def test_every_bundled_image_loads_without_network():
    for name in BUNDLED:
        img = load_image(name, 32)
        assert img.shape[:2] == (32, 32) and img.shape[-1] in (1, 3) and img.dtype == np.float32
        assert 0 <= img.min() and img.max() <= 1


def test_channels_and_files(tmp_path):
    gray = load_image("astronaut", 40, channels=1)
    rgb = load_image("camera", 40, channels=3)
    assert gray.shape == (40, 40, 1) and rgb.shape == (40, 40, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    path = tmp_path / "x.png"
    save_png(str(path), rgb)
    back = load_image(str(path))
    assert back.shape == (40, 40, 3) and np.abs(back - rgb).max() <= 0.5 / 255 + 1e-6
    np.save(tmp_path / "a.npy", gray[..., 0])
    np.testing.assert_array_equal(load_image(str(tmp_path / "a.npy")), gray)


def test_bad_images_say_what_is_wrong(tmp_path):
    with pytest.raises(ImageError, match="no bundled image or file"):
        load_image("no-such-image")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="cannot read image file"):
        load_image(str(bad))
    np.save(tmp_path / "nan.npy", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ImageError, match="NaN"):
        load_image(str(tmp_path / "nan.npy"))
    txt = tmp_path / "a.txt"
    txt.write_text("x")
    with pytest.raises(ImageError, match="expected one of"):
        load_image(str(txt))
