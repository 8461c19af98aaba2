"""textdqn.config: YAML loading, dotted overrides, type checks, validation, round trip."""

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest

from textdqn.config import (
    Config,
    RateLimiterConfig,
    ReplayConfig,
    RunConfig,
    apply_overrides,
    dump_config,
    from_dict,
    load_config,
    to_dict,
    validate,
)
from textdqn.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


NESTED_YAML = """\
run:
  name: cartpole
  seed: 7
replay:
  capacity: 5000
  num_shards: 4
  alpha: 0.5
  rate_limiter:
    min_size_to_sample: 64
    samples_per_insert: 8
"""


# --- defaults and loading ---


def test_defaults_validate_and_match_the_documented_values():
    cfg = validate(Config())
    assert cfg.replay.capacity == 1_000_000
    assert cfg.replay.num_shards == 2
    assert cfg.replay.storage == "memory"
    assert cfg.replay.rate_limiter == RateLimiterConfig()
    assert cfg.run == RunConfig(name="textdqn", seed=0, run_dir="")


def test_every_field_has_a_docstring_like_string_under_it():
    import inspect
    import sys

    for cls in (Config, RunConfig, ReplayConfig, RateLimiterConfig):
        source = inspect.getsource(sys.modules[cls.__module__])
        for f in dataclasses.fields(cls):
            lines = source.split(f"\n    {f.name}: ", 1)[1].splitlines()
            assert lines[1].strip().startswith('"""'), f"{cls.__name__}.{f.name} has no doc"


def test_load_nested_sections_and_keep_defaults_elsewhere(tmp_path):
    cfg = load_config(write(tmp_path, NESTED_YAML))
    assert cfg.run == RunConfig(name="cartpole", seed=7, run_dir="")
    assert cfg.replay.capacity == 5000
    assert cfg.replay.num_shards == 4
    assert cfg.replay.alpha == 0.5
    assert cfg.replay.beta == ReplayConfig().beta
    assert cfg.replay.rate_limiter.min_size_to_sample == 64
    # An int in YAML is accepted for a float field and stored as a float.
    assert cfg.replay.rate_limiter.samples_per_insert == 8.0
    assert isinstance(cfg.replay.rate_limiter.samples_per_insert, float)
    assert cfg.replay.rate_limiter.timeout_s == 60.0


def test_empty_file_and_empty_section_give_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()
    assert load_config(write(tmp_path, "replay:\nrun:\n", "b.yaml")) == Config()


# --- overrides ---


def test_overrides_convert_types(tmp_path):
    cfg = load_config(
        write(tmp_path, NESTED_YAML),
        [
            "replay.capacity=1e5",
            "replay.alpha=0.7",
            "replay.priority_eps=1e-4",
            "replay.beta_final=1",
            "run.name=dialogue",
            "run.seed=3",
            "replay.rate_limiter.timeout_s=2.5",
        ],
    )
    assert cfg.replay.capacity == 100_000 and isinstance(cfg.replay.capacity, int)
    assert cfg.replay.alpha == 0.7
    assert cfg.replay.priority_eps == pytest.approx(1e-4)
    assert cfg.replay.beta_final == 1.0 and isinstance(cfg.replay.beta_final, float)
    assert cfg.run.name == "dialogue"
    assert cfg.run.seed == 3
    assert cfg.replay.rate_limiter.timeout_s == 2.5
    assert cfg.replay.num_shards == 4  # untouched keys keep the file's values


def test_override_values_are_parsed_as_yaml():
    out = apply_overrides({}, ["a.flag=true", "a.n=1e5", "a.x=1.0e-3", "a.s='1e5'", "a.l=[1, 2]"])
    assert out == {"a": {"flag": True, "n": 1e5, "x": 1e-3, "s": "1e5", "l": [1, 2]}}


def test_apply_overrides_does_not_mutate_its_input():
    data = {"replay": {"alpha": 0.5}}
    out = apply_overrides(data, ["replay.alpha=0.9", "run.seed=1"])
    assert data == {"replay": {"alpha": 0.5}}
    assert out == {"replay": {"alpha": 0.9}, "run": {"seed": 1}}


