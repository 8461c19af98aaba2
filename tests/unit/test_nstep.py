"""NStepAdder against hand-computed transitions and a brute-force reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdqn.actors.nstep import NStepAdder

F, T = np.array([False]), np.array([True])


def _obs(t):
    return np.array([[float(t)]], dtype=np.float32)


def _step(adder, t, r, term=F, trunc=F, version=0, mask=None):
    """One single-env step from obs t to obs t + 1 with action t."""
    return adder.add(_obs(t), np.array([t]), np.array([r]), _obs(t + 1), term, trunc, version, mask)


def test_full_window_sums_three_rewards():
    adder = NStepAdder(1, n=3, gamma=0.9)
    assert _step(adder, 0, 1.0) is None
    assert _step(adder, 1, 2.0) is None
    out = _step(adder, 2, 3.0)
    assert len(out) == 1
    assert out.reward[0] == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)  # 5.23
    assert out.discount[0] == pytest.approx(0.729)
    assert out.obs[0, 0] == 0 and out.next_obs[0, 0] == 3 and out.action[0] == 0
    assert out.reward.dtype == np.float32 and out.discount.dtype == np.float32
    assert out.action.dtype == np.int64 and out.policy_version.dtype == np.int32
    assert out.next_action_mask is None and out.priority is None
    out = _step(adder, 3, 4.0)
    assert out.obs[0, 0] == 1 and out.next_obs[0, 0] == 4
    assert out.reward[0] == pytest.approx(2 + 0.9 * 3 + 0.81 * 4)


@pytest.mark.parametrize(("term", "trunc", "discounts"), [(T, F, [0.0, 0.0]), (F, T, [0.81, 0.9])])
def test_episode_ending_inside_window(term, trunc, discounts):
    adder = NStepAdder(1, n=3, gamma=0.9)
    assert _step(adder, 0, 1.0) is None
    out = _step(adder, 1, 2.0, term, trunc)
    order = np.argsort(out.obs[:, 0])
    np.testing.assert_array_equal(out.obs[order, 0], [0, 1])
    np.testing.assert_allclose(out.reward[order], [1 + 0.9 * 2, 2.0])
    np.testing.assert_allclose(out.discount[order], discounts)
    np.testing.assert_array_equal(out.next_obs[:, 0], [2, 2])  # the final obs
    assert adder.pending.tolist() == [0]
    # The next episode starts afresh: nothing of the old one leaks into its windows.
    assert _step(adder, 10, 5.0) is None
    assert _step(adder, 11, 6.0) is None
    out = _step(adder, 12, 7.0)
    assert out.obs[0, 0] == 10 and out.reward[0] == pytest.approx(5 + 0.9 * 6 + 0.81 * 7)


def test_termination_on_last_step_of_full_window():
    adder = NStepAdder(1, n=2, gamma=0.5)
    _step(adder, 0, 1.0)
    out = _step(adder, 1, 1.0, term=T)
    order = np.argsort(out.obs[:, 0])
    np.testing.assert_allclose(out.reward[order], [1.5, 1.0])
    np.testing.assert_allclose(out.discount[order], [0.0, 0.0])


def test_one_step_transitions():
    adder = NStepAdder(1, n=1, gamma=0.9)
    out = _step(adder, 0, 1.0)
    assert (out.obs[0, 0], out.next_obs[0, 0], out.reward[0], out.discount[0]) == (0, 1, 1.0, 0.9)
    out = _step(adder, 1, 2.0, term=T)
    assert (out.obs[0, 0], out.reward[0], out.discount[0]) == (1, 2.0, 0.0)
    out = _step(adder, 2, 3.0, trunc=T)
    assert out.discount[0] == pytest.approx(0.9)


def _tokens(t):
    """Token-id obs [3, 2] for 3 envs: (env, t)."""
    return np.array([[e, t] for e in range(3)], dtype=np.int32)


def test_envs_ending_at_different_times_with_token_obs():
    adder = NStepAdder(3, n=3, gamma=0.5)
    # Step 0: env 1 terminates (a 1-step episode). Step 1: env 0 terminates, env 2 is truncated,
    # env 1 takes the first step of its next episode.
    out = adder.add(_tokens(0), np.zeros(3), np.ones(3), _tokens(1), [False, True, False], [False] * 3, 7)
    assert out.obs.tolist() == [[1, 0]] and out.discount.tolist() == [0.0] and out.reward.tolist() == [1.0]
    out = adder.add(
        _tokens(1),
        np.ones(3),
        np.full(3, 2.0),
        _tokens(2),
        [True, False, False],
        [False, False, True],
        np.array([8, 9, 10]),
    )
    assert out.obs.dtype == np.int32 and out.next_obs.dtype == np.int32
    rows = zip(out.obs.tolist(), out.reward, out.discount, out.policy_version, strict=True)
    got = {tuple(o): (float(r), float(d), int(v)) for o, r, d, v in rows}
    assert got == {
        (0, 0): (1 + 0.5 * 2, 0.0, 7),
        (0, 1): (2.0, 0.0, 8),
        (2, 0): (1 + 0.5 * 2, 0.25, 7),
        (2, 1): (2.0, 0.5, 10),
    }
    np.testing.assert_array_equal(out.next_obs[:, 1], [2, 2, 2, 2])
    assert adder.pending.tolist() == [0, 1, 0]


def test_policy_version_and_masks_come_from_the_right_steps():
    adder = NStepAdder(1, n=2, gamma=1.0)
    masks = [np.array([[True, False, i == 0, i == 1]]) for i in range(3)]
    versions = [np.array([10]), np.array([11]), np.array([12])]
    assert _step(adder, 0, 1.0, version=versions[0], mask=masks[0]) is None
    out = _step(adder, 1, 1.0, version=versions[1], mask=masks[1])
    assert out.policy_version[0] == 10 and out.obs[0, 0] == 0
    np.testing.assert_array_equal(out.next_action_mask, masks[1])  # valid in obs 2 = after step 1
    out = _step(adder, 2, 1.0, version=versions[2], mask=masks[2])
    assert out.policy_version[0] == 11
    np.testing.assert_array_equal(out.next_action_mask, masks[2])
    with pytest.raises(ValueError, match="every call or on none"):
        _step(adder, 3, 1.0)


def test_clear_drops_pending_steps():
    adder = NStepAdder(1, n=3, gamma=0.9)
    _step(adder, 0, 1.0)
    _step(adder, 1, 1.0)
    adder.clear()
    assert _step(adder, 5, 1.0) is None
    assert _step(adder, 6, 1.0) is None
    assert _step(adder, 7, 1.0).obs[0, 0] == 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="n "):
        NStepAdder(2, n=0, gamma=0.9)
    with pytest.raises(ValueError, match="gamma"):
        NStepAdder(2, n=3, gamma=1.5)
    with pytest.raises(ValueError, match="num_envs=2"):
        NStepAdder(2, n=3, gamma=0.9).add(_obs(0), [0], [0.0], _obs(1), F, F, 0)


def _reference(episodes, n, gamma, cut=False):
    """Every transition a correct adder emits, keyed by (env, episode, t), computed one by one;
    with `cut`, windows end before the first exploratory action after their first step."""
    expected = {}
    for (env, ep), steps in episodes.items():
        ended = steps[-1]["term"] or steps[-1]["trunc"]
        for t in range(len(steps)):
            k = min(n, len(steps) - t)
            explored = [j for j in range(1, k) if cut and steps[t + j]["x"]]
            if explored:
                k = explored[0]  # cut: bootstraps from the obs the exploratory action was taken in
            elif k < n and not ended:
                continue  # window still pending when the stream stops
            window = steps[t : t + k]
            last = window[-1]
            reward = sum(gamma**j * s["r"] for j, s in enumerate(window))
            discount = 0.0 if (last["term"] and t + k == len(steps)) else gamma**k
            expected[(env, ep, t)] = (
                steps[t]["a"],
                reward,
                discount,
                last["next"],
                last["mask"],
                steps[t]["v"],
            )
    return expected


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_matches_brute_force(data):
    cut = data.draw(st.booleans(), label="cut_at_exploration")
    num_envs = data.draw(st.integers(1, 4), label="num_envs")
    n = data.draw(st.integers(1, 4), label="n")
    gamma = data.draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]), label="gamma")
    length = data.draw(st.integers(1, 25), label="steps")
    ends = data.draw(
        st.lists(
            st.lists(st.sampled_from("...tu"), min_size=num_envs, max_size=num_envs),
            min_size=length,
            max_size=length,
        ),
        label="ends",
    )
    rewards = data.draw(
        st.lists(
            st.lists(st.integers(-5, 5), min_size=num_envs, max_size=num_envs),
            min_size=length,
            max_size=length,
        ),
        label="rewards",
    )
    explored = data.draw(
        st.lists(
            st.lists(st.booleans(), min_size=num_envs, max_size=num_envs), min_size=length, max_size=length
        ),
        label="explored",
    )
    adder = NStepAdder(num_envs, n, gamma, cut_at_exploration=cut)
    episode, t_in_ep = np.zeros(num_envs, dtype=int), np.zeros(num_envs, dtype=int)
    episodes, emitted = {}, []
    for step in range(length):
        envs = np.arange(num_envs)
        obs = np.stack([envs, episode, t_in_ep], axis=1).astype(np.float32)
        next_obs = obs + np.array([0, 0, 1], dtype=np.float32)
        term = np.array([c == "t" for c in ends[step]])
        trunc = np.array([c == "u" for c in ends[step]])
        action = (3 * step + envs) % 5
        version = 100 * step + envs
        mask = np.array([[(step + e + a) % 3 != 0 for a in range(5)] for e in envs])
        for e in envs:
            episodes.setdefault((e, episode[e]), []).append(
                dict(
                    a=action[e],
                    r=rewards[step][e],
                    next=tuple(next_obs[e]),
                    mask=tuple(mask[e]),
                    v=version[e],
                    term=term[e],
                    trunc=trunc[e],
                    x=explored[step][e],
                )
            )
        q = (1000 * episode + 10 * t_in_ep + envs).astype(np.float32)  # names the step
        out = adder.add(
            obs,
            action,
            np.array(rewards[step], dtype=float),
            next_obs,
            term,
            trunc,
            version,
            mask,
            q_taken=q,
            explored=np.array(explored[step]),
        )
        if out is not None:
            emitted.append(out)
            assert len(adder.emitted_env) == len(adder.emitted_q) == len(adder.emitted_cut) == len(out)
            np.testing.assert_array_equal(adder.emitted_env, out.obs[:, 0])
            first = 1000 * out.obs[:, 1] + 10 * out.obs[:, 2] + out.obs[:, 0]  # the first step's q
            np.testing.assert_array_equal(adder.emitted_q, first)
            if not cut:
                assert not adder.emitted_cut.any()
        done = term | trunc
        episode, t_in_ep = episode + done, np.where(done, 0, t_in_ep + 1)

    expected = _reference(episodes, n, gamma, cut)
    got = {}
    for batch in emitted:
        for i in range(len(batch)):
            key = tuple(int(x) for x in batch.obs[i])
            assert key not in got, f"transition {key} emitted twice"
            got[key] = (
                batch.action[i],
                batch.reward[i],
                batch.discount[i],
                tuple(batch.next_obs[i]),
                tuple(batch.next_action_mask[i]),
                batch.policy_version[i],
            )
    assert set(got) == set(expected)
    for key, (a, r, d, nxt, m, v) in expected.items():
        ga, gr, gd, gnxt, gm, gv = got[key]
        assert (ga, gnxt, gm, gv) == (a, nxt, m, v), key
        assert gr == pytest.approx(r, rel=1e-5, abs=1e-5), key
        assert gd == pytest.approx(d, rel=1e-6, abs=1e-7), key
