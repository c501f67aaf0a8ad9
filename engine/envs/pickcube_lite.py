"""PickCube-Lite: a torch-vectorised kinematic twin of ManiSkill3's PickCube-v1.

Thousands of envs step in one process on CPU: all state lives in batched tensors and no Python
loop runs over envs. The task keeps what makes PickCube hard while dropping the physics engine:

- A gripper point (the TCP) driven by `pd_ee_delta_pos`-like actions in [-1, 1]^4 (clipped):
  xyz is a velocity command of up to `VMAX` m per control step, tracked with lag (the velocity
  moves a fraction `ALPHA` of the way to the command each step), so stopping takes a few steps;
  the workspace box and the table (TCP z >= `Z_MIN`) clamp the TCP. The 4th entry is an absolute
  gripper target like ManiSkill's: [-1, 1] -> finger position [-0.01, 0.04] m (-1 closed,
  +1 open); the fingers move at most `FINGER_SPEED` per step (about 3 steps open -> closed).
- A cube (half-size 0.02 m) is grasped when the fingers close through the cube's width
  (finger position crosses 0.02) while the TCP is within `GRASP_RADIUS` of the cube centre; the
  fingers then rest on the cube. A grasped cube keeps its offset to the TCP; opening the fingers
  releases it and it falls under gravity (a few steps from the air) to rest on the table at
  z = 0.02. Without a grasp the cube is not pushed (no contacts).
- The cube spawns at xy ~ U[-0.1, 0.1]^2, the goal at xy ~ U[-0.1, 0.1]^2 and z = 0.02 + U*0.3
  (PickCube's rule), the TCP at (0, 0, 0.18) + U[-0.02, 0.02]^3 with open fingers.
- success = cube within 0.025 m of the goal AND the TCP nearly still (speed < 0.1 m/s, i.e.
  0.005 m per step: the analogue of PickCube's "robot static", joint velocities < 0.2).
- Rewards: `sparse` = 1.0 on a success step; `dense` = PickCube's staged reward normalised by 5:
  reach (1 - tanh(5 d_tcp_obj)) + grasped + grasped * place (1 - tanh(5 d_obj_goal)) +
  placed * static (1 - tanh(10 * tcp speed in m/s)), and 5 on success.
- 20 Hz control (`DT` = 0.05 s), 50-step episodes, episode/autoreset semantics of `base.py`.

Training note (as in the real task): hovering with the cube on the goal but not quite still pays
~0.6-0.8 per step, so with terminate-on-success and no bootstrap after a termination (gamma 0.8:
1.0 once < ~3 from hovering) PPO from scratch first learns to succeed (det SR > 0.9 after ~1-1.6 M
steps) and then drifts to hovering (det SR collapses by ~2 M). Training with
`ignore_terminations=True` (ManiSkill's PPO baseline did so) removes the incentive.

Observation (float32, `OBS_LAYOUT`, 21 values; positions in m, velocities in m/s). In the twin
the arm "qpos" and the TCP pose coincide, so the TCP position appears once; orientations are
constant and omitted:

    0:3   tcp_pos       TCP position ("qpos" / tcp_pose)
    3     gripper       finger position, 0 (closed) .. 0.04 (open); 0.02 while holding the cube
    4:7   tcp_vel       TCP velocity ("qvel")
    7     gripper_vel   finger velocity
    8     is_grasped    1.0 / 0.0
    9:12  goal_pos
    12:15 obj_pos       cube centre
    15:18 tcp_to_obj    obj_pos - tcp_pos
    18:21 obj_to_goal   goal_pos - obj_pos

Internally the batch lives in one float32 tensor [27, N] (the 21 observation rows, then
grasp_offset and obj_vel) and one int64 tensor [3, N] (elapsed, key, episode): component-major
rows keep every operation contiguous; `obs` is a contiguous [N, 21] copy.

Randomness and determinism: the env owns a `torch.Generator` that draws a base key at
construction / `reset(seed)` / `reset()`; env i's stream is key_i = hash(base + i) and its e-th
episode's initial state is a counter-based hash of (key_i, e). The generator is on the CPU
whatever `env.device` is (the key and the hash are integers; only they move to the device), so a
seed gives the very same episodes on every device: the eval set, the offline dataset's episodes
and the training envs' episodes are part of what makes "the same experiment". (A generator on
`env.device` made them differ: CUDA's Philox stream gives another base key for the same seed, and
the start policy scored 0.424 on the CUDA eval set against 0.410 on the CPU one.) Dynamics are
deterministic, so the state of an env is fully described by its tensors plus (key, episode
counter), which `snapshot()` stores: restore + same actions => bit-identical replay, across
autoresets too. `EnvState.select` copies (key, counter) with the state, so clones of one env
that autoreset start identical new episodes (shared randomness, by design); clones stepped with
different actions diverge as expected. Env i's episodes do not depend on `num_envs`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import BatchedEnv, EnvError, EnvState, StepResult

# Geometry and dynamics (metres, seconds; one control step = DT).
DT = 0.05                      # 20 Hz control
HALF = 0.02                    # cube half-size = resting cube centre z
VMAX = 0.03                    # m per step commanded at |action| = 1
ALPHA = 0.5                    # velocity tracking per step (lag / inertia)
WS_LO = (-0.3, -0.3, 0.005)    # workspace box for the TCP (z_min: fingertips on the table)
WS_HI = (0.3, 0.3, 0.45)
Z_MIN = WS_LO[2]
FINGER_MIN, FINGER_MAX = -0.01, 0.04   # gripper target range, like ManiSkill's pd_ee_delta_pos
FINGER_SPEED = 0.04 / 3                # m per step: ~3 steps from open to closed
GRASP_RADIUS = 0.02
GRAVITY = 9.81
GOAL_TOL = 0.025
STILL_SPEED = 0.1                      # m/s (= 0.005 m per step)
TCP_INIT = (0.0, 0.0, 0.18)
TCP_NOISE = 0.02
SPAWN_HALF = 0.1
GOAL_HEIGHT = 0.3

_M32 = 0xFFFFFFFF
_HASH_MUL = 0x45D9F3B          # < 2^31: products with 32-bit values stay inside int64
_NUM_UNIFORMS = 8              # per reset: cube xy, goal xyz, tcp xyz

OBS_LAYOUT: tuple[tuple[str, int], ...] = (
    ("tcp_pos", 3), ("gripper", 1), ("tcp_vel", 3), ("gripper_vel", 1), ("is_grasped", 1),
    ("goal_pos", 3), ("obj_pos", 3), ("tcp_to_obj", 3), ("obj_to_goal", 3),
)
# Rows of the float state: the observation, then the hidden fields.
STATE_LAYOUT = OBS_LAYOUT + (("grasp_offset", 3), ("obj_vel", 3))
INT_FIELDS = ("elapsed", "key", "episode")


def _slices(layout) -> dict[str, slice]:
    out, i = {}, 0
    for name, n in layout:
        out[name] = slice(i, i + n)
        i += n
    return out


OBS_SLICES: dict[str, slice] = _slices(OBS_LAYOUT)
STATE_SLICES: dict[str, slice] = _slices(STATE_LAYOUT)
OBS_DIM = sum(n for _, n in OBS_LAYOUT)
STATE_DIM = sum(n for _, n in STATE_LAYOUT)


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing hash on int64 tensors holding values in [0, 2^32)."""
    x = ((x >> 16) ^ x) * _HASH_MUL & _M32
    x = ((x >> 16) ^ x) * _HASH_MUL & _M32
    return (x >> 16) ^ x