def test_bool_override_reaches_a_bool_field():
    @dataclasses.dataclass(frozen=True)
    class Section:
        enabled: bool = False

    data = apply_overrides({}, ["enabled=true"])
    assert from_dict(Section, data) == Section(enabled=True)


@pytest.mark.parametrize("bad", ["replay.alpha", "=3", "replay..alpha=1", ".alpha=1", "a. =1"])
def test_malformed_override_shows_the_expected_form(bad):
    with pytest.raises(ConfigError, match=r"--set section\.key=value") as info:
        apply_overrides({}, [bad])
    assert repr(bad) in str(info.value)


def test_override_through_a_value_is_rejected():
    with pytest.raises(ConfigError, match=r"replay\.alpha = 0\.5 is a value, not a section"):
        apply_overrides({"replay": {"alpha": 0.5}}, ["replay.alpha.x=1"])


def test_unknown_override_key_is_reported_with_its_dotted_path(tmp_path):
    with pytest.raises(ConfigError, match=r"'replay\.rate_limiter\.timeout'.*timeout_s"):
        load_config(write(tmp_path, ""), ["replay.rate_limiter.timeout=3"])


# --- unknown keys and types ---


def test_unknown_key_names_the_dotted_key_and_suggests_a_fix():
    with pytest.raises(ConfigError) as info:
        from_dict(Config, {"replay": {"alpah": 0.5}})
    message = str(info.value)
    assert "'replay.alpah'" in message
    assert "Did you mean 'replay.alpha'?" in message
    assert "capacity" in message and "rate_limiter" in message  # accepted keys are listed


def test_unknown_top_level_section_lists_the_sections():
    with pytest.raises(
        ConfigError, match=r"'replya'.*Did you mean 'replay'.*run, env, actors, network, learner, replay"
    ):
        from_dict(Config, {"replya": {}})


@pytest.mark.parametrize(
    ("data", "key", "value", "expected"),
    [
        ({"replay": {"capacity": "lots"}}, "replay.capacity", "'lots'", "int"),
        ({"replay": {"capacity": True}}, "replay.capacity", "True", "int"),
        ({"replay": {"capacity": 1.5}}, "replay.capacity", "1.5", "int"),
        ({"replay": {"alpha": "high"}}, "replay.alpha", "'high'", "float"),
        ({"replay": {"alpha": False}}, "replay.alpha", "False", "float"),
        ({"run": {"name": 5}}, "run.name", "5", "str"),
        ({"replay": {"rate_limiter": 3}}, "replay.rate_limiter", "3", "a mapping of RateLimiterConfig"),
        ({"run": [1]}, "run", "[1]", "a mapping of RunConfig"),
    ],
)
def test_wrong_type_names_key_value_and_expected_type(data, key, value, expected):
    with pytest.raises(ConfigError, match="wrong type") as info:
        from_dict(Config, data)
    message = str(info.value)
    assert message.startswith(f"{key} = {value} ")
    assert f"expected {expected}" in message


def test_whole_float_is_accepted_for_int():
    cfg = from_dict(Config, {"replay": {"capacity": 2000.0}})
    assert cfg.replay.capacity == 2000 and isinstance(cfg.replay.capacity, int)


def test_generic_type_hints():
    @dataclasses.dataclass(frozen=True)
    class Section:
        path: str | None = None
        sizes: tuple[int, ...] = (64, 64)
        mode: Literal["hard", "polyak"] = "hard"
        kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
        flag: bool = False

    got = from_dict(Section, {"path": None, "sizes": [32, 16.0], "mode": "polyak", "kwargs": {"k": [1]}})
    assert got == Section(path=None, sizes=(32, 16), mode="polyak", kwargs={"k": [1]})
    assert from_dict(Section, {"path": "x"}).path == "x"
    with pytest.raises(ConfigError, match=r"path = 3 .*expected str or None"):
        from_dict(Section, {"path": 3})
    with pytest.raises(ConfigError, match=r"sizes\[1\] = 'a' .*expected int"):
        from_dict(Section, {"sizes": [1, "a"]})
    with pytest.raises(ConfigError, match=r"mode = 'soft' .*'hard', 'polyak'"):
        from_dict(Section, {"mode": "soft"})
    with pytest.raises(ConfigError, match=r"kwargs = \[1\] .*mapping"):
        from_dict(Section, {"kwargs": [1]})
    with pytest.raises(ConfigError, match=r"flag = 1 .*expected bool"):
        from_dict(Section, {"flag": 1})


