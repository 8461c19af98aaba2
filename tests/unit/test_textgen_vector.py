"""TextGen-v0's vector env: one batched reference-LM read a step, the same results as stepping
each env with its own KV cache."""

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from textdqn.config import EnvConfig
from textdqn.envs import make_env, make_vector_env
from textdqn.envs.textgen.vector import TextGenVectorEnv

CONFIG = EnvConfig(id="textdqn/TextGen-v0", kwargs={"lm": {"path": "textdqn:envs/textgen/data/concepts-lm"}})


def test_make_vector_env_batches_textgen_and_matches_per_env_stepping():
    batched = make_vector_env(CONFIG, 4)
    assert isinstance(batched, TextGenVectorEnv)
    fns = [lambda: make_env(CONFIG) for _ in range(4)]
    plain = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    (obs_b, info_b), (obs_p, info_p) = batched.reset(seed=3), plain.reset(seed=3)
    np.testing.assert_array_equal(obs_b, obs_p)
    rng, finished = np.random.default_rng(0), 0
    for _ in range(40):  # several episodes each: autoreset included
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in info_p["action_mask"]])
        obs_b, r_b, term_b, _, info_b = batched.step(actions)
        obs_p, r_p, term_p, _, info_p = plain.step(actions)
        np.testing.assert_array_equal(obs_b, obs_p)
        np.testing.assert_allclose(r_b, r_p, atol=1e-5)
        np.testing.assert_array_equal(term_b, term_p)
        np.testing.assert_array_equal(info_b["action_mask"], info_p["action_mask"])
        if term_b.any():
            finished += int(term_b.sum())
            final_b, final_p = info_b["final_obs"][term_b], info_p["final_obs"][term_p]
            np.testing.assert_array_equal(np.stack(final_b), np.stack(final_p))
            assert "coverage" in info_b["final_info"]
    assert finished >= 4
    rule = batched.call("rule_action")  # the SyncVectorEnv API stays
    assert len(rule) == 4
