"""Behaviour tests for the embedded PickCube twin (`engine.envs.pickcube_lite`) and its scripted policy."""
from __future__ import annotations

import pytest
import torch

from engine.envs import EnvError, make_env
from engine.envs.pickcube_lite import HALF, OBS_SLICES, PickCubeLite, PickCubeLiteState
from engine.envs.scripted import scripted_pickcube_action

S = OBS_SLICES


def rand_actions(n: int, steps: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, n, 4, generator=g) * 2 - 1


def run_scripted(env: PickCubeLite, obs: torch.Tensor, steps: int = 50):
    """First success step (1-based, -1 = never) per env, with autoreset off."""
    first = torch.full((env.num_envs,), -1)
    for t in range(steps):
        r = env.step(scripted_pickcube_action(obs))
        obs = r.obs
        first[r.success & (first < 0)] = t + 1
    return first


def cube_in_gripper_state(env: PickCubeLite, z: float | None = None) -> PickCubeLiteState:
    """The current state with the TCP moved onto the cube (optionally lifted to height z), fingers open."""
    st = env.snapshot()
    if z is not None:
        st["obj_pos"][:, 2] = z
    st["tcp_pos"].copy_(st["obj_pos"])
    return st


def test_shapes_and_dtypes():
    env = PickCubeLite(7, seed=0)
    assert (env.obs_dim, env.act_dim, env.max_episode_steps) == (21, 4, 50)
    obs = env.reset(seed=3)
    assert obs.shape == (7, 21) and obs.dtype == torch.float32
    r = env.step(torch.zeros(7, 4))
    assert r.obs.shape == r.final_obs.shape == (7, 21) and r.obs.dtype == torch.float32
    assert r.reward.shape == (7,) and r.reward.dtype == torch.float32
    for flag in (r.terminated, r.truncated, r.success, r.done):
        assert flag.shape == (7,) and flag.dtype == torch.bool
    el = env.elapsed_steps()
    assert el.dtype == torch.int64 and el.tolist() == [1] * 7
    # initial layout: open gripper, not grasped, cube on the table, goal above the table
    assert torch.allclose(obs[:, S["gripper"]], torch.full((7, 1), 0.04))
    assert (obs[:, S["is_grasped"]] == 0).all()
    assert torch.allclose(obs[:, 14], torch.full((7,), HALF))
    assert (obs[:, 11] >= HALF).all() and (obs[:, 11] <= HALF + 0.3).all()
    assert (obs[:, 12:14].abs() <= 0.1).all()
    assert torch.allclose(obs[:, S["tcp_to_obj"]], obs[:, S["obj_pos"]] - obs[:, S["tcp_pos"]])


def test_seeded_determinism():
    acts = rand_actions(16, 60)
    def rollout(env, seed):
        out = [env.reset(seed=seed)]
        for a in acts:
            r = env.step(a)
            out += [r.obs, r.reward, r.final_obs]
        return out
    a, b = PickCubeLite(16, seed=5), PickCubeLite(16, seed=9)
    ra, rb = rollout(a, 1), rollout(b, 1)
    assert all(torch.equal(x, y) for x, y in zip(ra, rb))
    assert all(torch.equal(x, y) for x, y in zip(ra, rollout(a, 1)))   # reset(seed) reseeds
    assert not torch.equal(ra[0], rollout(a, 2)[0])
    # construction seed is deterministic too, and a plain reset() gives new episodes
    c, d = PickCubeLite(16, seed=4), PickCubeLite(16, seed=4)
    assert torch.equal(c.reset(), d.reset())
    assert not torch.equal(c.reset(), c.reset(seed=4))


def test_scripted_policy_solves_in_realistic_steps():
    env = PickCubeLite(500, seed=0, autoreset=False)
    first = run_scripted(env, env.reset(seed=0))
    ok = first > 0
    assert ok.float().mean() >= 0.95
    assert 10 <= first[ok].float().median() <= 30


def test_random_policy_rarely_succeeds():
    env = PickCubeLite(1500, seed=0, autoreset=False)
    env.reset(seed=11)
    once = torch.zeros(1500, dtype=torch.bool)
    for a in rand_actions(1500, 50, seed=3):
        once |= env.step(a).success
    assert once.float().mean() < 0.01


def test_gripper_takes_several_steps_to_close_and_grasp():
    env = PickCubeLite(4, seed=0, autoreset=False)
    env.reset(seed=0)
    env.restore(cube_in_gripper_state(env))
    close = torch.tensor([[0.0, 0.0, 0.0, -1.0]]).repeat(4, 1)
    fingers, grasped = [], []
    for _ in range(4):
        obs = env.step(close).obs
        fingers.append(obs[:, 3]); grasped.append(obs[:, 8])
    assert (grasped[0] == 0).all() and (fingers[0] > HALF).all()    # still closing after one step
    assert (grasped[2] == 1).all()
    assert torch.allclose(fingers[3], torch.full((4,), HALF))          # fingers rest on the cube
    # closing with the cube out of reach ends fully closed and grasps nothing
    env.reset(seed=0)
    for _ in range(4):
        obs = env.step(close).obs
    assert (obs[:, 8] == 0).all() and (obs[:, 3] == 0).all()