def test_required_field_without_default_is_reported():
    @dataclasses.dataclass(frozen=True)
    class Section:
        env_id: str

    with pytest.raises(ConfigError, match=r"env\.env_id is required.*--set env\.env_id="):
        from_dict(Section, {}, "env")


# --- validation ---


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("replay.alpha=-1", "replay.alpha = -1.0 is out of range: expected a float in [0, 1]"),
        ("replay.beta=1.5", "replay.beta = 1.5 is out of range: expected a float in [0, 1]"),
        ("replay.beta_final=2", "replay.beta_final = 2.0 is out of range"),
        ("replay.num_shards=0", "replay.num_shards = 0 is out of range: expected an int >= 1"),
        ("replay.capacity=0", "replay.capacity = 0 is out of range: expected an int >= 1"),
        ("replay.beta_anneal_updates=-1", "expected an int >= 0"),
        ("replay.priority_eps=0", "replay.priority_eps = 0.0 is out of range: expected a float > 0"),
        ("replay.insert_in_flight=0", "replay.insert_in_flight = 0 is out of range"),
        ("replay.sample_in_flight=0", "replay.sample_in_flight = 0 is out of range"),
        ("replay.shard_num_cpus=0", "replay.shard_num_cpus = 0.0 is out of range"),
        ("replay.rate_limiter.min_size_to_sample=0", "rate_limiter.min_size_to_sample = 0"),
        ("replay.rate_limiter.samples_per_insert=-1", "expected a float >= 0"),
        ("replay.rate_limiter.error_buffer=-5", "replay.rate_limiter.error_buffer = -5.0"),
        ("replay.rate_limiter.timeout_s=0", "replay.rate_limiter.timeout_s = 0.0 is out of"),
        ("run.seed=-1", "run.seed = -1 is out of range: expected an int >= 0"),
    ],
)
def test_out_of_range_names_key_and_accepted_range(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, ""), [override])
    assert message in str(info.value)


def test_capacity_must_cover_every_shard():
    cfg = from_dict(Config, {"replay": {"capacity": 2, "num_shards": 3}})
    with pytest.raises(ConfigError, match=r"replay\.capacity = 2 is smaller than replay\.num_"):
        validate(cfg)
    small = {"capacity": 3, "num_shards": 3, "rate_limiter": {"min_size_to_sample": 1}}
    assert validate(from_dict(Config, {"replay": small})) is not None


def test_redis_storage_needs_a_url_and_says_how_to_give_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "replay:\n  storage: redis\n"))
    message = str(info.value)
    assert message.startswith("replay.storage = 'redis' needs replay.redis_url")
    assert "--set replay.redis_url=redis://" in message and "local" in message


@pytest.mark.parametrize(
    "url", ["redis://db:6379/0", "rediss://:pw@db:6380/1", "unix:///tmp/r.sock", "local"]
)
def test_redis_storage_with_a_url_validates(tmp_path, url):
    cfg = load_config(write(tmp_path, ""), ["replay.storage=redis", f"replay.redis_url={url}"])
    assert (cfg.replay.storage, cfg.replay.redis_url, cfg.replay.redis_flush_s) == ("redis", url, 1.0)


def test_a_redis_url_of_another_scheme_is_rejected_without_its_password():
    cfg = from_dict(Config, {"replay": {"storage": "redis", "redis_url": "http://user:s3cret@db:6379"}})
    with pytest.raises(
        ConfigError, match=r"replay\.redis_url = 'http://user:\*\*\*@db:6379' is not a Redis URL"
    ) as info:
        validate(cfg)
    assert "s3cret" not in str(info.value)


