"""Bad input to every data command: one line naming the input and the problem, exit 2, nothing left.

Each case runs `hsijax.cli.main` in-process on small files. After each, the case's output folder
must look exactly as before (no --out / --output / --workdir / --data-dir target, no temporary
``.name.*`` sibling) and stderr must hold one line without a traceback.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hsijax_testing.writers import write_mat_v5

from hsijax import create_model, save_model
from hsijax.cli import main

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
rng = np.random.default_rng(0)
CUBE = rng.uniform(0, 1000, size=(6, 5, 12)).astype(np.float32)  # (H, W, b)
LABELS = np.tile(np.arange(1, 4, dtype=np.uint8), 10).reshape(6, 5)  # 3 classes, 10 pixels each


def write_inputs(folder: Path) -> None:
    """Every bad input file, each named for what is wrong with it, plus a few good ones."""
    folder.mkdir()
    np.save(folder / "cube.npy", CUBE)
    np.save(folder / "gt.npy", LABELS)
    scipy.io.savemat(folder / "good.mat", {"cube": CUBE})
    (folder / "a_directory.npy").mkdir()
    (folder / "empty.npy").write_bytes(b"")
    (folder / "truncated.npy").write_bytes((folder / "cube.npy").read_bytes()[:300])
    (folder / "truncated.mat").write_bytes((folder / "good.mat").read_bytes()[:300])
    (folder / "text.mat").write_text("this is not a MATLAB file\n" * 20)
    (folder / "text.npy").write_text("this is not a NumPy file\n" * 20)
    np.save(folder / "locked.npy", CUBE)
    (folder / "locked.npy").chmod(0)
    np.save(folder / "one_d.npy", np.ones(12, np.float32))
    np.save(folder / "four_d.npy", np.ones((2, 6, 5, 12), np.float32))
    np.save(folder / "zero_bands.npy", np.ones((6, 5, 0), np.float32))
    np.save(folder / "many_bands.npy", np.random.default_rng(0).random((6, 5, 600), np.float32))
    np.save(folder / "nan.npy", np.where(CUBE > 900, np.nan, CUBE))
    np.save(folder / "inf.npy", np.where(CUBE > 900, np.inf, CUBE))
    np.save(folder / "float64_huge.npy", CUBE.astype(np.float64) * 1e300)  # beyond float32: inf
    # int64 values near 2**40 that differ by < 1000: float32 (24-bit mantissa) rounds them all alike
    np.save(folder / "int64_coarse.npy", (CUBE.astype(np.int64) + 2**40))
    np.save(folder / "gt_shape.npy", LABELS[:3])
    np.save(folder / "gt_negative.npy", -LABELS.astype(np.int16))
    np.save(folder / "gt_huge.npy", LABELS.astype(np.int64) * 2**33)  # beyond int32: would wrap
    np.save(folder / "gt_fraction.npy", LABELS / 2)
    np.save(folder / "gt_unlabelled.npy", np.zeros_like(LABELS))
    np.save(folder / "gt_one_class.npy", np.ones_like(LABELS))
    single = LABELS.copy()
    single[single == 3] = 1
    single[0, 0] = 3  # class 3 has one pixel: none left to test on
    np.save(folder / "gt_single_pixel.npy", single)
    np.savetxt(folder / "wavelengths_short.txt", np.linspace(400, 900, 5))
    np.savetxt(folder / "wavelengths_negative.txt", np.linspace(-100, 900, 12))
    (folder / "a_file").write_text("not a folder\n")
    ksc = DATASETS / "ksc" / "dummy_data"
    shutil.copytree(ksc, folder / "ksc_truncated")
    cube_mat = folder / "ksc_truncated" / "KSC.mat"
    cube_mat.write_bytes(cube_mat.read_bytes()[:200])
    shutil.copytree(ksc, folder / "ksc_label_14")
    write_mat_v5(folder / "ksc_label_14" / "KSC_gt.mat", {"KSC_gt": np.full((6, 5), 14, np.uint8)})
    checkpoint = save_model(create_model(code_width=4, widths=(4,)), folder / "checkpoint")
    # A checkpoint whose model_config is of another model than its parameters
    save_model(create_model(code_width=4, widths=(4,)), folder / "mismatched")
    shutil.rmtree(folder / "mismatched" / "model_config")
    shutil.copytree(checkpoint / "model_config", folder / "mismatched" / "model_config")
    config = folder / "mismatched" / "model_config" / "metadata"
    config.write_text(config.read_text().replace('"code_width": 4', '"code_width": 8'))
    save_model(create_model(code_width=4, widths=(4,)), folder / "no_state")
    shutil.rmtree(folder / "no_state" / "state")
    (folder / "no_state" / "state").mkdir()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad") / "in"
    write_inputs(folder)
    yield folder
    (folder / "locked.npy").chmod(0o644)


def run(argv: list[str]) -> int:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse errors
        code = exit.code
    return code


I, O = "{in}", "{out}"
CKPT = ["--checkpoint", "{in}/checkpoint"]
SCENE_ARGS = ["{in}/cube.npy", "--gt", "{in}/gt.npy"]
TINY = ["pretrain", "--config", "tiny", "--no-progress"]

# (id, argv, substrings of the one error line: the input it names and the problem)
CASES = [
    # hsijax import
    ("import-missing", ["import", "{in}/missing.npy"], ["missing.npy", "no such file"]),
    ("import-unreadable", ["import", "{in}/locked.npy"], ["locked.npy", "permission denied"]),
    ("import-directory", ["import", "{in}/a_directory.npy"], ["a_directory.npy", "not a file"]),
    ("import-empty", ["import", "{in}/empty.npy"], ["empty.npy", "the file is empty"]),
    ("import-truncated-npy", ["import", "{in}/truncated.npy"], ["truncated.npy", "the .npy file is truncated"]),
    ("import-truncated-mat", ["import", "{in}/truncated.mat"], ["truncated.mat", "not a readable MATLAB file"]),
    ("import-text-as-mat", ["import", "{in}/text.mat"], ["text.mat", "not a readable MATLAB file"]),
    ("import-text-as-npy", ["import", "{in}/text.npy"], ["text.npy", "not a .npy file"]),
    ("import-wrong-key", ["import", "{in}/good.mat", "--key", "nope"], ["good.mat", "no numeric variable 'nope'"]),
    ("import-1d", ["import", "{in}/one_d.npy"], ["one_d.npy", "expected a 3-D cube", "(12,)"]),
    ("import-4d", ["import", "{in}/four_d.npy"], ["four_d.npy", "expected a 3-D cube", "(2, 6, 5, 12)"]),
    ("import-zero-bands", ["import", "{in}/zero_bands.npy"], ["zero_bands.npy", "zero-size dimension"]),
    ("import-nan", ["import", "{in}/nan.npy"], ["nan.npy", "NaN or infinite"]),
    ("import-inf", ["import", "{in}/inf.npy"], ["inf.npy", "NaN or infinite"]),
    ("import-float32-overflow", ["import", "{in}/float64_huge.npy"], ["float64_huge.npy", "float32"]),
    ("import-float32-precision", ["import", "{in}/int64_coarse.npy"], ["int64_coarse.npy", "float32"]),
    ("import-gt-shape", ["import", *SCENE_ARGS[:1], "--gt", "{in}/gt_shape.npy"],
     ["gt_shape.npy", "ground truth shape (3, 5) differs from the image's (6, 5)"]),
    ("import-gt-negative", ["import", *SCENE_ARGS[:1], "--gt", "{in}/gt_negative.npy"],
     ["gt_negative.npy", "labels must be >= 0"]),
    ("import-gt-beyond-int32", ["import", *SCENE_ARGS[:1], "--gt", "{in}/gt_huge.npy"],
     ["gt_huge.npy", "out of range"]),
    ("import-gt-fraction", ["import", *SCENE_ARGS[:1], "--gt", "{in}/gt_fraction.npy"],
     ["gt_fraction.npy", "whole numbers"]),
    ("import-wavelengths-count", ["import", *SCENE_ARGS[:1], "--wavelengths", "{in}/wavelengths_short.txt"],
     ["wavelengths_short.txt", "5 wavelengths for 12 bands"]),
    ("import-wavelengths-negative", ["import", *SCENE_ARGS[:1], "--wavelengths", "{in}/wavelengths_negative.txt"],
     ["wavelengths_negative.txt", "positive"]),
    ("import-bad-name", ["import", *SCENE_ARGS[:1], "--name", "My Scene"], ["'My Scene'", "lowercase"]),
    ("import-bad-layout", ["import", *SCENE_ARGS[:1], "--layout", "diagonal"], ["--layout", "invalid choice"]),
    ("import-data-dir-under-a-file", ["import", *SCENE_ARGS[:1], "--data-dir", "{out}/a_file/data"],
     ["a_file", "not a directory"]),
    # hsijax prepare
    ("prepare-unknown-scene", ["prepare", "nope"], ["SCENE", "invalid choice: 'nope'"]),
    ("prepare-manual-dir-missing", ["prepare", "ksc", "--manual-dir", "{in}/nope"],
     ["nope", "the manual directory does not exist"]),
    ("prepare-manual-dir-is-a-file", ["prepare", "ksc", "--manual-dir", "{in}/a_file"],
     ["a_file", "not a directory"]),
    ("prepare-truncated-mat", ["prepare", "ksc", "--manual-dir", "{in}/ksc_truncated"],
     ["KSC.mat", "not a readable MATLAB file"]),
    ("prepare-label-out-of-range", ["prepare", "ksc", "--manual-dir", "{in}/ksc_label_14"],
     ["KSC_gt.mat", "label 14 is out of range for 13 classes"]),
    ("prepare-data-dir-under-a-file", ["prepare", "ksc", "--manual-dir", "{in}/ksc_truncated",
                                       "--data-dir", "{out}/a_file/data"], ["a_file", "not a directory"]),
    # hsijax pretrain
    ("pretrain-mistyped-field", [*TINY, "--config.train.stepz=3"], ["unknown config field 'stepz'"]),
    ("pretrain-wrong-type", [*TINY, "--config.train.steps=many"], ["steps", "many"]),
    ("pretrain-zero-steps", [*TINY, "--config.train.steps=0"], ["config.train.steps", "at least 1"]),
    ("pretrain-missing-config", ["pretrain", "--config", "{in}/nope.py"], ["nope.py", "no such config file"]),
    ("pretrain-unknown-scene", [*TINY, "--config.data.scenes=nope", "--config.data.data_dir={out}/data"],
     ["'nope'", "not catalogued"]),
    ("pretrain-workdir-under-a-file", [*TINY, "--workdir", "{out}/a_file/work"], ["a_file", "not a directory"]),
    # resuming a workdir of another model: tests/test_pretrain.py::test_a_workdir_of_another_model_is_refused
    # hsijax classify
    ("classify-fraction-zero", ["classify", *SCENE_ARGS, "--fraction", "0"], ["--fraction", "between 0 and 1"]),
    ("classify-fraction-negative", ["classify", *SCENE_ARGS, "--fraction", "-0.5"], ["--fraction", "between 0 and 1"]),
    ("classify-fraction-above-one", ["classify", *SCENE_ARGS, "--fraction", "1.5"], ["--fraction", "between 0 and 1"]),
    ("classify-fraction-not-a-number", ["classify", *SCENE_ARGS, "--fraction", "half"], ["--fraction", "half"]),
    ("classify-unknown-method", ["classify", *SCENE_ARGS, "--methods", "svm,knn"], ["--methods", "svm,knn"]),
    ("classify-pretrained-without-checkpoint", ["classify", *SCENE_ARGS, "--methods", "pretrained"],
     ["--methods pretrained", "--checkpoint"]),
    ("classify-spatial-pretrained-without-checkpoint", ["classify", *SCENE_ARGS, "--methods", "svm,spatial_pretrained"],
     ["--methods spatial_pretrained", "--checkpoint"]),
    ("classify-even-window", ["classify", *SCENE_ARGS, "--windows", "3,4"], ["--windows", "3,4", "odd"]),
    ("classify-window-not-a-number", ["classify", *SCENE_ARGS, "--windows", "big"], ["--windows", "big"]),
    ("classify-no-gt", ["classify", "{in}/cube.npy"], ["cube.npy", "no labelled pixels"]),
    ("classify-unlabelled-gt", ["classify", "{in}/cube.npy", "--gt", "{in}/gt_unlabelled.npy"],
     ["gt_unlabelled.npy", "no labelled pixels"]),
    ("classify-one-class", ["classify", "{in}/cube.npy", "--gt", "{in}/gt_one_class.npy"],
     ["gt_one_class.npy", "2 classes"]),
    ("classify-single-pixel-class", ["classify", "{in}/cube.npy", "--gt", "{in}/gt_single_pixel.npy"],
     ["gt_single_pixel.npy", "single pixel"]),
    ("classify-file-and-dataset", ["classify", *SCENE_ARGS, "--dataset", "x"], ["--dataset", "FILE"]),
    ("classify-unknown-dataset", ["classify", "--dataset", "nope", "--data-dir", "{out}/data"],
     ["'nope'", "not catalogued"]),
    ("classify-missing-checkpoint", ["classify", *SCENE_ARGS, "--checkpoint", "{in}/nope"],
     ["nope", "no checkpoint found"]),
    ("classify-mismatched-checkpoint", ["classify", *SCENE_ARGS, "--checkpoint", "{in}/mismatched"],
     ["mismatched", "do not match"]),
    ("classify-out-under-a-file", ["classify", *SCENE_ARGS, "--out", "{out}/a_file/result"],
     ["a_file", "not a directory"]),
    # hsijax reconstruct
    ("reconstruct-missing-checkpoint", ["reconstruct", "--checkpoint", "{in}/nope", *SCENE_ARGS],
     ["nope", "no checkpoint found"]),
    ("reconstruct-checkpoint-is-a-file", ["reconstruct", "--checkpoint", "{in}/a_file", *SCENE_ARGS],
     ["a_file", "no checkpoint found"]),
    ("reconstruct-checkpoint-without-state", ["reconstruct", "--checkpoint", "{in}/no_state", *SCENE_ARGS],
     ["no_state", "checkpoint"]),
    ("reconstruct-too-many-bands", ["reconstruct", *CKPT, "{in}/many_bands.npy"],
     ["many_bands.npy", "600", "largest bucket (512)"]),
    ("reconstruct-nan", ["reconstruct", *CKPT, "{in}/nan.npy"], ["nan.npy", "NaN or infinite"]),
    ("reconstruct-wavelengths-count", ["reconstruct", *CKPT, *SCENE_ARGS, "--wavelengths",
                                       "{in}/wavelengths_short.txt"], ["wavelengths_short.txt", "5 wavelengths"]),
    ("reconstruct-out-under-a-file", ["reconstruct", *CKPT, *SCENE_ARGS, "--out", "{out}/a_file/result"],
     ["a_file", "not a directory"]),
    # hsijax encode
    ("encode-zero-bands", ["encode", *CKPT, "{in}/zero_bands.npy"], ["zero_bands.npy", "zero-size dimension"]),
    ("encode-too-many-bands", ["encode", *CKPT, "{in}/many_bands.npy"], ["many_bands.npy", "largest bucket"]),
    ("encode-inf", ["encode", *CKPT, "{in}/inf.npy"], ["inf.npy", "NaN or infinite"]),
    ("encode-mismatched-checkpoint", ["encode", "--checkpoint", "{in}/mismatched", *SCENE_ARGS],
     ["mismatched", "do not match"]),
    ("encode-output-is-a-directory", ["encode", *CKPT, *SCENE_ARGS, "--output", "{out}/a_folder"],
     ["a_folder", "is a directory"]),
    ("encode-output-under-a-file", ["encode", *CKPT, *SCENE_ARGS, "--output", "{out}/a_file/codes.npy"],
     ["a_file", "not a directory"]),
]

OUTPUT_OPTIONS = {"import": "--data-dir", "prepare": "--data-dir", "classify": "--out",
                  "reconstruct": "--out", "encode": "--output", "pretrain": "--workdir"}
DEFAULT_TARGETS = {"--data-dir": "data", "--out": "result", "--output": "codes.npy", "--workdir": "work"}


def full_argv(argv: list[str], inputs: Path, out: Path) -> list[str]:
    """The case's argv with its paths filled in, and the command's output option if it has none."""
    argv = [a.replace("{in}", str(inputs)).replace("{out}", str(out)) for a in argv]
    command = argv[0]
    option = OUTPUT_OPTIONS[command]
    if option not in argv:
        argv += [option, str(out / DEFAULT_TARGETS[option])]
    if command == "import" and "--name" not in argv:
        argv += ["--name", "scene"]
    return argv


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_naming_it_and_leaves_nothing(case, inputs, tmp_path, capsys, monkeypatch):
    name, argv, expected = case
    if "--manual-dir" in argv:  # the dummy files are spoilt in content: record their own hashes
        from hsijax.data.builders import PublishedSceneBuilder
        from hsijax.data.provenance import sha256_of

        manual = Path(argv[argv.index("--manual-dir") + 1].replace("{in}", str(inputs)))
        hashes = {p.name: sha256_of(p) for p in manual.iterdir()} if manual.is_dir() else {}
        monkeypatch.setattr(PublishedSceneBuilder, "recorded_hashes", classmethod(lambda cls: hashes))
    if name == "import-unreadable" and os.access(inputs / "locked.npy", os.R_OK):
        pytest.skip("running as root: chmod 000 does not make the file unreadable")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_file").write_text("a file, not a folder\n")
    (out / "a_folder").mkdir()
    before = snapshot(out)
    capsys.readouterr()
    code = run(full_argv(argv, inputs, out))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"hsijax {argv[0]}: error: "), err
    for text in expected:
        assert text.replace("{in}", str(inputs)) in lines[0], (text, lines[0])
    assert snapshot(out) == before  # no output, no temporary sibling, the inputs untouched


def test_there_are_enough_cases():
    assert len(CASES) >= 30
    assert {argv[0] for _, argv, _ in CASES} == set(OUTPUT_OPTIONS)