class PickCubeLiteState(EnvState):
    """A batch of PickCube-Lite states, env-major: `x` [N, 27] float32 (the fields of
    `STATE_LAYOUT`) and `i` [N, 3] int64 (elapsed steps, RNG key, episode counter).
    `fields()` / `state["obj_pos"]` give named [N, k] (or [N]) views."""

    def __init__(self, x: torch.Tensor, i: torch.Tensor):
        self.x, self.i = x, i

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, name: str) -> torch.Tensor:
        if name in INT_FIELDS:
            return self.i[:, INT_FIELDS.index(name)]
        sl = STATE_SLICES[name]
        return self.x[:, sl.start] if sl.stop - sl.start == 1 else self.x[:, sl]

    def fields(self) -> dict[str, torch.Tensor]:
        return {name: self[name] for name in (*STATE_SLICES, *INT_FIELDS)}

    @property
    def elapsed(self) -> torch.Tensor:
        return self["elapsed"]

    def select(self, index: torch.Tensor | Sequence[int]) -> "PickCubeLiteState":
        idx = torch.as_tensor(index, device=self.x.device)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().squeeze(1)
        idx = idx.long().reshape(-1)
        return PickCubeLiteState(self.x.index_select(0, idx), self.i.index_select(0, idx))

    @classmethod
    def cat(cls, states: Sequence["PickCubeLiteState"]) -> "PickCubeLiteState":
        if not states:
            raise EnvError("cannot concatenate an empty list of states")
        return cls(torch.cat([s.x for s in states]), torch.cat([s.i for s in states]))