def test_grasped_cube_follows_and_released_cube_falls():
    env = PickCubeLite(3, seed=1, autoreset=False, ignore_terminations=True)
    env.reset(seed=1)
    env.restore(cube_in_gripper_state(env))
    for _ in range(3):
        obs = env.step(torch.tensor([[0.0, 0.0, 0.0, -1.0]] * 3)).obs
    for _ in range(8):                                               # lift
        obs = env.step(torch.tensor([[0.0, 0.0, 1.0, -1.0]] * 3)).obs
    assert (obs[:, 8] == 1).all() and (obs[:, 14] > 0.15).all()
    assert torch.allclose(obs[:, S["tcp_to_obj"]].norm(dim=1), torch.zeros(3), atol=1e-5)
    heights = []
    for _ in range(12):                                              # open and wait
        obs = env.step(torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 3)).obs
        heights.append(obs[:, 14])
    assert (obs[:, 8] == 0).all()
    assert (heights[0] > 0.1).all()                                  # falls over several steps
    assert (heights[1] < heights[0]).all() and (heights[2] < heights[1]).all()
    assert torch.allclose(heights[-1], torch.full((3,), HALF))       # rests on the table


def test_terminated_on_success_and_truncated_at_50():
    env = PickCubeLite(64, seed=0, autoreset=False)
    obs = env.reset(seed=0)
    for t in range(1, 51):
        r = env.step(scripted_pickcube_action(obs))
        obs = r.obs
        assert torch.equal(r.terminated, r.success)
        assert bool(r.truncated.all()) == (t == 50) and bool(r.truncated.any()) == (t == 50)
    assert (env.elapsed_steps() == 50).all()


def test_autoreset_gives_new_episode_and_final_obs():
    env = PickCubeLite(32, seed=0, autoreset=True)
    obs = env.reset(seed=0)
    ended = 0
    for t in range(50):
        r = env.step(scripted_pickcube_action(obs))
        d = r.done
        nd = ~d
        assert torch.equal(r.obs[nd], r.final_obs[nd])
        if d.any():
            ended += int(d.sum())
            assert (r.final_obs[d] != r.obs[d]).any(dim=1).all()
            new = r.obs[d]
            assert (new[:, S["tcp_vel"]] == 0).all() and (new[:, 8] == 0).all()
            assert torch.allclose(new[:, 3], torch.full((len(new),), 0.04))
            assert (env.elapsed_steps()[d] == 0).all()
            assert torch.equal(r.terminated[d], r.success[d]) and r.success[d].all()
        obs = r.obs
    assert ended >= 30      # the scripted policy ends (nearly) every episode by success
    # synchronised truncation: every env restarts at step 50
    env2 = PickCubeLite(8, seed=0, autoreset=True)
    env2.reset(seed=0)
    for t, a in enumerate(torch.zeros(50, 8, 4)):
        r = env2.step(a)
        assert bool(r.truncated.all()) == (t == 49)
    assert (r.final_obs != r.obs).any(dim=1).all() and (r.obs[:, S["gripper"]] == 0.04).all()
    assert (env2.elapsed_steps() == 0).all()


def test_single_env_final_obs_and_snapshots_survive_an_autoreset():
    """With one env, obs/final_obs/snapshots must be copies: an autoreset must not overwrite them."""
    env = PickCubeLite(1, seed=0, autoreset=True)
    ref = PickCubeLite(1, seed=0, autoreset=False)           # same episode, never reset
    obs, ref_obs = env.reset(seed=0), ref.reset(seed=0)
    first_obs = obs.clone()
    snap = env.snapshot()
    snap_x, snap_i = snap.x.clone(), snap.i.clone()
    actions = rand_actions(1, 50, seed=3)
    for t in range(50):
        r, rr = env.step(actions[t]), ref.step(actions[t])
    assert bool(r.truncated.all())
    assert torch.equal(r.final_obs, rr.obs)                 # the episode's last obs, not the new one's first
    assert (r.final_obs != r.obs).any()
    assert torch.equal(obs, first_obs) and torch.equal(snap.x, snap_x) and torch.equal(snap.i, snap_i)


def test_ignore_terminations_keeps_50_step_episodes():
    env = PickCubeLite(32, seed=0, autoreset=True, ignore_terminations=True)
    obs = env.reset(seed=0)
    succ = torch.zeros(32, dtype=torch.bool)
    for t in range(1, 51):
        r = env.step(scripted_pickcube_action(obs))
        obs = r.obs
        succ |= r.success
        assert not r.terminated.any()
        assert bool(r.done.any()) == (t == 50) and bool(r.done.all()) == (t == 50)
    assert succ.float().mean() > 0.9
    assert (env.elapsed_steps() == 0).all()


