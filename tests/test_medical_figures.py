"""The figure scripts (Figures 1, 3 and 5) end to end at a tiny size (marked slow: minutes on 2 CPU cores), and the
aSeqDIP–Landweber diagnosis (seconds)."""

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


@pytest.mark.slow
def test_fig3_and_fig5_natural_scripts_tiny_runs(tmp_path):
    import fig3_peak_varies
    import fig5_natural

    fig3_peak_varies.main(["--quick", "--steps", "20", "--width", "8", "--out", str(tmp_path / "f3")])
    m = json.loads((tmp_path / "f3" / "metrics.json").read_text())
    peaks = [m["rows"][name]["iter_peak"] for name in fig3_peak_varies.IMAGES]
    assert all(1 <= p <= 20 for p in peaks)
    assert m["checks"]["latest_over_earliest"]["value"] == pytest.approx(max(peaks) / min(peaks))
    fig5_natural.main(["--quick", "--steps", "10", "--width", "8", "--hio-starts", "2", "--out", str(tmp_path / "f5")])
    m = json.loads((tmp_path / "f5" / "metrics.json").read_text())
    assert set(m["rows"]) == {"inpainting", "nonlinear deblurring", "phase retrieval"}
    assert set(m["rows"]["phase retrieval"]["psnr"]) == {"spectral", "hio", "dip", "dip_final"}
    assert all(np.isfinite(v) for row in m["rows"].values() for v in row["psnr"].values())
    assert (tmp_path / "f5" / "figure.png").stat().st_size > 10_000


def test_aseq_dip_landweber_script_quick_run(tmp_path):
    """Seconds, so not marked slow: the identity-network stages equal Landweber steps, the noiseless consistent
    simulation only improves, and the committed aSeqDIP curve is read per stage."""
    import aseq_dip_landweber

    aseq_dip_landweber.main(["--quick", "--out", str(tmp_path)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    curves = m["landweber"]
    # with the simulating (birdcage) maps the last variant is the one before it, and is not run twice
    assert [label for label, _ in aseq_dip_landweber.VARIANTS[:3]] == list(curves)
    for rec in curves.values():
        assert len(rec["curve"]) == 300 and rec["dc_minus_landweber_max"] < 1e-5
    consistent = np.asarray(curves["no noise, on the reconstruction grid"]["curve"])
    assert np.all(np.diff(consistent) > -1e-3)  # error non-increasing for y = A x (eigenvalues of I − AᴴA in [0, 1])
    assert len(m["aseq_dip"]["curve_per_stage"]) == 300
    with pytest.raises(SystemExit):  # data that differ from the committed run's: refuses to overlay its curve
        aseq_dip_landweber.main(["--quick", "--coils", "4", "--out", str(tmp_path / "other")])
