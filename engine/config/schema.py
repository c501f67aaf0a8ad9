"""The run configuration: every key a preset or an override may set, with its type, default,
allowed range and meaning. Key names are the seed's flag names (interfaces.md).

`RunConfig` is the one typed object the worker runs; presets + overrides + checkpoint metadata
are resolved into it by `engine.config.loading`. Field metadata (`choices`, `min`, `max`,
`min_exclusive`, `help`) is what the loader checks values against.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _f(default: Any, help: str, **meta: Any):
    return field(default=default, metadata={"help": help, **meta})


CHECKPOINT_KEYS = ("checkpoint", "critic_checkpoint", "optimal_checkpoint", "data_checkpoint")

# Controllers. The seed ran ManiSkill's PickCube-v1 with pd_joint_delta_pos (8 actions: 7 joint deltas and
# the gripper); pickcube-lite has one controller, a pd_ee_delta_pos look-alike (4 actions).
SEED_CONTROL_MODE = "pd_joint_delta_pos"
LITE_CONTROL_MODE = "pd_ee_delta_pos"
# action size of the Panda arm (every ManiSkill table-top task the playground names) per controller
PANDA_ACTION_DIMS = {"pd_joint_delta_pos": 8, "pd_joint_pos": 8, "pd_joint_target_delta_pos": 8, "pd_joint_vel": 8,
                     "pd_ee_delta_pos": 4, "pd_ee_target_delta_pos": 4, "pd_ee_delta_pose": 7,
                     "pd_ee_target_delta_pose": 7}


def resolved_control_mode(env_id: str, control_mode: str) -> str:
    """The controller an env id runs with: 'auto' = the seed's for maniskill: envs, pickcube-lite's own."""
    if control_mode and control_mode != "auto":
        return control_mode
    return SEED_CONTROL_MODE if env_id.startswith("maniskill:") else LITE_CONTROL_MODE


def expected_action_dim(env_id: str, control_mode: str) -> int | None:
    """The action size the env takes with that controller (None = not known without building it)."""
    mode = resolved_control_mode(env_id, control_mode)
    if env_id == "pickcube-lite":
        return 4 if mode == LITE_CONTROL_MODE else None
    return PANDA_ACTION_DIMS.get(mode)


@dataclass
class RunConfig:
    # --- what to run -----------------------------------------------------------------------
    env: str = _f("pickcube-lite", "environment id: pickcube-lite or maniskill:<TaskId>")
    seed: int = _f(0, "random seed (envs, networks, sampling)", min=0, max=2**31 - 1)
    exp_name: str = _f("", "experiment name; empty = derived from the config")
    regime: str = _f("online", "online: collect with the current policy every iteration; offline: one fixed dataset",
                     choices=("online", "offline"))
    estimator: str = _f("gae", "advantage estimator", choices=("gae", "mc", "iql", "iql-v-gae", "td", "sarsa", "rank-q",
                                                               "two-stage"))
    update: str = _f("ppo", "policy update rule", choices=("ppo", "awr", "recap"))

    # --- checkpoints (role name, seed name, path, or 'none') -------------------------------
    checkpoint: str = _f("start", "policy to finetune (role, seed name, path or none)")
    critic_checkpoint: str = _f("none", "pretrained critic V(s) (role, seed name, path or none)")
    optimal_checkpoint: str = _f("optimal", "policy used for MC re-rollouts when rollout_policy = optimal")
    data_checkpoint: str = _f("expert", "policy that collects the offline dataset")

    # --- collection ------------------------------------------------------------------------
    num_envs: int = _f(100, "parallel training envs", min=1, max=65_536)
    num_steps: int = _f(50, "steps per env per iteration (rollout length)", min=1, max=100_000)
    total_timesteps: int = _f(50_000, "online: collected env steps in total (MC re-rollouts not counted)", min=1,
                              max=10**11)
    num_iterations: int = _f(100, "offline: number of update iterations over the fixed dataset", min=1,
                             max=10**6)

    # --- discounting / advantages ----------------------------------------------------------
    gamma: float = _f(0.8, "discount factor", min=0.0, max=1.0, min_exclusive=True)
    gae_lambda: float = _f(0.9, "GAE lambda", min=0.0, max=1.0)
    mc_samples: int = _f(16, "MC re-rollouts per (s, a) and per s (k in MC-k)", min=1, max=4096)
    rollout_policy: str = _f("optimal", "policy that plays MC re-rollouts", choices=("optimal", "current", "data"))
    mc_deterministic: bool = _f(False, "MC re-rollouts act with the policy mean instead of sampling")
    mc_baseline: str = _f("mc", "MC advantage baseline: mc = mean of k rollouts from s; critic = V(s) of the critic",
                          choices=("mc", "critic"))
    mc_horizon_tol: float = _f(1e-4, "stop MC branches once gamma^t falls below this (bias <= tol / (1 - gamma))",
                               min=0.0, max=1.0)
    mc_full_budget: bool = _f(True, "MC branches get a full episode (max_episode_steps) from the restored state, as "
                                    "the seed resets the elapsed-step counter; false = only the steps the visited "
                                    "episode had left")
    iql_expectile_tau: float = _f(0.7, "IQL expectile tau for V", min=0.0, max=1.0, min_exclusive=True)
    iql_steps: int = _f(2000, "IQL Q/V gradient steps per fit", min=1, max=10**7)
    td_n: int = _f(20, "td: steps of the n-step TD advantage with the critic's V (the seed: TD(1) rho 0.07, TD(5) 0.34, "
                       "TD(20) 0.96)", min=1, max=100_000)
    sarsa_target: str = _f("td", "sarsa: td = IQL's critic at tau 0.5 (Q on r + gamma V(s')), the seed's definition; "
                                 "mc = Q and V regressed on the data's discounted returns", choices=("td", "mc"))
    fit_steps: int = _f(2000, "sarsa / rank-q / two-stage: gradient steps of each network fit", min=1, max=10**7)
    rank_neighbours: int = _f(8, "rank-q: each sample is ranked against its k nearest states of other trajectories",
                              min=1, max=1024)
    regress_advantages: bool = _f(False, "fit a network to the advantages and use its predictions (seed finding 9)")
    reward_scale: float = _f(1.0, "multiply rewards by this before estimating advantages", min=0.0, min_exclusive=True)

    # --- policy update ---------------------------------------------------------------------
    update_epochs: int = _f(4, "passes over each batch per iteration", min=1, max=100_000)
    num_minibatches: int = _f(32, "minibatches per epoch", min=1, max=1_000_000)
    learning_rate: float = _f(3e-4, "policy (and critic) Adam learning rate", min=0.0, min_exclusive=True)
    target_kl: float = _f(100.0, "PPO: stop the epoch loop when approx KL exceeds this (100 = off)", min=0.0,
                          min_exclusive=True)
    clip_coef: float = _f(0.2, "PPO ratio clip", min=0.0, min_exclusive=True)
    ent_coef: float = _f(0.0, "PPO entropy bonus", min=0.0)
    vf_coef: float = _f(0.5, "PPO value loss weight", min=0.0)
    max_grad_norm: float = _f(0.5, "gradient norm clip", min=0.0, min_exclusive=True)
    norm_adv: bool = _f(True, "PPO: standardise advantages per minibatch")
    warmup_iters: int = _f(0, "PPO: iterations that train only the critic before the policy moves", min=0,
                            max=10**6)
    awr_beta: float = _f(0.5, "AWR temperature: weights exp(A / beta)", min=0.0, min_exclusive=True)
    awr_max_weight: float = _f(20.0, "AWR weight clip", min=0.0, min_exclusive=True)
    awr_normalize_adv: bool = _f(True, "AWR: standardise advantages over the whole batch before exp(A / beta) "
                                       "(the seed's norm_adv; false = raw advantages)")
    awr_rescale_minibatch: bool = _f(True, "AWR: rescale the weights to mean 1 within each minibatch (the seed's "
                                           "form; false = the clipped weights as they are)")
    recap_alpha: float = _f(1.0, "RECAP: weight of the push-away term on negative advantages (0 = AWR on the "
                                 "positives only)", min=0.0)
    learn_logstd: bool = _f(True, "train the policy's log-std with its mean, as the seed's AWR and PPO do "
                                  "(false keeps the checkpoint's, e.g. -1.5)")

    # --- critic ----------------------------------------------------------------------------
    critic_layers: int = _f(3, "hidden layers of a freshly built critic", min=1, max=64)
    critic_width: int = _f(256, "hidden width of a freshly built critic", min=1, max=16_384)

    # --- evaluation / recording ------------------------------------------------------------
    deterministic_eval: bool = _f(True, "evaluate with the policy mean (false = sample actions: noisy)")
    num_eval_envs: int = _f(100, "evaluation episodes per evaluation", min=1, max=65_536)
    eval_every: int = _f(1, "evaluate every N iterations", min=1, max=10**6)
    save_every: int = _f(1, "save the policy every N iterations", min=1, max=10**6)
    device: str = _f("cpu", "torch device for networks (cpu or cuda)", choices=("cpu", "cuda"))
    control_mode: str = _f("auto", "controller: auto = the seed's pd_joint_delta_pos (8 actions) for maniskill: "
                                   "envs, pd_ee_delta_pos (4) for pickcube-lite (its only one); or a ManiSkill "
                                   "control mode", choices=("auto", *PANDA_ACTION_DIMS))

    @property
    def effective_control_mode(self) -> str:
        return resolved_control_mode(self.env, self.control_mode)

    # --- bookkeeping (set by the launcher, not by users) -----------------------------------
    preset: str = _f("", "preset the config came from")
    command: str = _f("", "the full command line that launched the run")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def online_iterations(self) -> int:
        return max(1, self.total_timesteps // self.batch_size)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(RunConfig)}


def field_type(name: str) -> type:
    """The Python type of a config key (bool, int, float or str)."""
    t = FIELDS[name].type
    return {"str": str, "int": int, "float": float, "bool": bool}[t] if isinstance(t, str) else t
