"""Images in and out: scikit-image's and pydicom's bundled test images by name, image files by path, PNG output.

Images are float32 arrays in ``[0, 1]`` with shape ``(H, W, C)``, ``C`` = 1 (grayscale) or 3 (RGB).
Nothing here touches the network: every named image ships inside the scikit-image or pydicom wheel.

DICOM (``.dcm``, and the bundled ``mr_*``/``ct_*`` images): the stored values times ``RescaleSlope`` plus
``RescaleIntercept`` (Hounsfield units for CT; CT values below air's −1000 HU are clipped to it), min–max
normalised to [0, 1] (as aSeqDIP's CT script normalises its slice); :func:`value_range` gives the range, and PSNRs
are on that scale.
"""

from __future__ import annotations

import os

import numpy as np

#: Bundled images (name -> ``skimage.data`` function), all stored in the scikit-image wheel.
BUNDLED = {
    "astronaut": "astronaut", "brick": "brick", "camera": "camera", "cat": "cat", "chelsea": "chelsea",
    "checkerboard": "checkerboard", "clock": "clock", "coffee": "coffee", "coins": "coins",
    "colorwheel": "colorwheel", "grass": "grass", "gravel": "gravel", "hubble": "hubble_deep_field",
    "immunohistochemistry": "immunohistochemistry", "moon": "moon", "page": "page",
    "phantom": "shepp_logan_phantom", "retina": "retina", "rocket": "rocket", "text": "text",
}

#: Medical images that ship in pydicom's wheel (``pydicom/data/test_files``): name -> (file, what it is).
BUNDLED_DICOM = {
    "mr_abdomen": ("examples_overlay.dcm", "abdominal MR, 300 x 484, magnitude"),
    "mr_small": ("MR_small.dcm", "MR, 64 x 64"),
    "ct_head": ("693_J2KI.dcm", "head CT, 512 x 512, HU (JPEG 2000)"),
    "ct_small": ("CT_small.dcm", "CT, 128 x 128, HU"),
}

FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".dcm")

#: Air in Hounsfield units, the least attenuation there is. Scanners write lower values (−1024, −2048, −3024 …)
#: outside the reconstructed field of view: padding, not tissue (``ct_head`` holds −3040 HU there, one pixel
#: −3995). Left in, min–max normalisation would put air at 0.52 instead of 0, so CT values are clipped to it first.
AIR_HU = -1000.0


def _dicom_values(path: str) -> tuple[np.ndarray, str]:
    """A DICOM slice's values in its modality's units (stored values × RescaleSlope + RescaleIntercept: Hounsfield
    units for CT, clipped below at :data:`AIR_HU`) as float64, and the units' name."""
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        a = ds.pixel_array.astype(np.float64)
    a = a * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if a.ndim != 2:
        raise ImageError(f"{path!r} holds a {a.ndim}-D DICOM image; expected one 2-D slice")
    if getattr(ds, "Modality", "") == "CT":
        return np.maximum(a, AIR_HU), "HU"
    return a, "stored values × RescaleSlope + RescaleIntercept"


def read_dicom(path: str) -> np.ndarray:
    """A DICOM slice as float64 in [0, 1]: stored values × RescaleSlope + RescaleIntercept (CT: clipped below at
    air's −1000 HU), then min–max normalised (:func:`value_range` gives the range, to map an estimate back)."""
    a, _ = _dicom_values(path)
    span = a.max() - a.min()
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def _dicom_path(spec: str) -> str | None:
    """The DICOM file of a bundled DICOM name or a ``.dcm`` path; ``None`` for other images."""
    if spec in BUNDLED_DICOM:
        import pydicom

        return os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", BUNDLED_DICOM[spec][0])
    return spec if spec.lower().endswith(".dcm") else None


def value_range(spec: str) -> dict | None:
    """For a DICOM image, the range its [0, 1] image was normalised from, ``{"min", "max", "units"}`` (HU for CT):
    an estimate ``x`` is ``min + x (max − min)`` in those units. ``None`` for other images (their [0, 1] is the
    file's own scale)."""
    path = _dicom_path(spec)
    if path is None:
        return None
    a, units = _dicom_values(path)
    return {"min": float(a.min()), "max": float(a.max()), "units": units}


class ImageError(ValueError):
    """An image that cannot be found, read or used; the message says what was expected."""


