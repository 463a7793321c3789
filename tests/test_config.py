"""Config validation (DESIGN §Config): every bad input is one InputError naming field, value and rule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

import sspsim
from sspsim.config import apply_overrides

from tests.strategies import budget, materialize, sim_configs

DESIGN_TOML = """
[run]
seed = 0
clocks = 200                 # iterations per worker
# trace = "summary"          # skip trace.csv (planning runs at 10^4 workers)
# audit = true               # also log read sets / updates for replay checks (small runs)

[problem]
kind = "logistic"            # logistic | least_squares | nonconvex | mlp | timit_like | none (timing only)
dim = 20
samples = 4000
batch_size = 16

[optimizer]
lr = 0.5
schedule = "inv_sqrt"        # constant | inv_sqrt  (eta_t = lr / sqrt(t))

[consistency]
staleness = 3                # 0 = BSP; "inf" = ASP
read_policy = "eager"        # eager | lazy | push

[workers]
count = 8
speed = { kind = "exponential", mean = 1.0 }
# speed = { kind = "trace", file = "times.csv" }   # CSV, one row per worker, one column per clock, seconds
stragglers = [ { worker = 0, slowdown = 4.0 } ]

[network]
latency = 0.0                # seconds per message
bandwidth = "inf"            # bytes per second
"""

TRACE_FILES = {
    "t2x3.csv": "1,2,3\n4,5,6\n",
    "bad.csv": "1,2\n4,x\n",
    "ragged.csv": "1,2,3\n4,5\n",
    "negative.csv": "1,2\n-1,2\n",
}


def _trace(file: str, count: int, clocks: int) -> dict[str, Any]:
    return {"workers": {"count": count, "speed": {"kind": "trace", "file": file}}, "run": {"clocks": clocks}}


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown key, with suggestion", {"consistency": {"stalenes": 3}},
     r"^consistency\.stalenes = 3: unknown key; did you mean 'staleness'\?$"),
    ("unknown section", {"netwrk": {"latency": 0}}, r"^netwrk = .*unknown section; did you mean 'network'\?$"),
    ("section not a table", {"run": 3}, r"^run = 3: must be a table"),
    ("wrong type", {"workers": {"count": "8"}}, r"^workers\.count = '8': must be an integer$"),
    ("bool is not an int", {"run": {"clocks": True}}, r"^run\.clocks = True: must be an integer$"),
    ("negative staleness", {"consistency": {"staleness": -1}}, r"^consistency\.staleness = -1: must be an integer >= 0"),
    ("staleness abc", {"consistency": {"staleness": "abc"}}, r"^consistency\.staleness = 'abc': .*\"inf\" \(ASP\)"),
    ("lazy with inf", {"consistency": {"staleness": "inf", "read_policy": "lazy"}},
     r"^consistency\.read_policy = 'lazy': with staleness = \"inf\""),
    ("straggler out of range", {"workers": {"count": 2, "stragglers": [{"worker": 2, "slowdown": 2.0}]}},
     r"^workers\.stragglers\[0\]\.worker = 2: must be < workers\.count = 2$"),
    ("duplicate straggler",
     {"workers": {"count": 3, "stragglers": [{"worker": 1, "slowdown": 2.0}, {"worker": 1, "slowdown": 3.0}]}},
     r"^workers\.stragglers\[1\]\.worker = 1: appears twice$"),
    ("straggler missing slowdown", {"workers": {"stragglers": [{"worker": 0}]}},
     r"^workers\.stragglers\[0\]\.slowdown = <missing>: required$"),
    ("transient probability > 1", {"workers": {"transient": {"probability": 1.5, "factor": 2.0, "duration": 1}}},
     r"^workers\.transient\.probability = 1\.5: must be <= 1$"),
    ("unknown speed kind", {"workers": {"speed": {"kind": "gamma", "mean": 1}}},
     r"^workers\.speed\.kind = 'gamma': must be one of constant, empirical, exponential"),
    ("missing speed key", {"workers": {"speed": {"kind": "lognormal", "mean": 1}}},
     r"^workers\.speed\.sigma = <missing>: required for kind 'lognormal'$"),
    ("speed key of another kind", {"workers": {"speed": {"kind": "constant", "value": 1, "mean": 2}}},
     r"^workers\.speed\.mean = 2: unknown key for kind 'constant'"),
    ("uniform high < low", {"workers": {"speed": {"kind": "uniform", "low": 2, "high": 1}}},
     r"^workers\.speed\.high = 1\.0: must be >= low = 2\.0$"),
    ("trace: wrong number of rows", _trace("t2x3.csv", 3, 3),
     r"^workers\.speed\.file = .*: has 2 rows but workers\.count = 3"),
    ("trace: too few columns", _trace("t2x3.csv", 2, 4),
     r"^workers\.speed\.file = .*: has 3 columns but run\.clocks = 4"),
    ("trace: non-numeric cell", _trace("bad.csv", 2, 2), r"^bad\.csv:2 = '4,x': every cell must be a number"),
    ("trace: ragged rows", _trace("ragged.csv", 2, 2), r"^ragged\.csv:2 = '2 columns': every row must have 3 columns"),
    ("trace: negative time", _trace("negative.csv", 2, 2), r"^negative\.csv:2 = '-1,2': times must be finite and >= 0$"),
    ("trace: missing file", _trace("nope.csv", 2, 2), r"^workers\.speed\.file = .*: file not found$"),
    ("batch engine with math", {"run": {"engine": "batch"}, "problem": {"kind": "logistic"}},
     r"^run\.engine = 'batch': the batch schedule has no math"),
    ("batch engine with apply time", {"run": {"engine": "batch"}, "problem": {"kind": "none"}, "network": {"apply_time": 0.1}},
     r"^run\.engine = 'batch': .*apply_time = 0"),
    ("momentum >= 1", {"optimizer": {"momentum": 1.0}}, r"^optimizer\.momentum = 1\.0: must be < 1$"),
    ("logistic noise >= 0.5", {"problem": {"kind": "logistic", "noise": 0.5}},
     r"^problem\.noise = 0\.5: is the label-flip probability of logistic: must be < 0\.5$"),
    ("bandwidth 0", {"network": {"bandwidth": 0}}, r"^network\.bandwidth = 0: must be > 0"),
    ("latency nan", {"network": {"latency": math.nan}}, r"^network\.latency = nan: must be a number"),
    ("mlp input width", {"problem": {"kind": "mlp", "dim": 20}}, r"^problem\.dim = 20: mlp trains on 8x8 digit images"),
    ("unknown problem", {"problem": {"kind": "svm"}}, r"^problem\.kind = 'svm': must be one of logistic"),
]


@pytest.mark.parametrize("raw,match", [pytest.param(raw, match, id=name) for name, raw, match in BAD_CONFIGS])
def test_config_rejects(raw: dict[str, Any], match: str, tmp_path: Path) -> None:
    """A bad config raises InputError whose one-line message names the field, the value and the rule."""
    for name, text in TRACE_FILES.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(sspsim.InputError, match=match) as info:
        sspsim.config_from_dict(raw, base_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert info.value.field and info.value.rule
    if info.value.field == "workers.speed.file":
        assert str(info.value.value).endswith(raw["workers"]["speed"]["file"])


def test_long_trace_path_error_names_the_file(tmp_path: Path) -> None:
    """An error about a trace CSV in a deeply nested folder still shows the file's name."""
    deep = tmp_path / ("nested_folder_with_a_long_name" * 3)
    deep.mkdir()
    (deep / "times.csv").write_text("1,2\n")
    with pytest.raises(sspsim.InputError) as info:
        sspsim.config_from_dict(_trace("times.csv", 3, 2), base_dir=deep)
    assert "times.csv" in str(info.value)


