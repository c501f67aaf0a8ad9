"""Device equivalence: the same experiment gives the same answer on cpu and cuda.

`python -m engine.bench.devices [--seeds N] [--preset P] [--set key=value ...] [--eval-sets K]`

CPU part (every machine; a few seconds):

- eval set: the twin draws its episode keys from a CPU generator whatever the device
  (engine.envs.pickcube_lite), so cpu and cuda evaluate the same episodes. Printed: the eval
  seed's base key and the start policy's deterministic SR on that set.
- the cause of the old gap: before, the generator lived on the env's device, and CUDA's stream
  (Philox4x32-10, emulated here on the CPU: `cuda_first_randint`) gave another base key, so
  the CUDA runs were all scored on another eval set. Printed: the start policy's SR on the eval
  set the old code drew on CUDA (0.424 measured on an H200, 0.410 on the CPU's set), against
  the spread of its SR over K other 500-episode eval sets.
- numerical paths: the same batch through the fused oneDNN + fast-tanh path (CPU runs) and the
  plain modules (`engine.kernels.plain_path`: what CUDA runs): the largest differences of the
  actor's mean and of one AWR-style gradient, and the start policy's eval SR through each.

GPU part (where torch sees CUDA; otherwise one line says so and the exit status is 0):

- transitions: the start policy drives N envs for one episode on the CPU; at every step the
  CPU state is copied into a CUDA env and both take the same action: observations, rewards
  and flags agree to float tolerance (`TRANSITION_TOL`);
- the start policy's eval SR is identical on cpu and cuda (the same 500 episodes);
- a short finetune (`--preset`, shortened by `--set`; default offline-mc16-awr with MC4 and
  30 iterations), `--seeds` seeds on each device: final SRs whose difference of means has a
  95% confidence interval (Welch's t, scipy) that contains 0.

Exit status 0 when every check that ran passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Sequence

import torch

from ..checkpoints import resolve_checkpoint
from ..config.loading import load_config
from ..envs.pickcube_lite import _M32, PickCubeLite, PickCubeLiteState, _hash32
from ..errors import UserError
from ..kernels import plain_path
from ..runtime import set_threads
from ..train.evaluation import EVAL_SEED_OFFSET, evaluate, make_eval_env
from ..train.finetune import Finetuner, load_policy

ENV = "pickcube-lite"
TRANSITION_TOL = 1e-5          # m, m/s: a float32 step from the same state agrees to this
QUICK = {"mc_samples": 4, "num_iterations": 30}
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


def cuda_first_randint(seed: int) -> int:
    """What `torch.randint(0, 2**32, (1,), generator=torch.Generator('cuda').manual_seed(seed))`
    returns on a CUDA device, computed on the CPU: curand's Philox4x32-10 at counter 0 and key
    `seed` gives four words; torch's 64-bit path joins the first two and takes it mod 2^32."""
    c0, c1, c2, c3 = 0, 0, 0, 0
    k0, k1 = seed & _M32, (seed >> 32) & _M32
    for _ in range(10):
        p0, p1 = _PHILOX_M[0] * c0, _PHILOX_M[1] * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & _M32, p1 & _M32, ((p0 >> 32) ^ c3 ^ k1) & _M32, p0 & _M32
        k0, k1 = (k0 + _PHILOX_W[0]) & _M32, (k1 + _PHILOX_W[1]) & _M32
    return c1


def cpu_first_randint(seed: int) -> int:
    return int(torch.randint(0, 2**32, (1,), generator=torch.Generator().manual_seed(seed), device="cpu").item())


@torch.no_grad()
def sr_on_base(env: PickCubeLite, actor, base: int) -> float:
    """Deterministic success_once rate of `actor` on the eval episodes whose base key is `base`."""
    env._key.copy_(_hash32((torch.arange(env.num_envs, device=env.device) + base) & _M32))
    env._episode.zero_()
    env._reset_envs(None)
    obs = env._obs()
    once = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
    for _ in range(env.max_episode_steps):
        res = env.step(actor.act(obs, deterministic=True))
        once |= res.success
        obs = res.obs
    return float(once.float().mean())


def start_policy(env):
    """The ladder's `start` policy (built, else shipped) on the env's device."""
    return load_policy(str(resolve_checkpoint("start", ENV).path), env)