def image_label(spec: str) -> str:
    """A short name for outputs: the bundled name, or the file name without suffix."""
    if spec in BUNDLED or spec in BUNDLED_DICOM:
        return spec
    return os.path.splitext(os.path.basename(spec))[0] or "image"


def unique_labels(specs) -> list[str]:
    """One output-folder name per image, in order: its :func:`image_label`, or ``label-i`` (``i`` its position) when
    an earlier image already has that name."""
    labels: list[str] = []
    for spec in specs:
        label = image_label(spec)
        labels.append(label if label not in labels else f"{label}-{len(labels)}")
    return labels


def _read(spec: str) -> np.ndarray:
    if spec in BUNDLED:
        import skimage.data

        return np.asarray(getattr(skimage.data, BUNDLED[spec])())
    if spec in BUNDLED_DICOM:
        return read_dicom(_dicom_path(spec))
    if not os.path.exists(spec):
        names = sorted(BUNDLED) + sorted(BUNDLED_DICOM)
        raise ImageError(f"no bundled image or file named {spec!r} (bundled: {', '.join(names)})")
    if not spec.lower().endswith(FILE_SUFFIXES):
        raise ImageError(f"cannot read {spec!r}: expected one of {', '.join(FILE_SUFFIXES)}")
    try:
        if spec.lower().endswith(".npy"):
            return np.load(spec, allow_pickle=False)
        if spec.lower().endswith(".dcm"):
            return read_dicom(spec)
        import imageio.v3 as iio

        # the plugin named, so a corrupt file is not probed by every backend (imageio's deprecated DICOM one warns)
        return np.asarray(iio.imread(spec, plugin="tifffile" if spec.lower().endswith((".tif", ".tiff")) else "pillow"))
    except Exception as exc:  # unreadable or corrupt file: one actionable line
        first_line = (str(exc).splitlines() or [""])[0]
        raise ImageError(f"cannot read image file {spec!r}: {type(exc).__name__}: {first_line}") from None


def to_float_image(a: np.ndarray) -> np.ndarray:
    """Any 2-D/3-D numeric array to float32 ``(H, W, C)`` in ``[0, 1]`` (integers scaled by their dtype's max)."""
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / np.iinfo(a.dtype).max
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    else:
        raise ImageError(f"image array has unsupported dtype {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4) or a.size == 0:
        raise ImageError(f"expected a non-empty (H, W) or (H, W, C) image with C in 1..4, got shape {a.shape}")
    if a.shape[-1] == 2:  # gray + alpha
        a = a[..., :1]
    if a.shape[-1] == 4:  # RGBA: drop alpha
        a = a[..., :3]
    if not np.all(np.isfinite(a)):
        raise ImageError("image contains NaN or infinite values")
    if a.min() < 0 or a.max() > 1:
        raise ImageError(f"float image values must lie in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
    return a


def center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Crop the central square and resize it to ``size x size`` (anti-aliased when shrinking)."""
    from skimage.transform import resize

    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    if s != size:
        img = resize(img, (size, size, img.shape[-1]), order=3, anti_aliasing=s > size, mode="reflect")
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def load_image(spec: str, size: int | None = None, channels: int | None = None) -> np.ndarray:
    """Load a bundled image by name (see :data:`BUNDLED`) or a PNG/JPEG/TIFF/NPY file.

    ``size``: centre-crop to a square and resize to ``size x size``. ``channels``: 1 converts to grayscale
    (ITU-R 601 luma), 3 repeats a grayscale image; ``None`` keeps the image's own.
    """
    img = to_float_image(_read(spec))
    if channels == 1 and img.shape[-1] == 3:
        img = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    elif channels == 3 and img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    elif channels not in (None, 1, 3):
        raise ImageError(f"channels must be 1 or 3, got {channels}")
    if size is not None:
        if size < 1:
            raise ImageError(f"image size must be positive, got {size}")
        img = center_crop_resize(img, size)
    return img


def save_png(path: str, img) -> None:
    """Write an image in ``[0, 1]`` (``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``) as an 8-bit PNG, atomically."""
    import imageio.v3 as iio

    from dipjax.files import atomic_path

    a = np.clip(np.asarray(img, np.float32), 0.0, 1.0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, (a * 255.0 + 0.5).astype(np.uint8), extension=".png")
