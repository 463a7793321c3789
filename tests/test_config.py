"""Config validation (DESIGN §Config): every bad input is one InputError naming field, value and rule."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

import sspsim
from sspsim import speeds as sp
from sspsim.config import (
    Config,
    ConsistencyConfig,
    NetworkConfig,
    OptimizerConfig,
    ProblemConfig,
    RealConfig,
    RunConfig,
    WorkersConfig,
    apply_overrides,
    json_schema,
)
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
    ("trace: non-numeric cell", _trace("bad.csv", 2, 2), r"^bad\.csv:2 = 'column 2': every cell must be a number"),
    ("trace: ragged rows", _trace("ragged.csv", 2, 2), r"^ragged\.csv:2 = '2 columns': every row must have 3 columns"),
    ("trace: negative time", _trace("negative.csv", 2, 2), r"^negative\.csv:2 = 'column 1': times must be finite and >= 0$"),
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


@pytest.mark.parametrize("text", ["root:x:0:0:root:/root:/bin/bash\n", "1,2\n3,token=hunter2\n", "1,-5e-9\n"])
def test_speed_file_errors_never_echo_its_contents(text: str, tmp_path: Path) -> None:
    """A trace-speed file pointing at any readable file: the error names the line and column, not what it holds."""
    (tmp_path / "secret").write_text(text)
    with pytest.raises(sspsim.InputError, match=r"^secret:\d+ = '(column \d+|header)': ") as info:
        sspsim.config_from_dict(_trace("secret", 2, 2), base_dir=tmp_path)
    for cell in text.replace("\n", ",").replace(":", ",").split(","):
        if len(cell) > 1:
            assert cell not in str(info.value)


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


# -- one rule per key: Python construction raises what TOML raises ------------------------------

SAME_ERROR: list[tuple[str, dict[str, Any], Any]] = [
    ("run.clocks = 0", {"run": {"clocks": 0}}, lambda: Config(run=RunConfig(clocks=0))),
    ("run.trace", {"run": {"trace": "some"}}, lambda: RunConfig(trace="some")),
    ("problem.kind", {"problem": {"kind": "svm"}}, lambda: ProblemConfig(kind="svm")),
    ("problem.hidden", {"problem": {"hidden": []}}, lambda: ProblemConfig(hidden=[])),
    ("optimizer.lr", {"optimizer": {"lr": 0}}, lambda: OptimizerConfig(lr=0)),
    ("optimizer.momentum", {"optimizer": {"momentum": 1.0}}, lambda: OptimizerConfig(momentum=1.0)),
    ("consistency.staleness", {"consistency": {"staleness": -2}}, lambda: ConsistencyConfig(staleness=-2)),
    ("consistency.read_policy", {"consistency": {"staleness": -2, "read_policy": "bogus"}},
     lambda: Config(consistency=ConsistencyConfig(staleness=-2, read_policy="bogus"))),
    ("lazy with inf", {"consistency": {"staleness": "inf", "read_policy": "lazy"}},
     lambda: ConsistencyConfig(staleness=math.inf, read_policy="lazy")),
    ("workers.count as text", {"workers": {"count": "8"}}, lambda: WorkersConfig(count="8")),
    ("workers.speed.mean", {"workers": {"speed": {"kind": "exponential", "mean": -1.0}}},
     lambda: WorkersConfig(speed=sp.Exponential(-1.0))),
    ("workers.speed.high", {"workers": {"speed": {"kind": "uniform", "low": 2.0, "high": 1.0}}},
     lambda: WorkersConfig(speed=sp.Uniform(2.0, 1.0))),
    ("workers.compute.samples", {"workers": {"compute": {"kind": "empirical", "samples": [-1.0]}}},
     lambda: WorkersConfig(compute=sp.Empirical((-1.0,)))),
    ("workers.stragglers slowdown", {"workers": {"stragglers": [{"worker": 0, "slowdown": 0}]}},
     lambda: WorkersConfig(stragglers=(sp.Straggler(0, 0),))),
    ("workers.stragglers worker", {"workers": {"count": 2, "stragglers": [{"worker": 2, "slowdown": 2.0}]}},
     lambda: WorkersConfig(count=2, stragglers=(sp.Straggler(2, 2.0),))),
    ("workers.transient", {"workers": {"transient": {"probability": 1.5, "factor": 2.0, "duration": 1}}},
     lambda: WorkersConfig(transient=sp.Transient(1.5, 2.0, 1))),
    ("network.bandwidth", {"network": {"bandwidth": 0}}, lambda: NetworkConfig(bandwidth=0)),
    ("real.device", {"real": {"device": "tpu"}}, lambda: RealConfig(device="tpu")),
    ("mlp input width", {"problem": {"kind": "mlp", "dim": 20}}, lambda: Config(problem=ProblemConfig(kind="mlp", dim=20))),
]


@pytest.mark.parametrize("raw,build", [pytest.param(raw, build, id=name) for name, raw, build in SAME_ERROR])
def test_python_construction_raises_the_toml_error(raw: dict[str, Any], build: Any, tmp_path: Path) -> None:
    """An invalid config built in Python raises the very one-line ConfigError that TOML and --set raise."""
    with pytest.raises(sspsim.ConfigError) as toml_error:
        sspsim.config_from_dict(raw)
    with pytest.raises(sspsim.ConfigError) as python_error:
        build()
    assert str(python_error.value) == str(toml_error.value)
    assert "\n" not in str(python_error.value)
    overrides = [f"{section}.{key}={_toml(value)}" for section, table in raw.items() for key, value in table.items()]
    path = tmp_path / "c.toml"
    path.write_text("")
    with pytest.raises(sspsim.ConfigError) as set_error:
        sspsim.load_config(path, overrides)
    assert str(set_error.value) == str(toml_error.value)


def _toml(value: Any) -> str:
    """A value as TOML text, for --set."""
    from sspsim.tomlwrite import dumps

    line = dumps({"s": {"v": value}}).splitlines()[1]
    return line.partition(" = ")[2]


def test_python_construction_normalises_like_toml() -> None:
    """Built in Python, values take the normal form TOML gives them (aliases, "inf", tuples, floats)."""
    built = Config(consistency=ConsistencyConfig(staleness=3, read_policy="adversarial"),
                   problem=ProblemConfig(kind="mlp", hidden=[8, 4]),
                   network=NetworkConfig(latency=1, bandwidth="inf"),
                   workers=WorkersConfig(count=2, stragglers=[sp.Straggler(1, 2)]))
    read = sspsim.config_from_dict({
        "consistency": {"staleness": 3, "read_policy": "adversarial"}, "problem": {"kind": "mlp", "hidden": [8, 4]},
        "network": {"latency": 1, "bandwidth": "inf"}, "workers": {"count": 2, "stragglers": [{"worker": 1, "slowdown": 2}]}})
    assert built == read
    assert built.consistency.read_policy == "lazy" and built.problem.hidden == (8, 4)
    assert built.network.bandwidth == math.inf and isinstance(built.network.latency, float)
    assert built.workers.stragglers == (sp.Straggler(1, 2.0),)
    assert sspsim.config_from_dict(built.to_dict()) == built


# -- the JSON Schema ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VALID = [ROOT / "examples" / "design.toml", ROOT / "sspsim" / "data" / "demo.toml"]


def _schema_errors(value: Any, schema: dict[str, Any], at: str = "") -> list[str]:
    """Errors of ``value`` against the subset of JSON Schema 2020-12 that json_schema() emits."""
    errors: list[str] = []
    if "anyOf" in schema or "oneOf" in schema:
        branches = schema.get("anyOf") or schema["oneOf"]
        passing = sum(not _schema_errors(value, b, at) for b in branches)
        if passing == 0 or ("oneOf" in schema and passing != 1):
            errors.append(f"{at}: {passing} of the {len(branches)} alternatives match")
        return errors
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind is not None and (not isinstance(value, types[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{at}: {value!r} is not of type {kind}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{at}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} is not one of {schema['enum']}")
    for key, ok in (("minimum", lambda v, b: v >= b), ("exclusiveMinimum", lambda v, b: v > b),
                    ("maximum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v < b)):
        if key in schema and not ok(value, schema[key]):
            errors.append(f"{at}: {value!r} breaks {key} {schema[key]}")
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{at}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            errors += _schema_errors(item, schema.get("items", {}), f"{at}[{i}]")
    if kind == "object":
        props = schema.get("properties", {})
        errors += [f"{at}.{k}: required" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                errors += _schema_errors(v, props[k], f"{at}.{k}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{at}.{k}: not allowed")
    return errors


def test_json_schema_shape() -> None:
    """Draft 2020-12; every section and key of the config, each key described; unknown keys rejected."""
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    for name in sspsim.config.SECTIONS:
        section = schema["properties"][name]
        assert section["additionalProperties"] is False
        assert list(section["properties"]) == list(sspsim.config.section_keys(name))
        assert all(p.get("description") for p in section["properties"].values()), name
    assert schema["properties"]["consistency"]["properties"]["read_policy"]["enum"] == ["eager", "lazy", "push", "adversarial"]
    assert schema["properties"]["run"]["properties"]["clocks"] == {
        "type": "integer", "minimum": 1, "description": "iterations per worker", "default": 200}
    kinds = [b["properties"]["kind"]["enum"][0] for b in schema["properties"]["workers"]["properties"]["speed"]["oneOf"]]
    assert kinds == list(sp.speed_kinds())


@pytest.mark.parametrize("path", SCHEMA_VALID, ids=lambda p: p.name)
def test_json_schema_accepts_shipped_configs(path: Path) -> None:
    raw = tomllib.loads(path.read_text())
    sspsim.config_from_dict(raw, base_dir=path.parent)  # a valid config...
    assert _schema_errors(raw, json_schema()) == []  # ...that the schema accepts


@pytest.mark.parametrize("raw,where", [
    ({"consistency": {"stalenes": 3}}, ".consistency.stalenes: not allowed"),
    ({"netwrk": {}}, ".netwrk: not allowed"),
    ({"consistency": {"staleness": -1}}, ".consistency.staleness: 0 of the 2 alternatives match"),
    ({"consistency": {"staleness": "abc"}}, ".consistency.staleness: 0 of the 2 alternatives match"),
    ({"workers": {"count": "8"}}, ".workers.count: '8' is not of type integer"),
    ({"run": {"clocks": True}}, ".run.clocks: True is not of type integer"),
    ({"network": {"bandwidth": 0}}, ".network.bandwidth: 0 of the 2 alternatives match"),
    ({"optimizer": {"momentum": 1.0}}, ".optimizer.momentum: 1.0 breaks exclusiveMaximum 1.0"),
    ({"problem": {"kind": "svm"}}, ".problem.kind: 'svm' is not one of"),
    ({"workers": {"speed": {"kind": "gamma", "mean": 1}}}, ".workers.speed: 0 of the 8 alternatives match"),
    ({"workers": {"speed": {"kind": "lognormal", "mean": 1}}}, ".workers.speed: 0 of the 8 alternatives match"),
    ({"workers": {"stragglers": [{"worker": 0}]}}, ".workers.stragglers[0].slowdown: required"),
    ({"workers": {"transient": {"probability": 1.5, "factor": 2.0, "duration": 1}}},
     ".workers.transient.probability: 1.5 breaks maximum 1.0"),
])
def test_json_schema_rejects_what_the_config_rejects(raw: dict[str, Any], where: str) -> None:
    """Per-key rules: the config and the schema reject the same values."""
    with pytest.raises(sspsim.ConfigError):
        sspsim.config_from_dict(raw)
    errors = _schema_errors(raw, json_schema())
    assert any(e.startswith(where) for e in errors), errors


def test_schema_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sspsim schema` prints the schema; -o writes it; a folder as -o is one error line, exit 2."""
    import json

    from sspsim.cli import main

    def without_mark(doc: dict[str, Any]) -> dict[str, Any]:
        assert doc.pop("$comment").startswith("Written by sspsim")  # the file rule's marker
        return doc

    assert main(["schema"]) == 0
    assert without_mark(json.loads(capsys.readouterr().out)) == json_schema()
    out = tmp_path / "sspsim.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert without_mark(json.loads(out.read_text())) == json_schema()
    assert main(["schema", "-o", str(out)]) == 2  # sspsim's own file: replaced only with --force
    assert main(["schema", "-o", str(out), "--force"]) == 0
    capsys.readouterr()
    assert main(["schema", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o" in err and "is a folder" in err