def eval_set_part(eval_sets: int, num_eval: int = 500) -> dict:
    env = make_eval_env(ENV, num_eval, device="cpu")
    actor = start_policy(env)
    cpu_base, cuda_base = cpu_first_randint(EVAL_SEED_OFFSET), cuda_first_randint(EVAL_SEED_OFFSET)
    sr = evaluate(env, actor)["sr"]
    old_cuda = sr_on_base(env, actor, cuda_base)
    others = torch.tensor([sr_on_base(env, actor, cpu_first_randint(10_000 + s)) for s in range(eval_sets)])
    mean, sd = float(others.mean()), float(others.std())
    print(f"eval set: episode keys drawn on the CPU on every device; base key {cpu_base} (eval seed "
          f"{EVAL_SEED_OFFSET}); start policy det SR {sr:.3f} on {num_eval} episodes")
    print(f"the old gap's cause: the eval set the old code drew on CUDA (Philox base key {cuda_base}): start "
          f"policy {old_cuda:.3f} (H200 measured 0.424); over {eval_sets} other eval sets {mean:.3f} +- {sd:.3f} "
          f"(sd; min {float(others.min()):.3f}, max {float(others.max()):.3f})")
    return {"sr": sr, "old_cuda_sr": old_cuda, "cpu_base": cpu_base, "cuda_base": cuda_base,
            "other_mean": mean, "other_sd": sd}


