"""A stand-in for the minutes-long `run_pretrain`, run through the real pretraining job
(`engine.jobs.pretrain.main`): `python tests/fake_pretrain.py --run-dir DIR`. Tests point
`PLAYGROUND_PRETRAIN_WORKER` at it. $FAKE_PRETRAIN (JSON) sets `iters` (2), `sleep` (0 s per
iteration) and `fail` (raise after the PPO iterations)."""
from __future__ import annotations

import json
import os
import sys
import time


def fake_run_pretrain(env_id, *, seed=0, root=None, progress=None, **kw):
    import engine.checkpoints as ck
    from engine.config.schema import expected_action_dim
    from engine.nets import Actor

    sizes = (ck.env_obs_dim(env_id) or 4, expected_action_dim(env_id, "auto") or 2)  # check compares them

    opts = json.loads(os.environ.get("FAKE_PRETRAIN") or "{}")
    iters = int(opts.get("iters", 2))
    for it in range(1, iters + 1):
        time.sleep(float(opts.get("sleep", 0)))
        progress({"phase": "ppo", "iterations": iters, "iteration": it, "env_steps": 100 * it,
                  "det_sr": min(1.0, 0.3 * it), "stoch_sr": min(1.0, 0.2 * it), "logstd": -0.5, "wall_s": 0.1 * it})
    if opts.get("fail"):
        raise RuntimeError("fake pretraining failed")
    roles = {}
    for role, det in (("start", 0.45), ("expert", 0.97), ("optimal", 0.99)):
        ck.save_checkpoint(ck.ladder_dir(env_id) / f"{role}.pt", env_id=env_id, role=role, iteration=1,
                           actor=Actor(*sizes), det_sr=det, stoch_sr=det - 0.2)
        roles[role] = {"file": f"{role}.pt", "iteration": 1, "det_sr": det, "stoch_sr": det - 0.2, "logstd": -1.5}
        progress({"phase": "ladder", "role": role, **roles[role]})
    from engine.nets import Critic

    for role, on in (("critic-expert", "expert"), ("critic-optimal", "optimal")):
        ck.save_checkpoint(ck.ladder_dir(env_id) / f"{role}.pt", env_id=env_id, role=role, iteration=1,
                           critic=Critic(sizes[0]), gamma=0.8, fitted_on=on, fit_r2=0.9)
        roles[role] = {"file": f"{role}.pt", "iteration": 1, "gamma": 0.8, "fitted_on": on, "fit_r2": 0.9}
        progress({"phase": "ladder", "role": role, **roles[role]})
    index = {"env_id": env_id, "roles": roles, "iterations": []}
    ck.write_index(env_id, index)
    return index


if __name__ == "__main__":
    import engine.train.pretrain as pretrain
    from engine.jobs.pretrain import main

    pretrain.run_pretrain = fake_run_pretrain
    sys.exit(main(sys.argv[1:]))
