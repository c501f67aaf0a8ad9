"""The real ManiSkill3 PickCube-v1 behind BatchedEnv (engine/envs/maniskill/), on the CPU backend.

mani_skill and sapien are project dependencies: these tests never skip on ImportError. Worker
subprocesses are started sparingly (one shared 2-env batch, plus the start-failure and killed-parent
checks); single envs run in-process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from engine.envs import EnvError, make_env
from engine.envs.maniskill import adapter
from engine.envs import sapien_headless as sh
from engine.envs.maniskill import ManiSkillEnv, ManiSkillState
from engine.envs.maniskill.gpu_batch import GpuBatch

TASK = "maniskill:PickCube-v1"
# ManiSkill calls np.isnan on torch tensors (NumPy 2 deprecation, harmless)
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(pid: int) -> set[int]:
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().split(")")[-1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(d))
    return out


def _wait_dead(pids, timeout=15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def scripted(obs: torch.Tensor, noise: float = 0.0, gen: torch.Generator | None = None) -> torch.Tensor:
    """A crude pick-and-place policy for PickCube-v1's 42-float state (enough to grasp and succeed)."""
    acts = []
    for o in obs:
        tcp, goal, cube, grasped = o[19:22], o[26:29], o[29:32], o[18] > 0.5
        a = torch.zeros(4)
        d = cube - tcp
        if grasped:
            a[:3], a[3] = (goal - tcp) * 10, -1
        elif d[:2].norm() > 0.01:
            a[:3], a[3] = torch.stack([d[0], d[1], 0.05 - tcp[2] + cube[2]]) * 10, 1
        elif d[2].abs() > 0.005:
            a[:3], a[3] = d * 10, 1
        else:
            a[3] = -1
        acts.append(a)
    a = torch.stack(acts)
    if noise:
        a = a + noise * torch.randn(a.shape, generator=gen)
    return a.clamp(-1, 1)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _rollout(env, actions):
    """Step through `actions` [T, N, A]; every StepResult field per step."""
    out = []
    for a in actions:
        r = env.step(a)
        out.append((r.obs, r.reward, r.terminated, r.truncated, r.success, r.final_obs))
    return out


@pytest.fixture(scope="module")
def env2():
    env = make_env(TASK, 2, seed=0)
    yield env
    env.close()


# ---------------------------------------------------------------------------- headless stand-in
def test_stand_in_decision_follows_the_probe():
    assert sh.needs_stand_in(probe=lambda: True, environ={}) is False
    assert sh.needs_stand_in(probe=lambda: False, environ={}) is True

    def broken():
        raise RuntimeError("failed to find a rendering device")

    assert sh.needs_stand_in(probe=broken, environ={}) is True
    assert sh.needs_stand_in(probe=lambda: True, environ={sh.ENV_VAR: "1"}) is True
    assert sh.needs_stand_in(probe=lambda: False, environ={sh.ENV_VAR: "0"}) is False
    m = sh.HeadlessRenderMaterial(base_color=[1, 0, 0, 1], roughness=0.5)
    m.set_metallic(0.2)
    assert m.get_metallic() == 0.2 and m.roughness == 0.5 and m.get_base_color() == [1, 0, 0, 1]
    assert m.specular is None


def test_stand_in_installed_only_without_rendering_device():
    env = ManiSkillEnv("PickCube-v1", 1, seed=0)   # in-process: this process now runs sapien
    try:
        has_device = sh.probe_rendering_device()
        assert sh.stand_in_installed() == (not has_device) == sh.needs_stand_in(lambda: has_device)
    finally:
        env.close()


# ---------------------------------------------------------------------------- shapes, rewards, episodes
def test_shapes_and_dtypes(env2):
    obs = env2.reset(seed=0)
    assert env2.env_id == TASK and env2.num_envs == 2
    assert (env2.obs_dim, env2.act_dim, env2.max_episode_steps) == (42, 4, 50)
    assert obs.shape == (2, 42) and obs.dtype == torch.float32
    assert not torch.equal(obs[0], obs[1])          # env i is seeded with seed + i
    r = env2.step(torch.zeros(2, 4))
    assert r.obs.shape == r.final_obs.shape == (2, 42) and r.obs.dtype == r.final_obs.dtype == torch.float32
    assert r.reward.shape == (2,) and r.reward.dtype == torch.float32
    for flag in (r.terminated, r.truncated, r.success):
        assert flag.shape == (2,) and flag.dtype == torch.bool
    e = env2.elapsed_steps()
    assert e.dtype == torch.int64 and e.tolist() == [1, 1]
    with pytest.raises(EnvError):
        env2.step(torch.zeros(3, 4))


