"""Every command line: a user error is one line naming the problem and the value, exit 2; --debug shows the traceback."""

import argparse

import pytest
import torch

from hnerv_lib.compress import main as compress_main
from hnerv_lib.data.video import DataError
from hnerv_lib.studies.tubelets.cli import main as action_main
from hnerv_lib.train.cli import main as train_main
from hnerv_lib.utils.cli import DEBUG_ENV, guarded, one_line


class _Planted:
    """Unpickling this creates ``marker``: proof that a refused checkpoint's payload never ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_error_line(capsys) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    return lines[0]


def _raise(err):
    def body():
        raise err
    return body


def test_guarded_exit_codes_and_debug(capsys, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert guarded("prog", _raise(ValueError("bad value 3\n  (details)"))) == 2
    assert _one_error_line(capsys) == "prog: bad value 3 (details)"
    assert guarded("prog", _raise(RuntimeError("diverged")), failures=(RuntimeError,)) == 1
    assert _one_error_line(capsys) == "prog: FAILED: diverged"
    with pytest.raises(KeyError):  # not a user error: a bug keeps its traceback
        guarded("prog", _raise(KeyError("x")))
    with pytest.raises(ValueError, match="bad"):
        guarded("prog", _raise(ValueError("bad")), argparse.Namespace(debug=True))
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="bad"):
        guarded("prog", _raise(ValueError("bad")))
    assert one_line(ValueError("")) == "ValueError"


@pytest.mark.parametrize("damage, match", [
    (lambda p, marker: p.write_bytes(b"PK\x03\x04" + b"\0" * 40),
     r"cannot read checkpoint .*model\.pt \(truncated or not a checkpoint\): RuntimeError"),
    (lambda p, marker: torch.save({"format": 1, "model": _Planted(marker)}, p),
     r"refused checkpoint .*model\.pt: it holds pickled Python objects"),
])
def test_action_cli_bad_checkpoint_is_one_line_exit_2(tmp_path, capsys, monkeypatch, damage, match):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    ckpt, marker = tmp_path / "model.pt", tmp_path / "payload-ran"
    damage(ckpt, marker)
    assert action_main(["infer", "--checkpoint", str(ckpt), "--data_root", str(tmp_path / "clips")]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("python -m hnerv_lib.action: ") and __import__("re").search(match, line), line
    assert not marker.exists()
    with pytest.raises(ValueError, match=match):  # --debug: the traceback instead
        action_main(["infer", "--checkpoint", str(ckpt), "--data_root", str(tmp_path / "clips"), "--debug"])


def test_train_cli_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """A missing video (found by the validation) and a corrupt frame cache (found by the trainer): one line each."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    where = ["--run-root", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    assert train_main(["--preset", "hnerv-tiny", "--set", f"video={tmp_path / 'nope.mp4'}", *where]) == 2
    assert "nope.mp4" in _one_error_line(capsys) and not (tmp_path / "runs").exists()

    argv = ["--preset", "hnerv-tiny", "--set", "epochs=1", *where]
    assert train_main(argv) == 0
    capsys.readouterr()
    for pt in (tmp_path / "cache" / "frames").glob("*.pt"):
        pt.write_bytes(b"not a tensor")
    assert train_main([*argv, "--set", "seed=1"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("python -m hnerv_lib.train: corrupt frame cache ") and "delete it" in line
    with pytest.raises(DataError, match="corrupt frame cache"):
        train_main([*argv, "--set", "seed=1", "--debug"])


def test_compress_cli_missing_file_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert compress_main(["info", str(tmp_path / "nope.hnerv")]) == 2
    assert "nope.hnerv does not exist" in _one_error_line(capsys)
