"""The Figure 1 and Figure 5 scripts end to end at a tiny size (marked slow: about two minutes on 2 CPU cores)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "experiments"))


@pytest.mark.slow
def test_fig1_script_tiny_run(tmp_path):
    import fig1_overfitting

    fig1_overfitting.main(["--quick", "--denoise-steps", "30", "--mri-steps", "30", "--width", "8", "--mri-width", "8",
                           "--out", str(tmp_path)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    for name in ("denoising", "mri"):
        row = m["rows"][name]
        assert len(row["curve"]) == row["steps"] == 30
        assert row["psnr_peak"] == pytest.approx(max(max(row["curve"]), row["psnr_iter0"]), abs=1e-3)
        assert m["checks"][name]["peak_over_final"]["value"] == pytest.approx(row["psnr_peak"] - row["psnr_final"])
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):  # results exist: refuses to overwrite them silently
        fig1_overfitting.main(["--quick", "--out", str(tmp_path)])


@pytest.mark.slow
def test_fig5_script_tiny_run(tmp_path):
    import fig5_medical

    fig5_medical.main(["--quick", "--steps", "20", "--width", "8", "--out", str(tmp_path)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    for name in ("mri", "ct"):
        row = m["rows"][name]
        assert set(row["psnr"]) == {"input", "tv", "dip", "sg_dip", "aseq_dip"}
        assert row["psnr"]["tv"] == pytest.approx(max(v for k, v in row["classical"].items() if k.startswith("tv_")
                                                      and k != "tv_lambda"))
        assert all(np.isfinite(v) for v in row["psnr"].values())
        assert row["methods"]["dip"]["iter_stop"] >= 0
    assert set(m["checks"]["mri"]) == {"sg_dip", "aseq_dip"}
