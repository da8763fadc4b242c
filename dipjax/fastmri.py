"""fastMRI HDF5 files, multi-coil and single-coil (Zbontar et al., arXiv 1811.08839; facebookresearch/fastMRI
``fastmri/data``).

A multi-coil file holds one volume: ``kspace`` complex64 ``(slices, coils, H, W)`` (knee: 640 × 368 with the readout
oversampled twice), ``reconstruction_rss`` float32 ``(slices, h, w)`` (the root-sum-of-squares of the coil images
of the fully sampled k-space, centre-cropped to the reconstruction size), ``ismrmrd_header`` (XML; the reconstruction
size is ``encoding/reconSpace/matrixSize`` x, y: 320 × 320 for knee) and the attribute ``max`` (the volume's largest
value of the reference). A single-coil file (the knee single-coil track) has ``kspace`` ``(slices, H, W)``, the
emulated single-coil k-space, and its reference is ``reconstruction_esc``, the magnitude of its inverse FFT cropped
the same way. fastMRI's ``mri_data.py`` reads the header this way and its ``evaluate.py`` scores magnitudes against
``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil) by PSNR and SSIM with ``maxval`` the
target's maximum; :func:`evaluate_slice` does the same for one slice, with the file's ``max``, after
:func:`center_crop` (fastMRI's ``transforms.center_crop``: offsets ``(H − h) // 2``, ``(W − w) // 2``).

:func:`write_fastmri` writes a file in either layout (the tests make their own; nothing is downloaded).
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET

import numpy as np

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"


class FastMRIError(ValueError):
    """A file that is not a readable fastMRI volume, or a slice it does not have."""


#: The reference reconstruction of each kind of file, by the number of axes of its ``kspace`` (fastMRI's
#: ``evaluate.py``: ``recons_key``).
REFERENCE_KEY = {4: "reconstruction_rss", 3: "reconstruction_esc"}


@dataclasses.dataclass(frozen=True)
class FastMRISlice:
    """One slice of a fastMRI volume: fully sampled k-space ``(coils, H, W)`` complex64 (one coil for a single-coil
    file), the file's reference reconstruction of the slice (``reconstruction_rss``, or ``reconstruction_esc`` of a
    single-coil file; ``None`` for test-set files, which have none), the reconstruction size, ``max`` and the
    number of slices of the volume."""

    path: str
    index: int
    kspace: np.ndarray
    reference: np.ndarray | None
    recon_size: tuple[int, int]
    max_value: float | None
    slices: int

    @property
    def label(self) -> str:
        return f"{os.path.splitext(os.path.basename(self.path))[0]}-slice{self.index}"


def _recon_size(header: bytes | str) -> tuple[int, int]:
    root = ET.fromstring(header)
    ns = {"m": ISMRMRD_NAMESPACE}
    size = root.find("m:encoding/m:reconSpace/m:matrixSize", ns)
    if size is None:
        raise FastMRIError("its ismrmrd_header has no encoding/reconSpace/matrixSize")
    return int(size.find("m:x", ns).text), int(size.find("m:y", ns).text)


def read_fastmri(path: str, slice_index: int = -1) -> FastMRISlice:
    """Slice ``slice_index`` (``-1``: the middle slice, as fastMRI's examples show) of the fastMRI file ``path``,
    multi-coil or single-coil (read as one coil)."""
    import h5py

    if not os.path.isfile(path):
        raise FastMRIError(f"k-space file {path!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            if "kspace" not in f:
                raise FastMRIError(f"{path!r} has no 'kspace' dataset (expected a fastMRI HDF5 file)")
            ks = f["kspace"]
            if ks.ndim not in REFERENCE_KEY or not np.issubdtype(ks.dtype, np.complexfloating):
                raise FastMRIError(f"{path!r}: 'kspace' must be complex (slices, coils, H, W), or (slices, H, W) for "
                                   f"a single-coil file; got {ks.dtype} {ks.shape}")
            n = ks.shape[0]
            index = n // 2 if slice_index == -1 else slice_index
            if not 0 <= index < n:
                raise FastMRIError(f"--slice {slice_index} is out of range: {path!r} has slices 0..{n - 1}")
            kspace = np.asarray(ks[index], np.complex64).reshape((-1,) + ks.shape[-2:])
            key = REFERENCE_KEY[ks.ndim]
            reference = np.asarray(f[key][index], np.float32) if key in f else None
            header = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
            recon_size = _recon_size(header) if header is not None else (320, 320)
            max_value = float(f.attrs["max"]) if "max" in f.attrs else None
    except OSError as exc:
        raise FastMRIError(f"cannot read {path!r} as HDF5: {str(exc).splitlines()[0]}") from None
    except ET.ParseError as exc:
        raise FastMRIError(f"{path!r}: unreadable ismrmrd_header ({exc})") from None
    if not np.all(np.isfinite(kspace)):
        raise FastMRIError(f"{path!r}: slice {index} of 'kspace' has non-finite values")
    return FastMRISlice(path, index, kspace, reference, recon_size, max_value, n)


def center_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The centre ``shape`` block of the last two axes (fastMRI's ``center_crop``)."""
    h, w = image.shape[-2:]
    ch, cw = shape
    if ch > h or cw > w:
        raise FastMRIError(f"cannot crop a {h}x{w} image to {ch}x{cw}")
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[..., top:top + ch, left:left + cw]


def evaluate_slice(magnitude: np.ndarray, target: np.ndarray, maxval: float | None = None) -> dict[str, float]:
    """fastMRI's slice metrics: PSNR and SSIM of ``magnitude`` (centre-cropped to the target's shape) against
    ``target`` with data range ``maxval`` (default: the target's maximum, as ``evaluate.py``), and the NMSE."""
    from skimage.metrics import structural_similarity

    x = center_crop(np.asarray(magnitude, np.float64), target.shape)
    t = np.asarray(target, np.float64)
    maxval = float(t.max()) if maxval is None else float(maxval)
    mse = float(np.mean((x - t) ** 2))
    return {"psnr": 10 * np.log10(maxval**2 / mse) if mse > 0 else float("inf"),
            "ssim": float(structural_similarity(t, x, data_range=maxval)),
            "nmse": float(np.sum((x - t) ** 2) / np.sum(t**2))}


def ismrmrd_header(encoded: tuple[int, int], recon: tuple[int, int]) -> bytes:
    """A minimal ISMRMRD header with the encoded and reconstruction matrix sizes (what fastMRI reads of it)."""
    def space(tag, size):
        return (f"<{tag}><matrixSize><x>{size[0]}</x><y>{size[1]}</y><z>1</z></matrixSize>"
                f"<fieldOfView_mm><x>{size[0]}</x><y>{size[1]}</y><z>1</z></fieldOfView_mm></{tag}>")
    return (f'<?xml version="1.0" encoding="utf-8"?><ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}"><encoding>'
            f"{space('encodedSpace', encoded)}{space('reconSpace', recon)}</encoding></ismrmrdHeader>").encode()


def write_fastmri(path: str, kspace: np.ndarray, recon_size: tuple[int, int] = (320, 320), *,
                  overwrite: bool = False) -> None:
    """Write ``kspace`` ``(slices, coils, H, W)`` as a fastMRI multi-coil file, with ``reconstruction_rss`` made as
    fastMRI made it (RSS of the centred unitary inverse FFT of each coil, centre-cropped to ``recon_size``), the
    header and ``max``; ``kspace`` ``(slices, H, W)`` as a single-coil file, with ``reconstruction_esc`` (the same
    for one coil: the magnitude). Refuses to replace an existing file unless ``overwrite``."""
    import h5py

    from dipjax.operators.mri import ifft2c, rss

    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it")
    kspace = np.asarray(kspace, np.complex64)
    if kspace.ndim not in REFERENCE_KEY:
        raise FastMRIError(f"kspace must be (slices, coils, H, W) or single-coil (slices, H, W), got {kspace.shape}")
    coils = kspace.reshape((kspace.shape[0], -1) + kspace.shape[-2:])
    target = np.stack([center_crop(np.asarray(rss(ifft2c(k)), np.float32), recon_size) for k in coils])
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        f.create_dataset(REFERENCE_KEY[kspace.ndim], data=target)
        f.create_dataset("ismrmrd_header", data=ismrmrd_header(kspace.shape[-2:], recon_size))
        f.attrs["max"] = float(target.max())
        f.attrs["acquisition"] = "synthetic"
