"""The one parser (hnerv_lib/utils/parse.py) and every way a value reaches it.

Each bad input of issue 23 is a case here: on b8bf3cd `bf16=no` and `bf16=maybe` turned bf16 on,
`epochs=2.5` passed, `epochs=abc` was a bare TypeError, `split=9_10_10` an int() error and papermill's
91010 reached the notebook.
"""

from __future__ import annotations

import warnings
from typing import Optional

import pytest

from hnerv_lib.report.params import FullFrameParams, from_namespace, load_profile, parse_params
from hnerv_lib.report.runner import ReportRun, main as report_main, run_report
from hnerv_lib.train.cli import main as train_main
from hnerv_lib.train.config import TrainConfig, apply_overrides, get_train_preset
from hnerv_lib.utils.parse import ConfigError, assignments, parse_value

TINY = get_train_preset("hnerv-tiny")


# --- the bad inputs, one by one ---------------------------------------------------------

@pytest.mark.parametrize("raw, precision", [("no", "fp32"), ("NO", "fp32"), ("0", "fp32"), ("yes", "bf16")])
def test_set_bf16_no_means_fp32(raw, precision):
    with pytest.warns(FutureWarning):
        assert apply_overrides(TINY, [f"bf16={raw}"]).precision == precision


@pytest.mark.parametrize("item, message", [
    ("bf16=maybe", r"bf16='maybe' is not a boolean \(true/1/yes/false/0/no\)"),
    ("epochs=2.5", r"epochs='2.5' is not an integer"),
    ("epochs=abc", r"epochs='abc' is not an integer"),
    ("lr=abc", r"lr='abc' is not a finite number"),
    ("lr=nan", r"lr='nan' is not a finite number"),
    ("split=9_10", r"split='9_10' is not a tuple of 3 integers \(got 2\)"),
    ("split=9_x_10", r"split='9_x_10' is not a tuple of 3 integers \(item 1, 'x', is not an integer\)"),
    ("loss=L3", r"loss='L3' is not one of \['L1', 'L2'"),
    ("device=gpu", r"device='gpu' is not a string matching"),
    ("model=nope", r"model='nope' is not one of \['hnerv-tiny'"),
    ("clip_sample=middle", r"clip_sample='middle' is not one of \['center', 'area'\]"),
    ("compile=perhaps", r"compile='perhaps' is not a boolean"),
    ("model.fc_dim=3.5", r"--set model.fc_dim='3.5' is not an integer"),
    ("schedule.warmup=soon", r"--set schedule.warmup='soon' is not a finite number"),
    ("epochs", r"--set expects key=value; got 'epochs'"),
])
def test_set_bad_values_are_one_error_naming_key_value_and_rule(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TINY, [item])


@pytest.mark.parametrize("raw", ["9_10_10", "[9, 10, 10]", "9,10,10", "(9, 10, 10)", " 9_10_10 "])
def test_split_spellings(raw):
    assert apply_overrides(TINY, [f"split={raw}"]).split == (9, 10, 10)
    assert from_namespace(FullFrameParams, {"split": raw}).split == (9, 10, 10)  # papermill -r split 9_10_10
    assert from_namespace(FullFrameParams, {"split": [9, 10, 10]}).split == (9, 10, 10)  # papermill -y


def test_papermill_p_split_arrives_as_an_int_and_says_to_pass_it_raw():
    with pytest.raises(ConfigError, match=r"split=91010 is not a tuple of 3 integers; papermill -p .* raw"):
        from_namespace(FullFrameParams, {"split": 91010})


def test_yaml_profile_keeps_an_unquoted_9_10_10(tmp_path):
    (tmp_path / "p.yaml").write_text("split: 9_10_10\nevery: 2\ncrop: null\nlr: 1e-3\n")
    assert load_profile(str(tmp_path / "p.yaml")) == {"split": [9, 10, 10], "every": 2, "crop": None, "lr": 0.001}


@pytest.mark.parametrize("text, message", [("every: 2.5\n", r"every=2.5 is not an integer"),
                                           ("predict_clip: maybe\n", r"predict_clip='maybe' is not a boolean"),
                                           ("epochz: 3\n", r"unknown parameter\(s\) \['epochz'\]")])
def test_yaml_profile_bad_values_name_file_key_and_value(tmp_path, text, message):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_profile(str(tmp_path / "p.yaml"))
    assert "p.yaml" in str(err.value)


# --- every entry point refuses before writing anything ------------------------------------------

def test_train_cli_prints_one_line_and_writes_nothing(tmp_path, capsys):
    assert train_main(["--preset", "hnerv-tiny", "--set", "epochs=2.5", "--run-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "python -m hnerv_lib.train: --set epochs='2.5' is not an integer" and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("param", ["every=2.5", "split=9_10", "predict_clip=maybe", "full_model=nope", "epochz=3"])
def test_report_refuses_a_bad_p_before_writing(tmp_path, capsys, param):
    argv = ["--profile", "smoke", "--only", "00,01", "-p", param, "--reports-root", str(tmp_path / "reports")]
    assert report_main(argv) == 2  # a user error: one line, exit 2 (hnerv_lib/utils/cli.py)
    assert param.split("=")[0] in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_report_api_overrides_are_parsed_too(tmp_path):
    with pytest.raises(ConfigError, match="seed='x' is not an integer"):
        run_report(ReportRun(profile="smoke", reports_root=tmp_path, overrides={"seed": "x"}))
    assert not any(tmp_path.iterdir())


def test_p_strings_become_typed_plain_values():
    parsed = parse_params(assignments(["split=9_10_10", "predict_clip=no", "lr=2e-3", "teacher_pretrained=null",
                                       "size=[32, 64]", "losses=[L2, Fusion6]"], "-p"))
    assert parsed == {"split": [9, 10, 10], "predict_clip": False, "lr": 0.002, "teacher_pretrained": None,
                      "size": [32, 64], "losses": ["L2", "Fusion6"]}


# --- the rules themselves -----------------------------------------------------------------------

@pytest.mark.parametrize("tp, value, expected", [
    (bool, "TRUE", True), (bool, "No", False), (bool, 1, True), (bool, False, False),
    (int, "-3", -3), (int, 7, 7), (float, "1e-3", 0.001), (float, 2, 2.0),
    (Optional[int], "null", None), (Optional[int], "", None), (Optional[str], "openai", "openai"),
    (tuple[int, int], [32, 64], (32, 64)), (list[float], "0.5, 1", [0.5, 1.0]), (list[str], "[a, b c]", ["a", "b c"]),
    (bool | str, "auto", "auto"), (bool | str, "false", False), (dict, '{"fc_dim": 8}', {"fc_dim": 8}),
])
def test_rules_accept(tp, value, expected):
    got = parse_value("k", value, tp)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("tp, value", [
    (bool, "on"), (bool, 2), (bool, "y"), (int, 2.0), (int, True), (int, "2.5"), (int, "1_000"), (float, True),
    (float, "inf"), (str, 3), (tuple[int, int], [1, 2, 3]), (tuple[int, int], "1"), (list[int], [1, "a"]),
    (Optional[int], "nothing"), (dict, "[1]"),
])
def test_rules_refuse(tp, value):
    with pytest.raises(ConfigError, match=r"^k="):
        parse_value("k", value, tp)


def test_trainconfig_constructor_uses_the_same_parser():
    with pytest.raises(ConfigError, match="TrainConfig: epochs=2.5 is not an integer"):
        TrainConfig(epochs=2.5)
    assert TrainConfig(split="9_10_10", crop=[640, 1280]).split == (9, 10, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainConfig.from_dict(TINY.to_dict()) == TINY