class PickCubeLite(BatchedEnv):
    """The embedded PickCube twin; see the module docstring for dynamics and the obs layout."""

    env_id = "pickcube-lite"
    obs_dim = OBS_DIM
    act_dim = 4
    max_episode_steps = 50
    OBS_LAYOUT = OBS_LAYOUT
    OBS_SLICES = OBS_SLICES

    def __init__(self, num_envs: int = 1, *, seed: int = 0, reward_mode: str = "sparse",
                 autoreset: bool = True, ignore_terminations: bool = False, device: str = "cpu"):
        if num_envs < 1:
            raise EnvError(f"num_envs must be >= 1, got {num_envs}")
        if reward_mode not in ("sparse", "dense"):
            raise EnvError(f"reward_mode must be 'sparse' or 'dense', got {reward_mode!r}")
        self.num_envs = n = int(num_envs)
        self.reward_mode = reward_mode
        self.autoreset = autoreset
        self.ignore_terminations = ignore_terminations
        self.device = dev = torch.device(device)
        self._gen = torch.Generator(device="cpu")  # episode keys: the same on every device (docstring)
        self._lo = torch.tensor(WS_LO, device=dev)[:, None]
        self._hi = torch.tensor(WS_HI, device=dev)[:, None]
        self._tcp_init = torch.tensor(TCP_INIT, device=dev)[:, None]
        self._slot = _hash32(torch.arange(1, _NUM_UNIFORMS + 1, device=dev) * 0x9E3779B1 & _M32)[:, None]
        self._x = torch.zeros(STATE_DIM, n, device=dev)              # component-major state
        self._i = torch.zeros(len(INT_FIELDS), n, dtype=torch.int64, device=dev)
        self._a = torch.empty(self.act_dim, n, device=dev)           # clipped actions, component-major
        v = {k: self._x[sl] for k, sl in STATE_SLICES.items()}
        self._tcp, self._tvel, self._goal, self._obj = v["tcp_pos"], v["tcp_vel"], v["goal_pos"], v["obj_pos"]
        self._t2o, self._o2g, self._off, self._ovel = v["tcp_to_obj"], v["obj_to_goal"], v["grasp_offset"], v["obj_vel"]
        self._fin, self._fvel, self._grasp = self._x[3], self._x[7], self._x[8]
        self._elapsed, self._key, self._episode = self._i[0], self._i[1], self._i[2]
        self.reset(seed=seed)

    # ------------------------------------------------------------------ reset / randomness
    def _uniforms(self, idx: torch.Tensor | None) -> torch.Tensor:
        """[8, n] uniforms in [0, 1) for the next episode of the envs `idx` (all when None)."""
        key = self._key if idx is None else self._key[idx]
        ep = self._episode if idx is None else self._episode[idx]
        x = _hash32(_hash32((key ^ ep) & _M32)[None, :] ^ self._slot)
        return (x >> 8).to(torch.float32) * (1.0 / 2**24)

    def _reset_envs(self, idx: torch.Tensor | None) -> torch.Tensor:
        """Start a new episode in the envs `idx` (long tensor) or in all envs (None); returns
        the new float state columns [27, n]."""
        u = self._uniforms(idx)
        n = u.shape[1]
        tcp = self._tcp_init + (u[5:8] * 2 - 1) * TCP_NOISE
        cube = torch.cat([(u[0:2] * 2 - 1) * SPAWN_HALF, torch.full((1, n), HALF, device=self.device)])
        goal = torch.cat([(u[2:4] * 2 - 1) * SPAWN_HALF, HALF + u[4:5] * GOAL_HEIGHT])
        z3, z1 = torch.zeros(3, n, device=self.device), torch.zeros(1, n, device=self.device)
        fin = torch.full((1, n), FINGER_MAX, device=self.device)
        block = torch.cat([tcp, fin, z3, z1, z1, goal, cube, cube - tcp, goal - cube, z3, z3])
        if idx is None:
            self._x.copy_(block)
            self._elapsed.zero_()
            self._episode += 1
        else:
            self._x.index_copy_(1, idx, block)
            self._elapsed.index_fill_(0, idx, 0)
            self._episode.index_add_(0, idx, torch.ones_like(idx))
        return block

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._gen.manual_seed(int(seed))
        base = int(torch.randint(0, 2**32, (1,), generator=self._gen, device="cpu").item())
        self._key.copy_(_hash32((torch.arange(self.num_envs, device=self.device) + base) & _M32))
        self._episode.zero_()
        self._reset_envs(None)
        return self._obs()

    def _obs(self) -> torch.Tensor:
        # a copy even with one env (where .t().contiguous() would be a view of the live state)
        return self._x[:OBS_DIM].t().clone(memory_format=torch.contiguous_format)

    # ------------------------------------------------------------------ step
    def step(self, action: torch.Tensor) -> StepResult:
        action = torch.as_tensor(action, device=self.device, dtype=torch.float32)
        if action.shape != (self.num_envs, self.act_dim):
            raise EnvError(f"action must have shape ({self.num_envs}, {self.act_dim}), got {tuple(action.shape)}")
        a = torch.clamp(action.t(), -1.0, 1.0, out=self._a)
        tcp, tvel, fin, grasp, off, obj, ovel = (self._tcp, self._tvel, self._fin, self._grasp,
                                                 self._off, self._obj, self._ovel)

        # Arm: lagged velocity tracking (m/s), workspace clamp; a held cube cannot enter the table.
        tvel.mul_(1.0 - ALPHA).add_(a[:3], alpha=ALPHA * VMAX / DT)
        new_tcp = torch.add(tcp, tvel, alpha=DT).clamp_(self._lo, self._hi)
        z_lo = torch.rsub(off[2], HALF - Z_MIN).mul_(grasp).add_(Z_MIN)
        torch.maximum(new_tcp[2], z_lo, out=new_tcp[2])
        torch.sub(new_tcp, tcp, out=tvel).mul_(1.0 / DT)     # the motion actually made
        tcp.copy_(new_tcp)

        # Gripper: rate-limited move to the absolute target; grasp when closing through the cube.
        step_f = torch.rsub(fin, 0.5 * (FINGER_MAX + FINGER_MIN)).add_(a[3], alpha=0.5 * (FINGER_MAX - FINGER_MIN))
        new_f = step_f.clamp_(-FINGER_SPEED, FINGER_SPEED).add_(fin).clamp_(0.0, FINGER_MAX)
        rel = obj - tcp
        near = rel.square().sum(0) < GRASP_RADIUS ** 2
        holding = (new_f <= HALF) & ((grasp > 0.5) | (near & (fin > HALF)))
        held = holding.to(torch.float32)
        torch.maximum(new_f, held * HALF, out=new_f)        # fingers rest on the cube
        torch.sub(new_f, fin, out=self._fvel).mul_(1.0 / DT)
        fin.copy_(new_f)
        off.lerp_(rel, 1.0 - grasp)                         # offset frozen while held
        grasp.copy_(held)

        # Cube: free fall onto the table, or carried by the TCP.
        ovel[2] -= GRAVITY * DT
        obj.add_(ovel, alpha=DT)
        obj[2].clamp_(min=HALF)
        ovel.mul_(obj[2] > HALF)                            # landed: at rest
        obj.lerp_(tcp + off, held)
        ovel.lerp_(tvel, held)                              # a released cube keeps the TCP's velocity

        # Success, reward, episode bookkeeping.
        torch.sub(obj, tcp, out=self._t2o)
        torch.sub(self._goal, obj, out=self._o2g)
        placed = self._o2g.square().sum(0) < GOAL_TOL ** 2
        speed2 = tvel.square().sum(0)
        success = placed & (speed2 < STILL_SPEED ** 2)
        if self.reward_mode == "sparse":
            reward = success.to(torch.float32)
        else:
            reward = self._dense(speed2, held, placed, success)
        self._elapsed += 1
        truncated = self._elapsed >= self.max_episode_steps
        terminated = torch.zeros_like(success) if self.ignore_terminations else success.clone()
        obs = final_obs = self._obs()
        if self.autoreset:
            done = terminated | truncated
            if bool(done.any()):
                if bool(done.all()):
                    self._reset_envs(None)
                    obs = self._obs()
                else:
                    idx = done.nonzero().squeeze(1)
                    block = self._reset_envs(idx)
                    obs = final_obs.clone()
                    obs[idx] = block[:OBS_DIM].t()
        return StepResult(obs=obs, reward=reward, terminated=terminated, truncated=truncated,
                          success=success, final_obs=final_obs)

    def _dense(self, speed2, held, placed, success) -> torch.Tensor:
        """PickCube's staged dense reward (max 5), normalised to [0, 1]."""
        reach = self._t2o.square().sum(0).sqrt_().mul_(5.0).tanh_()
        place = self._o2g.square().sum(0).sqrt_().mul_(5.0).tanh_()
        static = speed2.sqrt_().mul_(10.0).tanh_()
        r = (1.0 - reach).add_(held * (2.0 - place)).add_(placed * (1.0 - static))
        return r.masked_fill_(success, 5.0).mul_(0.2)

    # ------------------------------------------------------------------ snapshot / restore
    def snapshot(self) -> PickCubeLiteState:
        return PickCubeLiteState(self._x.t().clone(memory_format=torch.contiguous_format),
                                 self._i.t().clone(memory_format=torch.contiguous_format))

    def restore(self, state: EnvState) -> torch.Tensor:
        if not isinstance(state, PickCubeLiteState):
            raise EnvError(f"cannot restore a {type(state).__name__} into {self.env_id}")
        if len(state) != self.num_envs:
            raise EnvError(f"state has {len(state)} envs but this env has num_envs={self.num_envs}")
        self._x.copy_(state.x.t())
        self._i.copy_(state.i.t())
        torch.sub(self._obj, self._tcp, out=self._t2o)      # derived rows (a state may have been edited)
        torch.sub(self._goal, self._obj, out=self._o2g)
        return self._obs()

    def elapsed_steps(self) -> torch.Tensor:
        return self._elapsed.clone()
