"""Beam plans files (textdqn/envs/textgen/beam_plans.py): the beam search's texts searched once,
read back by the env instead of searching, refused when searched under other settings."""

import json

import pytest

from textdqn.envs.textgen import agents
from textdqn.envs.textgen.beam_plans import write_plans
from textdqn.envs.textgen.env import TextGenEnv
from textdqn.errors import ConfigError

KWARGS = {"top_k": 4, "eos_after_concepts": True, "kl_coef": 0.05, "token_bonus": 0.02}


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """A prompts file of 2 train records and 1 test record (the shipped ones) and its plans file."""
    root = tmp_path_factory.mktemp("plans")
    records = [json.loads(line) for line in open("textdqn/envs/textgen/data/concepts.jsonl")]
    train, test = ([r for r in records if r["split"] == split] for split in ("train", "test"))
    chosen = train[:2] + test[:1]
    prompts = root / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in chosen))
    out = root / "plans.json"
    count, stamp = write_plans({**KWARGS, "prompts": str(prompts)}, out, workers=1)
    return prompts, out, count, stamp


def _texts(env):
    found = []
    for index in range(len(env.records)):
        env.reset(seed=0, options={"prompt_index": index})
        done = False
        while not done:
            _, _, done, _, info = env.step(env.beam_action())
        found.append(info["text"])
    return found


def test_an_env_reads_the_plans_instead_of_searching_and_acts_the_same_texts(plans, monkeypatch):
    prompts, out, count, stamp = plans
    assert count == 3 and stamp["top_k"] == 4 and stamp["length_bonus"] == pytest.approx(0.4)
    for split in ("train", "test"):
        searched = _texts(TextGenEnv(prompts=str(prompts), split=split, **KWARGS))
        with monkeypatch.context() as m:
            m.setattr(agents, "constrained_beam", lambda *a, **k: pytest.fail("searched despite a plan"))
            read = _texts(TextGenEnv(prompts=str(prompts), split=split, beam_plans=str(out), **KWARGS))
        assert read == searched and all(searched)


def test_a_plans_file_searched_under_other_settings_or_not_a_plans_file_is_refused(plans, tmp_path):
    prompts, out, _, _ = plans
    with pytest.raises(ConfigError, match=r"top_k differ.*textdqn lm beam-plans"):
        TextGenEnv(prompts=str(prompts), beam_plans=str(out), **{**KWARGS, "top_k": 3})
    with pytest.raises(ConfigError, match="length_bonus differ"):
        TextGenEnv(prompts=str(prompts), beam_plans=str(out), **{**KWARGS, "token_bonus": 0.05})
    other = tmp_path / "other.json"
    other.write_text('{"plans": {}}')
    with pytest.raises(ConfigError, match="is not a textdqn-beam-plans/1 file"):
        TextGenEnv(prompts=str(prompts), beam_plans=str(other), **KWARGS)
    with pytest.raises(ConfigError, match="cannot be read as a plans file"):
        TextGenEnv(prompts=str(prompts), beam_plans=str(tmp_path / "missing.json"), **KWARGS)


def test_a_prompt_the_file_lacks_is_searched_as_it_goes(plans):
    out = plans[1]
    env = TextGenEnv(split="test", beam_plans=str(out), **KWARGS)  # the shipped prompts: 120 test ones
    assert len(env._beam_plans) == 1 and len(env.records) == 120
    env.reset(seed=0, options={"prompt_index": 5})
    done = False
    while not done:
        _, _, done, _, info = env.step(env.beam_action())
    assert info["coverage"] == 1.0 and info["eos"] == 1.0


def test_the_shipped_plans_file_holds_every_prompt_of_the_fluent_config_under_its_settings():
    from textdqn.config import load_config

    kwargs = load_config("configs/textgen-fluent.yaml").env.kwargs
    for split, count in (("train", 2880), ("test", 120)):
        env = TextGenEnv(**{**kwargs, "split": split})  # refused if the LM or the settings moved
        assert len(env._beam_plans) == len(env.records) == count
    assert env._beam_plans[0][-1] == env.eos_id


def test_the_cli_writes_a_configs_plans_and_refuses_another_env(plans, tmp_path):
    from typer.testing import CliRunner

    from textdqn.cli import app

    out = tmp_path / "cli-plans.json"
    given = ["--set", f"env.kwargs.prompts={plans[0]}"]
    done = CliRunner().invoke(app, ["lm", "beam-plans", "configs/textgen-fluent.yaml", str(out), *given])
    assert done.exit_code == 0, done.output
    assert "3 prompts' texts" in done.output and f"env.kwargs.beam_plans={out}" in done.output
    assert json.loads(out.read_text())["plans"] == json.loads(plans[1].read_text())["plans"]
    refused = CliRunner().invoke(app, ["lm", "beam-plans", "configs/cartpole.yaml", str(tmp_path / "x.json")])
    assert refused.exit_code == 2 and "beam plans are for textdqn/TextGen-v0" in refused.output


def test_a_plans_file_searched_with_another_lm_architecture_is_refused(plans, tmp_path):
    """Same weights, another config (here its layer norm's epsilon): the LM computes other texts."""
    import shutil

    from textdqn.lm import resolve_path

    prompts, out, _, _ = plans
    lm = tmp_path / "lm"
    shutil.copytree(resolve_path("textdqn:envs/textgen/data/concepts-lm"), lm)
    config = json.loads((lm / "config.json").read_text())
    (lm / "config.json").write_text(json.dumps({**config, "layer_norm_epsilon": 1e-3}))
    with pytest.raises(ConfigError, match=r"lm_config_sha256 differ"):
        TextGenEnv(prompts=str(prompts), beam_plans=str(out), lm={"path": str(lm)}, **KWARGS)