def numeric_paths_part(rows: int = 4096) -> dict:
    """The same batch (states the start policy visits) through the fused and the plain path."""
    env = PickCubeLite(rows // 16, seed=7)
    actor = start_policy(env)
    obs = [env.reset(seed=7)]
    for _ in range(15):
        obs.append(env.step(actor.act(obs[-1], deterministic=True)).obs)
    x = torch.cat(obs)
    act = actor.act(x, generator=torch.Generator().manual_seed(0))

    def run() -> tuple[torch.Tensor, torch.Tensor, float]:
        actor.zero_grad(set_to_none=True)
        mean = actor.mean(x).detach()
        (-actor.log_prob(x, act).mean()).backward()
        grad = torch.cat([p.grad.reshape(-1) for p in actor.parameters() if p.grad is not None])
        return mean, grad, evaluate(make_eval_env(ENV, 500, device="cpu"), actor)["sr"]

    m_fused, g_fused, sr_fused = run()
    with plain_path():
        m_plain, g_plain, sr_plain = run()
    out = {"mean_max_abs": float((m_fused - m_plain).abs().max()),
           "grad_rel": float((g_fused - g_plain).norm() / g_plain.norm()),
           "sr_fused": sr_fused, "sr_plain": sr_plain}
    print(f"numerical paths on {x.shape[0]} visited states: actor mean max |fused - plain| "
          f"{out['mean_max_abs']:.2e}; AWR-style gradient relative difference {out['grad_rel']:.2e}; "
          f"start policy eval SR fused {sr_fused:.3f}, plain {sr_plain:.3f}")
    return out


def _to(state: PickCubeLiteState, device) -> PickCubeLiteState:
    return PickCubeLiteState(state.x.to(device), state.i.to(device))


@torch.no_grad()
def transitions_check(device: str = "cuda", num_envs: int = 2048, seed: int = 0) -> dict:
    """One episode of the start policy (sampling, CPU noise) on the CPU; at every step the CUDA
    env is set to the CPU state and both take the same action."""
    cpu, dev = PickCubeLite(num_envs, seed=seed), PickCubeLite(num_envs, seed=seed, device=device)
    actor = start_policy(cpu)
    gen = torch.Generator().manual_seed(seed)
    obs = cpu.reset(seed=seed)
    worst = float((obs - dev.reset(seed=seed).cpu()).abs().max())  # the same initial states
    flags = 0
    for _ in range(cpu.max_episode_steps):
        dev.restore(_to(cpu.snapshot(), device))
        a = actor.act(obs, generator=gen)
        rc, rd = cpu.step(a), dev.step(a.to(device))
        for name in ("obs", "final_obs", "reward"):
            worst = max(worst, float((getattr(rc, name) - getattr(rd, name).cpu()).abs().max()))
        flags += sum(int((getattr(rc, f) != getattr(rd, f).cpu()).sum()) for f in ("terminated", "truncated", "success"))
        obs = rc.obs
    ok = worst <= TRANSITION_TOL and flags == 0
    print(f"transitions cpu vs {device} ({num_envs} envs x {cpu.max_episode_steps} steps from the same states "
          f"and actions): max |diff| {worst:.2e} (tolerance {TRANSITION_TOL:.0e}), flags differing {flags}: "
          f"{'PASS' if ok else 'FAIL'}")
    return {"max_abs": worst, "flags": flags, "ok": ok}


def eval_check(device: str = "cuda") -> dict:
    res = {}
    for d in ("cpu", device):
        env = make_eval_env(ENV, 500, device=d)
        res[d] = evaluate(env, start_policy(env))
    ok = res["cpu"]["sr"] == res[device]["sr"] and res["cpu"]["sr_at_end"] == res[device]["sr_at_end"]
    print(f"start policy eval SR cpu {res['cpu']['sr']:.3f} / {device} {res[device]['sr']:.3f} (at end "
          f"{res['cpu']['sr_at_end']:.3f} / {res[device]['sr_at_end']:.3f}): {'PASS' if ok else 'FAIL'}")
    return {"cpu": res["cpu"]["sr"], device: res[device]["sr"], "ok": ok}


def final_srs(preset: str, overrides: dict, seeds: Sequence[int], device: str) -> list[float]:
    out = []
    for s in seeds:
        t0 = time.perf_counter()
        f = Finetuner(load_config(preset, overrides, env=ENV, seed=s), device=device)
        f.run()
        f.close()
        out.append(float(f.last_eval["sr"]))
        print(f"  {preset} seed {s} on {device}: final SR {out[-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def finetune_check(preset: str, overrides: dict, seeds: Sequence[int], device: str = "cuda") -> dict:
    from scipy import stats  # lazy: scipy.stats takes ~4.5 s to import; only this check needs it

    cpu = final_srs(preset, overrides, seeds, "cpu")
    dev = final_srs(preset, overrides, seeds, device)
    test = stats.ttest_ind(dev, cpu, equal_var=False)
    ci = test.confidence_interval(0.95)
    lo, hi = float(ci.low), float(ci.high)
    ok = (lo <= 0.0 <= hi) if math.isfinite(lo) else all(a == b for a, b in zip(cpu, dev))
    sem = lambda v: stats.sem(v) if len(v) > 1 else float("nan")
    print(f"finetune {preset} {overrides}, seeds {list(seeds)}: final SR cpu {sum(cpu) / len(cpu):.3f} +- "
          f"{sem(cpu):.3f}, {device} {sum(dev) / len(dev):.3f} +- {sem(dev):.3f} (se); {device} - cpu 95% CI "
          f"[{lo:+.3f}, {hi:+.3f}] (Welch): {'PASS' if ok else 'FAIL'}")
    return {"cpu": cpu, device: dev, "ci95": (lo, hi), "ok": ok}


def _overrides(pairs: Sequence[str]) -> dict:
    out: dict = dict(QUICK)
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise ValueError(f"--set {p!r}: use key=value (a config key, e.g. num_iterations=30)")
        out[key.strip()] = value.strip()
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m engine.bench.devices", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=4, help="finetune seeds 0..N-1 on each device")
    p.add_argument("--preset", default="offline-mc16-awr")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"config overrides of the short finetune (defaults: {QUICK})")
    p.add_argument("--eval-sets", type=int, default=20, help="other eval sets for the spread of one policy's SR")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--cpu-only", action="store_true", help="skip the cpu/cuda checks even where a GPU exists")
    a = p.parse_args(argv)
    if a.eval_sets < 2 or a.seeds < 1:
        p.error("--eval-sets must be >= 2 (a spread needs two) and --seeds >= 1")
    try:
        a.overrides = _overrides(a.set)  # bad input stops here, before any work
    except ValueError as e:
        p.error(str(e))
    set_threads(a.threads)
    try:
        return _run(a)
    except UserError as e:
        raise SystemExit("error: " + "; ".join(e.lines())) from None


def _run(a: argparse.Namespace) -> dict:
    out = {"eval_set": eval_set_part(a.eval_sets), "numeric_paths": numeric_paths_part()}
    if a.cpu_only or not torch.cuda.is_available():
        why = "--cpu-only" if a.cpu_only else (f"torch {torch.__version__} sees no CUDA device here (CUDA build: "
                                               f"{torch.version.cuda or 'none'})")
        print(f"cpu/cuda checks skipped: {why}; they run where a GPU is visible")
        out["ok"] = True
        return out
    print(f"cuda: {torch.cuda.get_device_name(0)}, torch {torch.__version__} (CUDA {torch.version.cuda})")
    out["transitions"] = transitions_check()
    out["eval"] = eval_check()
    out["finetune"] = finetune_check(a.preset, a.overrides, range(a.seeds))
    out["ok"] = all(out[k]["ok"] for k in ("transitions", "eval", "finetune"))
    print("device equivalence:", "PASS" if out["ok"] else "FAIL")
    return out


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