def test_truncation_and_autoreset_final_obs():
    auto = ManiSkillEnv("PickCube-v1", 1, seed=7, ignore_terminations=True, autoreset=True)
    keep = ManiSkillEnv("PickCube-v1", 1, seed=7, ignore_terminations=True, autoreset=False)
    try:
        assert torch.equal(auto.reset(seed=7), keep.reset(seed=7))
        gen = torch.Generator().manual_seed(0)
        for t in range(1, 51):
            a = torch.rand(1, 4, generator=gen) * 2 - 1
            ra, rk = auto.step(a), keep.step(a)
            assert ra.reward.dtype == torch.float32 and not ra.terminated.any()
            assert bool(ra.truncated[0]) == (t == 50) == bool(rk.truncated[0])
            assert torch.equal(ra.final_obs, rk.obs)   # the real next state, identical in both envs
            if t < 50:
                assert torch.equal(ra.obs, ra.final_obs)
        assert not torch.equal(ra.obs, ra.final_obs)   # a new episode started
        assert auto.elapsed_steps().tolist() == [0] and keep.elapsed_steps().tolist() == [50]
        assert torch.equal(rk.obs, rk.final_obs)
        r = keep.step(torch.zeros(1, 4))              # stepping past the end: left to the caller
        assert bool(r.truncated[0]) and keep.elapsed_steps().tolist() == [51]
    finally:
        auto.close()
        keep.close()


def test_success_terminates_unless_ignored():
    for ignore in (False, True):
        env = ManiSkillEnv("PickCube-v1", 1, seed=0, ignore_terminations=ignore)
        try:
            obs = env.reset(seed=0)
            for _ in range(50):
                r = env.step(scripted(obs))
                obs = r.obs
                if r.success[0]:
                    break
            assert bool(r.success[0]), "the scripted policy should solve seed 0"
            assert r.reward.tolist() == [1.0]
            assert bool(r.terminated[0]) == (not ignore)
            fin = r.final_obs[0]
            assert float(fin[39:42].norm()) < 0.025                   # obj_to_goal of the real last state
            if ignore:
                assert torch.equal(r.obs, r.final_obs) and env.elapsed_steps().item() > 0
            else:
                assert not torch.equal(r.obs, r.final_obs) and env.elapsed_steps().item() == 0
        finally:
            env.close()


def test_dense_reward_is_normalised():
    env = ManiSkillEnv("PickCube-v1", 1, seed=1, reward_mode="dense")
    try:
        obs = env.reset(seed=1)
        rewards = []
        for _ in range(15):
            r = env.step(scripted(obs))
            obs = r.obs
            rewards.append(r.reward)
        rw = torch.cat(rewards)
        assert rw.dtype == torch.float32 and bool(((rw >= 0) & (rw <= 1)).all()) and float(rw.max()) > 0
    finally:
        env.close()


# ---------------------------------------------------------------------------- determinism, snapshot / restore
def test_seeded_reset_is_reproducible_and_matches_a_single_env(env2):
    single = ManiSkillEnv("PickCube-v1", 1, seed=6)     # in-process; env 1 of env2 gets seed 5 + 1
    try:
        gen = torch.Generator().manual_seed(1)
        actions = torch.rand(20, 2, 4, generator=gen) * 2 - 1
        o1 = env2.reset(seed=5)
        run1 = _rollout(env2, actions)
        o2 = env2.reset(seed=5)
        run2 = _rollout(env2, actions)
        assert torch.equal(o1, o2)
        assert all(_same(a, b) for a, b in zip(run1, run2))
        os_ = single.reset(seed=6)
        assert torch.equal(os_[0], o1[1])
        run3 = _rollout(single, actions[:, 1:2])
        assert all(torch.equal(a[0][1], b[0][0]) for a, b in zip(run1, run3))   # worker == in-process
    finally:
        single.close()


def test_snapshot_restore_replays_exactly_while_grasping(env2):
    gen = torch.Generator().manual_seed(2)
    obs = env2.reset(seed=0)
    for _ in range(12):                        # the scripted policy is holding the cube by now
        obs = env2.step(scripted(obs)).obs
    assert bool((obs[:, 18] > 0.5).any()), "expected a grasp: the contact-rich case"
    snap = env2.snapshot()
    assert isinstance(snap, ManiSkillState) and len(snap) == 2 and snap.elapsed.tolist() == [12, 12]
    actions = torch.stack([scripted(obs, 0.3, gen) for _ in range(10)])
    assert torch.equal(env2.restore(snap), snap.obs)
    assert env2.elapsed_steps().tolist() == [12, 12]
    first = _rollout(env2, actions)
    _rollout(env2, torch.rand(7, 2, 4, generator=gen) * 2 - 1)        # wander off
    assert torch.equal(env2.restore(snap), obs)
    second = _rollout(env2, actions)
    assert all(_same(a, b) for a, b in zip(first, second)), "replay after restore must be bit-identical"