@pytest.mark.parametrize("overrides,match", [
    (["consistency.staleness"], r"^--set = 'consistency\.staleness': must look like section\.key=value"),
    (["=3"], r"^--set = '=3': must look like"),
    (["a..b=1"], r"^--set = 'a\.\.b=1': must look like"),
    (["run.seed.x=1"], r"^--set = 'run\.seed\.x=1': run\.seed is not a table$"),
])
def test_overrides_reject_bad_syntax(overrides: list[str], match: str) -> None:
    """apply_overrides rejects malformed --set items with one InputError line."""
    with pytest.raises(sspsim.InputError, match=match):
        apply_overrides({"run": {"seed": 0}}, overrides)


def test_overrides_parse_toml_values() -> None:
    """--set values are TOML when they parse (numbers, "inf", tables) and plain strings otherwise."""
    raw = apply_overrides({"run": {"seed": 0}}, [
        "run.seed=4", "problem.kind=mlp", 'consistency.staleness="inf"', 'workers.speed={kind="constant", value=2}',
    ])
    assert raw == {"run": {"seed": 4}, "problem": {"kind": "mlp"}, "consistency": {"staleness": "inf"},
                   "workers": {"speed": {"kind": "constant", "value": 2}}}
    config = sspsim.config_from_dict(raw)
    assert config.consistency.staleness == math.inf and config.run.seed == 4


def test_design_config_runs_as_written(tmp_path: Path) -> None:
    """The config block of DESIGN §Config loads and simulates as written."""
    path = tmp_path / "design.toml"
    path.write_text(DESIGN_TOML)
    config = sspsim.load_config(path)
    assert config.workers.count == 8 and config.consistency.staleness == 3
    assert config.workers.stragglers[0].slowdown == 4.0 and config.network.bandwidth == math.inf
    run = sspsim.simulate(config)
    assert len(run.trace) == 8 * 200
    assert run.summary["max_staleness"] <= 3
    assert run.summary["final_objective"] < run.summary["initial_objective"]


def test_relative_trace_path_resolves_against_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative trace file in a config resolves against the config file's folder, not the working directory."""
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "times.csv").write_text("1,2\n3,4\n")
    (tmp_path / "cfg" / "c.toml").write_text(
        '[run]\nclocks = 2\n[problem]\nkind = "none"\n[workers]\ncount = 2\nspeed = { kind = "trace", file = "times.csv" }\n'
    )
    monkeypatch.chdir(tmp_path)
    config = sspsim.load_config(Path("cfg/c.toml"))
    assert config.workers.speed.times.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("text,match", [
    ("[run\nseed = 1", r"^config = '.*c\.toml': not valid TOML"),
    ("[run]\nseeed = 1", r"^run\.seeed = 1: unknown key; did you mean 'seed'\?$"),
])
def test_load_config_rejects_bad_files(text: str, match: str, tmp_path: Path) -> None:
    """load_config reports broken TOML and unknown keys as one InputError line."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(sspsim.InputError, match=match):
        sspsim.load_config(path)
    with pytest.raises(sspsim.InputError, match="file not found"):
        sspsim.load_config(tmp_path / "missing.toml")


@budget(1.0)
@given(raw=sim_configs())
def test_config_round_trips_through_to_dict(raw: dict) -> None:
    """config_from_dict(config.to_dict()) rebuilds an equal config (what run.json stores)."""
    with materialize(raw) as config:
        again = sspsim.config_from_dict(config.to_dict())
        assert again == config
        assert again.to_dict() == config.to_dict()
