"""dipjax dataset: inputs, a run sharded over four (forced) CPU devices against one-image runs, resuming after a
kill, two processes under jax.distributed, and the summary against the per-image files."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from dipjax.data import ImageError, unique_labels
from dipjax.dataset import list_inputs
from dipjax.report import image_metrics
from dipjax.run import RunConfig
from dipjax.tasks import task_config

OPTIONS = ["--task", "denoise", "--size", "32", "--width", "8", "--scales", "2", "--no-progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six 64 × 64 grayscale crops of the camera image as PNG files (and a text file that is not an image)."""
    import imageio.v3 as iio
    import skimage.data

    root = tmp_path_factory.mktemp("inputs")
    camera = skimage.data.camera()
    for i in range(6):
        iio.imwrite(root / f"patch{i}.png", camera[64 * i:64 * i + 64, 100:164])
    (root / "notes.md").write_text("not an image")
    return root


def _cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "dipjax.cli", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, **kwargs)


def _metrics(out, label):
    return json.loads((out / label / "metrics.json").read_text())


def test_inputs_from_folders_globs_and_list_files(folder, tmp_path):
    files = [str(folder / f"patch{i}.png") for i in range(6)]
    assert list_inputs([str(folder)]) == files  # sorted, the .md file left out
    assert list_inputs([str(folder / "patch[12].png")]) == files[1:3]
    listing = tmp_path / "set.txt"
    listing.write_text(f"# two images\n{os.path.relpath(files[4], tmp_path)}\n\ncamera\n")
    assert list_inputs([str(listing), "astronaut"]) == [files[4], "camera", "astronaut"]
    assert unique_labels([files[0], "camera", files[0]]) == ["patch0", "camera", "patch0-2"]
    for bad, message in [(str(tmp_path), "holds no image files"), (str(folder / "*.gif"), "matches no image"),
                         (str(tmp_path / "missing.txt"), "cannot read list file")]:
        with pytest.raises(ImageError, match=message):
            list_inputs([bad])


def test_a_refused_dataset_exits_2_with_one_line_and_leaves_nothing(tmp_path, capsys):
    from dipjax.cli import main

    out = tmp_path / "out"
    for inputs, message in [(["camera", "astronaut"], "mixes grayscale"), ([str(tmp_path / "none.txt")], "list file")]:
        args = [a for spec in inputs for a in ("--inputs", spec)]
        assert main(["dataset", *args, "--task", "denoise", "--size", "64", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0 and not out.exists()


SINGLE_RUNS = """
import json, sys
from dipjax.cli import main
from dipjax.dataset import list_inputs
from dipjax.run import RunConfig
from dipjax.tasks import task_config
from dipjax.report import image_metrics
import jax
assert len(jax.devices()) == 4
code = main(sys.argv[2:])
psnr = {}
for spec in list_inputs([sys.argv[1]]):
    run = RunConfig(task=task_config("denoise"), method="dip", images=(spec,), size=32, width=8, scales=2,
                    steps=10)
    images, labels = run.load_images()
    problems = run.simulate(images)
    result = run.execute(run.build_method(images[0].shape), problems)
    psnr[labels[0]] = [image_metrics(result.x_final, problems[0])["psnr"], float(result.summary["psnr_peak_oracle"])]
print(json.dumps({"code": code, "single": psnr}))
"""


def test_a_dataset_sharded_over_four_devices_matches_one_image_runs(folder, tmp_path):
    """6 images on 4 forced CPU devices (groups of 4 and 2, each one shard_map program) against six one-image runs
    in the same process (same keys, one device); the summary's means are the means of the per-image files."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", SINGLE_RUNS, str(folder), "dataset", "--inputs", str(folder),
                           "--out", str(out), "--steps", "10", *OPTIONS],
                          env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 6
    devices = summary["throughput"]["processes"][0]["devices"]
    assert [d["images"] for d in devices] == [2, 2, 1, 1]  # groups of 4 and 2 over the mesh
    for label, (final, peak) in report["single"].items():
        m = _metrics(out, label)
        # the same keys and degradation as a one-image run; the SPMD program rounds differently
        assert m["psnr_final"] == pytest.approx(final, abs=1e-3)
        assert m["psnr_peak_oracle"] == pytest.approx(peak, abs=1e-3)
    rows = [_metrics(out, f"patch{i}") for i in range(6)]
    for key in ("psnr_input", "psnr_final", "ssim_final", "psnr_peak_oracle"):
        values = [r[key] for r in rows]
        assert summary["metrics"][key]["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert summary["metrics"][key]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    csv_rows = (out / "summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("image,") and len(csv_rows) == 1 + 6 + 2
    table = (out / "summary.md").read_text()
    assert "| **mean ± std** |" in table and table.count("| patch") == 6
    assert (out / "psnr_band.png").stat().st_size > 1000


def test_a_killed_dataset_run_resumes_by_image(folder, tmp_path):
    """SIGKILL once the third image's folder appears; the same command finishes the rest and leaves the first
    three untouched."""
    out = tmp_path / "out"
    command = ["dataset", "--inputs", str(folder), "--out", str(out), "--steps", "200", "--checkpoint-every", "50",
               *OPTIONS]
    proc = subprocess.Popen([sys.executable, "-m", "dipjax.cli", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "patch2").is_dir():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:] if proc.stderr else ""
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name.startswith("patch"))
    assert finished[:3] == ["patch0", "patch1", "patch2"] and len(finished) < 6 and not (out / "summary.json").exists()
    before = {str(f): f.stat().st_mtime_ns for label in finished for f in (out / label).iterdir()}
    done = _cli(*command, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"6 images ({6 - len(finished)} run now, {len(finished)} reused)" in done.stdout
    assert {str(f): f.stat().st_mtime_ns for label in finished for f in (out / label).iterdir()} == before
    assert all((out / f"patch{i}" / "metrics.json").is_file() for i in range(6))
    assert not any(p.name.startswith(".partial") for p in out.iterdir()) and not (out / ".checkpoints").exists()
    # another configuration in the same folder is refused (exit 2, one line), not mixed into it
    other = _cli(*command[:-len(OPTIONS)], *OPTIONS, "--seed", "1", timeout=120)
    assert other.returncode == 2 and "another configuration" in other.stderr and "Traceback" not in other.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_under_jax_distributed_split_a_dataset(folder, tmp_path):
    out = tmp_path / "out"
    address = f"localhost:{_free_port()}"
    inputs = [str(folder / f"patch{i}.png") for i in range(4)]
    command = ["dataset", *[a for spec in inputs for a in ("--inputs", spec)], "--out", str(out), "--steps", "10",
               "--coordinator", address, "--num-processes", "2", *OPTIONS]
    procs = [subprocess.Popen([sys.executable, "-m", "dipjax.cli", *command, "--process-id", str(k)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-2000:]
    # process k ran the images k, k + 2 (groups of one per local device); process 0 wrote the one summary
    assert "patch1:" in outputs[1][0] and "patch3:" in outputs[1][0] and "patch1:" not in outputs[0][0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and [p["images_run"] for p in summary["throughput"]["processes"]] == [2, 2]
    # the numbers of a one-image run here (one device, the same program): bit for bit
    run = RunConfig(task=task_config("denoise"), method="dip", images=(inputs[1],), size=32, width=8, scales=2,
                    steps=10)
    images, _ = run.load_images()
    problems = run.simulate(images)
    result = run.execute(run.build_method(images[0].shape), problems)
    assert image_metrics(result.x_final, problems[0])["psnr"] == _metrics(out, "patch1")["psnr_final"]