def test_restore_across_an_autoreset_is_exact(env2):
    gen = torch.Generator().manual_seed(3)
    env2.reset(seed=11)
    _rollout(env2, torch.rand(45, 2, 4, generator=gen) * 2 - 1)
    snap = env2.snapshot()
    actions = torch.rand(10, 2, 4, generator=gen) * 2 - 1
    env2.restore(snap)
    first = _rollout(env2, actions)
    assert all(bool(step[3].all()) == (i == 4) for i, step in enumerate(first))   # truncation at 50
    env2.reset(seed=99)
    _rollout(env2, torch.rand(3, 2, 4, generator=gen) * 2 - 1)
    env2.restore(snap)
    second = _rollout(env2, actions)
    assert all(_same(a, b) for a, b in zip(first, second)), "the episodes after the autoreset must match too"


def test_select_clones_one_state_into_every_env(env2):
    gen = torch.Generator().manual_seed(4)
    obs = env2.reset(seed=20)
    for _ in range(10):
        obs = env2.step(scripted(obs)).obs
    snap = env2.snapshot()
    clones = snap.select([0, 0])
    assert len(clones) == 2 and torch.equal(clones.obs[1], snap.obs[0])
    restored = env2.restore(clones)
    assert torch.equal(restored[0], restored[1])
    a = scripted(restored[:1], 0.2, gen)
    for _ in range(12):
        r = env2.step(a.expand(2, 4))
        assert torch.equal(r.obs[0], r.obs[1]) and torch.equal(r.reward[0], r.reward[1])
        a = scripted(r.obs[:1], 0.2, gen)
    swapped = env2.restore(snap.select(torch.tensor([1, 0])))
    assert torch.equal(swapped, snap.obs.flip(0))
    both = ManiSkillState.cat([snap.select([0]), snap.select(torch.tensor([False, True]))])
    assert torch.equal(both.obs, snap.obs) and torch.equal(both.elapsed, snap.elapsed)
    assert all(torch.equal(x, y) for x, y in zip(both.sim["articulations"].values(), snap.sim["articulations"].values()))


def test_restored_branches_do_not_depend_on_history(env2):
    # PhysX keeps hidden history (contact bookkeeping, buffers alternating every sim step): the same
    # state written into envs with different pasts must still replay identically (restore rebuilds).
    single = ManiSkillEnv("PickCube-v1", 1, seed=30)
    try:
        gen = torch.Generator().manual_seed(6)
        obs = env2.reset(seed=0)
        for _ in range(12):
            obs = env2.step(scripted(obs)).obs
        snap = env2.snapshot()
        actions = torch.stack([scripted(obs[:1], 0.3, gen) for _ in range(10)])
        single.reset(seed=31)
        _rollout(single, torch.rand(3, 1, 4, generator=gen) * 2 - 1)     # another past, odd step count
        single.restore(snap.select([0]))
        env2.restore(snap.select([0, 0]))
        here = _rollout(single, actions)
        there = _rollout(env2, actions.expand(-1, 2, -1))
        for a, b in zip(here, there):
            assert torch.equal(a[0][0], b[0][0]) and torch.equal(b[0][0], b[0][1])
    finally:
        single.close()


def test_restore_needs_a_matching_state(env2):
    snap = env2.snapshot()
    with pytest.raises(EnvError, match="num_envs=2"):
        env2.restore(snap.select([0]))
    with pytest.raises(EnvError, match="num_envs=2"):
        env2.restore(ManiSkillState.cat([snap, snap]))
    lite = make_env("pickcube-lite", 2)
    with pytest.raises(EnvError):
        env2.restore(lite.snapshot())


def test_controller_state_of_target_modes_is_restored():
    env = ManiSkillEnv("PickCube-v1", 1, seed=3, control_mode="pd_ee_target_delta_pos")
    try:
        gen = torch.Generator().manual_seed(5)
        obs = env.reset(seed=3)
        for _ in range(8):
            obs = env.step(scripted(obs)).obs
        snap = env.snapshot()
        assert "controller" in snap.sim
        actions = torch.rand(8, 1, 4, generator=gen) * 2 - 1
        env.restore(snap)
        first = _rollout(env, actions)
        _rollout(env, torch.rand(5, 1, 4, generator=gen) * 2 - 1)
        env.restore(snap)
        assert all(_same(a, b) for a, b in zip(first, _rollout(env, actions)))
    finally:
        env.close()