def test_redis_flush_interval_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match=r"replay\.redis_flush_s = 0\.0 is out of range: expected a float"):
        load_config(write(tmp_path, ""), ["replay.redis_flush_s=0"])


def test_unknown_storage_is_a_choice_error_listing_both_backends():
    with pytest.raises(
        ConfigError, match=r"replay\.storage = 'disk' is not accepted: expected one of 'memory', 'redis'"
    ):
        from_dict(Config, {"replay": {"storage": "disk"}})


def test_validate_reports_every_problem_at_once():
    cfg = from_dict(Config, {"replay": {"alpha": 2.0, "beta": -1.0}, "run": {"seed": -3}})
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("replay.alpha = 2.0") for line in lines)
    assert any(line.startswith("replay.beta = -1.0") for line in lines)
    assert any(line.startswith("run.seed = -3") for line in lines)


# --- files ---


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_invalid_yaml_names_file_and_position(tmp_path):
    path = write(tmp_path, "replay:\n  alpha: [0.5\n  beta: 1\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+, column \d+") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path):
    path = write(tmp_path, "- replay\n- run\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of sections.*not a list") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_dump_then_load_round_trips(tmp_path):
    cfg = load_config(
        write(tmp_path, NESTED_YAML),
        ["replay.priority_eps=1e-8", "run.run_dir=runs/x", "replay.rate_limiter.timeout_s=0.5"],
    )
    path = dump_config(cfg, tmp_path / "out" / "config.yaml")
    assert path.exists()
    assert load_config(path) == cfg
    assert to_dict(cfg)["replay"]["rate_limiter"]["min_size_to_sample"] == 64


def test_to_dict_is_plain_and_lists_tuples():
    @dataclasses.dataclass(frozen=True)
    class Section:
        sizes: tuple[int, ...] = (1, 2)
        inner: RunConfig = dataclasses.field(default_factory=RunConfig)

    out = to_dict(Section())
    assert out["sizes"] == [1, 2]
    assert out["inner"] == dataclasses.asdict(RunConfig())
    assert from_dict(Section, out) == Section()


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.replay.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run = RunConfig(seed=1)  # type: ignore[misc]
    assert cfg.replay.alpha == 0.6


def test_the_run_directory_never_holds_the_redis_password(tmp_path, monkeypatch):
    from textdqn.config import Config, ReplayConfig, without_secrets
    from textdqn.errors import ReplayStorageError
    from textdqn.metrics import RunDirectory
    from textdqn.replay_server.redis_connection import redis_spec

    replay = ReplayConfig(storage="redis", redis_url="redis://:s3cret@10.0.0.5:6379/0")
    run = RunDirectory.create(Config(replay=replay), run_dir=str(tmp_path / "run"))
    text = run.config_path.read_text()
    assert "s3cret" not in text and "redis://:***@10.0.0.5:6379/0" in text
    saved = run.load_config().replay
    assert without_secrets(Config(replay=replay)).replay == saved
    # Resuming from it needs the password again: from the environment, or a message saying so.
    with pytest.raises(ReplayStorageError, match="not kept in the run directory"):
        redis_spec(saved, "run", 0)
    monkeypatch.setenv("TEXTDQN_REDIS_PASSWORD", "s3cret")
    spec = redis_spec(dataclasses.replace(saved, redis_password_env="TEXTDQN_REDIS_PASSWORD"), "run", 0)
    assert spec.password == "s3cret" and "***" not in spec.url and "s3cret" not in repr(spec)


@pytest.mark.parametrize("path", sorted(Path("configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_or_names_the_local_model_it_needs(path):
    try:
        config = load_config(str(path))
    except ConfigError as e:  # configs for a user's own checkpoint (models/gpt2, models/smollm2)
        assert "is not a local directory" in str(e) and "nothing is downloaded" in str(e), e
        return
    assert config.run.name and (config.stop.env_steps or config.stop.time_s or config.stop.target_metric)
