import math

import pandas as pd
import pytest

from hnerv_lib.eval.verdict import over_runs, t_interval
from hnerv_lib.studies.seeds import over_seeds, seed_configs, summary_table
from hnerv_lib.train.config import get_train_preset


def test_seed_configs_are_distinct_runs_starting_at_the_configs_seed():
    cfg = get_train_preset("hnerv-tiny")
    cfgs = seed_configs(cfg, 3)
    assert [c.seed for c in cfgs] == [0, 1, 2] and cfgs[0] == cfg
    assert len({c.run_id() for c in cfgs}) == 3
    with pytest.raises(ValueError, match="seeds must be >= 1, got 0"):
        seed_configs(cfg, 0)


def test_over_seeds_means_and_t_intervals_and_keeps_a_baselines_own_interval():
    rows = pd.DataFrame([
        {"protocol": "net", "seed": 0, "model": "m", "params": 10, "psnr": 20.0, "psnr_lo": 19.0, "psnr_hi": 21.0},
        {"protocol": "net", "seed": 1, "model": "m", "params": 10, "psnr": 22.0, "psnr_lo": 21.0, "psnr_hi": 23.0},
        {"protocol": "net", "seed": 2, "model": "m", "params": 10, "psnr": 21.0, "psnr_lo": 20.0, "psnr_hi": 22.0},
        *[{"protocol": "copy", "seed": i, "model": "none", "params": 0, "psnr": 18.0, "psnr_lo": 17.5, "psnr_hi": 18.5}
          for i in range(3)],
    ])
    out = over_seeds(rows, ["protocol"]).set_index("protocol")
    mean, half = t_interval([20.0, 22.0, 21.0])
    assert out.loc["net", "psnr"] == pytest.approx(21.0) and half == pytest.approx(4.303 * 1 / math.sqrt(3), rel=1e-3)
    assert (out.loc["net", "psnr_lo"], out.loc["net", "psnr_hi"]) == pytest.approx((21 - half, 21 + half))
    assert out.loc["net", "interval"] == "t over 3 seeds" and out.loc["net", "seeds"] == 3
    assert (out.loc["copy", "psnr_lo"], out.loc["copy", "psnr_hi"]) == (17.5, 18.5)  # no seed dependence
    assert out.loc["copy", "interval"].startswith("block bootstrap") and out.loc["net", "model"] == "m"
    assert "params_lo" not in out and out.loc["net", "params"] == 10 and float(out.loc["net", "params"]).is_integer()
    assert str(over_seeds(rows, ["protocol"])["params"].dtype).startswith("int")  # a constant keeps its type


def test_one_seed_keeps_the_runs_own_interval_and_says_so():
    rows = pd.DataFrame([{"design": "a", "seed": 0, "psnr": 20.0, "psnr_lo": 19.0, "psnr_hi": 21.0}])
    out = over_seeds(rows, ["design"]).iloc[0]
    assert (out["psnr"], out["psnr_lo"], out["psnr_hi"]) == (20.0, 19.0, 21.0)
    assert out["interval"] == "block bootstrap over frames (1 seed)"
    with pytest.raises(ValueError, match="needs a 'seed' column"):
        over_seeds(rows.drop(columns="seed"), ["design"])


def test_summary_table_and_over_runs():
    table = summary_table([{"psnr_train": 20.0}, {"psnr_train": 22.0}], ["psnr_train", "absent"])
    assert table["metric"].tolist() == ["psnr_train"] and table["mean"].iloc[0] == 21.0
    assert table["interval"].iloc[0] == "t over 2 seeds" and table["per seed"].iloc[0] == "20, 22"
    assert not over_runs([1.0]).has_interval and over_runs([1.0, 2.0, 3.0]).has_interval