def test_gpu_backend_logic_runs_on_physx_cpu():
    # The physx_cuda path cannot run here; its batching/autoreset/snapshot logic can, on one CPU env.
    b = GpuBatch("PickCube-v1", 1, 0, "sparse", "pd_ee_delta_pos", True, True, None,
                 torch.device("cpu"), sim_backend="physx_cpu")
    try:
        gen = torch.Generator().manual_seed(7)
        for t in range(50):
            r = b.step(torch.rand(1, 4, generator=gen) * 2 - 1)
        assert r.truncated.tolist() == [True] and r.reward.dtype == torch.float32
        assert not torch.equal(r.obs, r.final_obs) and b.u._elapsed_steps.tolist() == [0]
        snap = b.snapshot(TASK)
        actions = torch.rand(6, 1, 4, generator=gen) * 2 - 1
        b.restore(snap)
        first = [b.step(a).obs for a in actions]
        b.restore(snap)
        assert all(torch.equal(x, b.step(a).obs) for x, a in zip(first, actions))
        # the seed's warm-up step on restore leaves nothing behind: elapsed and obs are the snapshot's
        assert b.warmup_on_restore
        assert torch.equal(b.restore(snap), snap.obs) and b.u._elapsed_steps.tolist() == snap.elapsed.tolist()
    finally:
        b.close()


# ---------------------------------------------------------------------------- failures and processes
def test_unknown_task_is_one_clear_env_error():
    with pytest.raises(EnvError) as info:
        make_env("maniskill:Foo-v1", 1)
    msg = str(info.value)
    assert "unknown ManiSkill task 'Foo-v1'" in msg and "PickCube-v1" in msg and "\n" not in msg
    before = _children(os.getpid())
    with pytest.raises(EnvError, match="unknown ManiSkill task 'PickCub-v1'.*PickCube-v1"):
        ManiSkillEnv("PickCub-v1", 2)          # ManiSkill is imported here: checked before any worker starts
    assert not (_children(os.getpid()) - before)


def test_worker_start_failure_is_an_env_error(monkeypatch):
    monkeypatch.setattr(adapter, "check_task_in_parent", lambda task_id: None)
    before = _children(os.getpid())
    with pytest.raises(EnvError, match="unknown ManiSkill task 'PickCub-v1'"):
        ManiSkillEnv("PickCub-v1", 1, in_process=False)   # reported by the worker process
    assert not (_children(os.getpid()) - before), "a failed start must not leave workers behind"


def test_workers_die_with_a_killed_parent():
    script = textwrap.dedent("""
        import sys, time
        from engine.envs.maniskill import ManiSkillEnv
        env = ManiSkillEnv("PickCube-v1", 1, in_process=False)
        print(" ".join(map(str, env.worker_pids)), flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")})
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 1 and _alive(pids[0])
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_dead(pids) == [], "worker outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_close_leaves_no_worker_alive(env2):
    pids = list(env2.worker_pids)
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    env2.close()
    assert _wait_dead(pids, timeout=5) == []
    assert not (set(pids) & _children(os.getpid()))
    with pytest.raises(EnvError, match="closed"):
        env2.step(torch.zeros(2, 4))
    env2.close()                                     # idempotent


def test_several_envs_per_worker_process_match_one_process_per_env():
    """Three envs hosted by two processes step exactly like three envs in this one process (the
    hosting layout changes memory and process count, never the results)."""
    gen = torch.Generator().manual_seed(3)
    actions = torch.rand(12, 3, 4, generator=gen) * 2 - 1
    runs = {}
    for label, kw in (("hosted", dict(procs=2)), ("local", dict(in_process=True))):
        env = ManiSkillEnv("PickCube-v1", 3, seed=4, **kw)
        try:
            if label == "hosted":
                assert len(env.worker_pids) == 2 and env.procs == 2
            out = [env.reset(seed=9)]
            out += [env.step(a).obs for a in actions]
            snap = env.snapshot()
            out.append(env.restore(snap))
            runs[label] = torch.stack(out)
        finally:
            env.close()
    assert torch.equal(runs["hosted"], runs["local"])


def test_default_process_count_is_bounded_by_the_cores(monkeypatch):
    from engine.config.limits import default_procs, usable_cores
    from engine.envs.maniskill import split_envs

    monkeypatch.delenv("PLAYGROUND_MANISKILL_PROCS", raising=False)
    assert default_procs(100) == min(100, usable_cores()) and default_procs(1) == 1
    assert [len(r) for r in split_envs(100, 3)] == [34, 33, 33]
    assert [i for r in split_envs(7, 2) for i in r] == list(range(7))
    with pytest.raises(EnvError, match="procs must be between 1 and num_envs"):
        ManiSkillEnv("PickCube-v1", 2, procs=3)