def test_dense_reward_range_and_ordering():
    env = PickCubeLite(256, seed=0, reward_mode="dense", autoreset=True)
    obs = env.reset(seed=0)
    rewards, success_r = [], []
    for t in range(60):
        a = scripted_pickcube_action(obs) if t % 2 else torch.rand(256, 4) * 2 - 1
        r = env.step(a)
        rewards.append(r.reward); success_r.append(r.reward[r.success])
        obs = r.obs
    allr = torch.cat(rewards)
    assert allr.dtype == torch.float32 and (allr >= 0).all() and (allr <= 1).all()
    assert torch.allclose(torch.cat(success_r), torch.tensor(1.0))
    # closer is better; grasped is better than not grasped
    zero = torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 4)
    env = PickCubeLite(4, seed=2, reward_mode="dense", autoreset=False)
    env.reset(seed=2)
    far = env.step(zero).reward
    env.reset(seed=2)
    env.restore(cube_in_gripper_state(env))
    near = env.step(zero).reward
    for _ in range(3):
        held = env.step(torch.tensor([[0.0, 0.0, 0.0, -1.0]] * 4))
    assert (held.obs[:, 8] == 1).all()
    assert (far < near).all() and (near + 0.15 < held.reward).all()
    sparse = PickCubeLite(4, seed=2, reward_mode="sparse")
    sparse.reset(seed=2)
    assert set(sparse.step(zero).reward.tolist()) <= {0.0, 1.0}


def test_snapshot_restore_replays_exactly_across_episode_boundaries():
    env = PickCubeLite(64, seed=0, reward_mode="dense", autoreset=True)
    obs = env.reset(seed=0)
    for t in range(30):
        obs = env.step(scripted_pickcube_action(obs)).obs
    snap, obs0 = env.snapshot(), obs
    def play():
        o, out = obs0, []
        for t in range(45):     # crosses successes (terminations) and the step-50 truncation
            a = scripted_pickcube_action(o)
            a[1::2] = torch.sin(torch.arange(32.0)[:, None] * 4 + t)   # odd envs never succeed
            r = env.step(a)
            out.append((r.obs, r.reward, r.final_obs, r.terminated, r.truncated))
            o = r.obs
        return out
    first = play()
    assert sum(int(x[4].sum()) for x in first) > 0 and sum(int(x[3].sum()) for x in first) > 0
    assert torch.equal(env.restore(snap), obs0)
    second = play()
    for x, y in zip(first, second):
        assert all(torch.equal(u, v) for u, v in zip(x, y))
    # the snapshot is a copy: stepping did not change it
    assert torch.equal(env.restore(snap), obs0)


def test_select_clones_into_k_envs():
    env = PickCubeLite(10, seed=0, autoreset=True)
    obs = env.reset(seed=0)
    for a in rand_actions(10, 5, seed=4):
        obs = env.step(a).obs
    snap = env.snapshot()
    K = 6
    rollout = PickCubeLite(K, seed=123, autoreset=True)
    start = rollout.restore(snap.select([3] * K))
    assert torch.equal(start, obs[[3] * K])
    assert (rollout.elapsed_steps() == 5).all()
    acts = rand_actions(K, 60, seed=7)
    acts[:, 0] = acts[:, 1]                          # clones 0 and 1 get identical actions
    ref = PickCubeLite(10, seed=0, autoreset=True)
    ref.restore(snap)
    for a in acts:
        r = rollout.step(a)
        full = torch.zeros(10, 4)
        full[3] = a[0]
        rr = ref.step(full)
        assert torch.equal(r.obs[0], r.obs[1]) and torch.equal(r.obs[0], rr.obs[3])
    assert not torch.equal(r.obs[0], r.obs[2])       # different actions diverge
    # index tensors, cat and length checks
    two = PickCubeLiteState.cat([snap.select(torch.tensor([0, 1])), snap.select([9])])
    assert len(two) == 3 and torch.equal(two.elapsed, snap.elapsed[[0, 1, 9]])
    with pytest.raises(EnvError):
        rollout.restore(snap)
    with pytest.raises(EnvError):
        env.restore(snap.select([0, 1]))


def test_make_env_builds_pickcube_lite():
    env = make_env("pickcube-lite", 5, seed=3, reward_mode="dense", autoreset=False, ignore_terminations=True)
    assert isinstance(env, PickCubeLite) and env.num_envs == 5 and env.reward_mode == "dense"
    assert not env.autoreset and env.ignore_terminations
    obs = env.reset(seed=3)
    assert torch.equal(obs, PickCubeLite(5, seed=0).reset(seed=3))
    with pytest.raises(EnvError):
        env.step(torch.zeros(4, 4))
