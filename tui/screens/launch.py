"""The launch screen (the one the app opens on): pick a preset, change the regime, estimator,
update rule, checkpoints by role and the seed's key parameters in place, see the validator's
findings update on every change (apply a finding's fix with its button, or ctrl+f for the
first), pretrain a checkpoint role the ladder lacks, and launch. Planning (load, resolve,
validate) runs in a thread worker through `tui.core`, never on the UI thread."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Select, Static

from .. import core
from ..widgets.fields import FieldRow, as_text, help_of, role_options
from ..widgets.findings import FindingsList
from .dialogs import ConfirmScreen

METHOD_KEYS = ("regime", "estimator", "update")
PARAM_KEYS = ("env", "seed", "gamma", "mc_samples", "rollout_policy", "awr_beta", "num_envs", "num_steps",
              "total_timesteps", "num_iterations", "update_epochs", "num_minibatches", "target_kl", "warmup_iters",
              "iql_expectile_tau", "learning_rate", "num_eval_envs", "deterministic_eval", "regress_advantages",
              "reward_scale", "exp_name")
FORM_KEYS = METHOD_KEYS + tuple(core.CHECKPOINT_KEYS) + PARAM_KEYS


def pct(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "-"


def checkpoint_info(key: str, plan: core.Plan | None) -> str:
    """What a checkpoint key points at: role, env, det / stoch SR from its metadata."""
    if plan is None or plan.cfg is None:
        return ""
    c = plan.checkpoints.get(key)
    if c is None:
        return "[dim]not used by this config[/]"
    if c.spec.lower() == "none":
        return "[dim]none: a freshly initialised network[/]"
    if c.missing:
        return f"[yellow]role {c.role}: not built for {plan.cfg.env} yet (ctrl+t pretrains it)[/]"
    return (f"role [b]{c.role or '-'}[/] · env {c.env or '-'} · det SR {pct(c.det_sr)} · "
            f"stoch SR {pct(c.stoch_sr)}")


class LaunchScreen(Screen):
    BINDINGS = [
        Binding("ctrl+r", "launch", "Launch", priority=True),
        Binding("ctrl+f", "apply_fix", "Apply fix", priority=True),
        Binding("ctrl+t", "pretrain", "Pretrain", priority=True),
    ]
    DEFAULT_CSS = """
    #launch-body { height: 1fr; }
    #form { width: 3fr; padding: 0 1; }
    #side { width: 2fr; min-width: 30; }
    .section { text-style: bold; color: $accent; margin-top: 1; }
    #preset { width: 1fr; }
    #preset-desc { color: $text-muted; }
    #missing { height: auto; color: $warning; }
    #launch-bar { height: auto; }
    #launch-bar Button { margin-right: 1; }
    """

    def __init__(self):
        super().__init__(id="launch")
        self.preset: str | None = None
        self.base: dict = {}
        self.extra: dict[str, str] = {}
        self.plan: core.Plan | None = None
        self._gen = 0
        self._timer = None
        self._launch_when_planned = False
        self._filled = False
        self._exp_base = ""
        self._pick_options: dict[str, list] = {}

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        presets = core.list_presets()
        with Horizontal(id="launch-body"):
            with VerticalScroll(id="form"):
                yield Static("Preset", classes="section")
                yield Select([(p.name, p.name) for p in presets], prompt="pick a preset", compact=True, id="preset")
                yield Static("", id="preset-desc")
                yield Static("Method", classes="section")
                for key in METHOD_KEYS:
                    yield FieldRow(key)
                yield Static("Checkpoints by role", classes="section")
                for key in core.CHECKPOINT_KEYS:
                    yield FieldRow(key, label=core.ROLE_LABELS[key])
                yield Static("Parameters", classes="section")
                for key in PARAM_KEYS:
                    yield FieldRow(key)
            with Vertical(id="side"):
                yield FindingsList(id="findings")
                yield Static("", id="missing")
                with Horizontal(id="launch-bar"):
                    yield Button("Launch ctrl+r", id="launch-button", variant="success", compact=True)
                    yield Button("Pretrain ctrl+t", id="pretrain-button", compact=True)
        yield Footer(compact=True, show_command_palette=False)  # ctrl+r, F1/F2/F3, ctrl+q fit 80 columns (ctrl+p: help)

    def on_mount(self) -> None:
        self.app.launch_screen = self
        self.query_one("#pretrain-button").display = False
        self.query_one("#findings", FindingsList).waiting("pick a preset to validate it")
        self.query_one("#preset").focus()

    # --- the form ------------------------------------------------------------------------
    def field(self, key: str):
        return self.query_one(f"#field-{key}")

    def field_text(self, key: str) -> str:
        w = self.field(key)
        return str(w.value if not isinstance(w, Select) or w.value is not Select.BLANK else "").strip()

    def set_field(self, key: str, value) -> None:
        w = self.field(key)
        text = as_text(value)
        if isinstance(w, Select):
            w.value = text
        else:
            w.value = text

    def base_text(self, key: str) -> str:
        if key == "exp_name":
            return self._exp_base  # empty = derived from the config (shown as the placeholder)
        return as_text(self.base.get(key, ""))

    def overrides(self) -> dict[str, str]:
        """The keys whose values differ from the preset's, as the user typed them."""
        out = {}
        for key in FORM_KEYS:
            text = self.field_text(key)
            if text != self.base_text(key):
                out[key] = text
        for key, v in self.extra.items():
            out.setdefault(key, v)
        return out

    def select_preset(self, name: str) -> None:
        self.query_one("#preset", Select).value = name

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if event.control.is_blank():
            return
        self.preset = str(event.value)
        self._filled = False
        self.extra = {}
        self.query_one("#findings", FindingsList).waiting(f"loading preset {self.preset} ...")
        self.run_worker(lambda: self._load_preset(self.preset), thread=True, group="preset", exclusive=True)

    def _load_preset(self, name: str) -> None:
        try:
            cfg = core.preset_config(name)
            problems: list[str] = []
        except core.USER_ERRORS as e:
            cfg, problems = None, core.problem_lines(e)
        self._from_thread(self._fill, name, cfg, problems)

    def _fill(self, name: str, cfg, problems: list[str]) -> None:
        if name != self.preset:
            return
        info = next((p for p in core.list_presets() if p.name == name), None)
        desc = info.description if info else ""
        if info and info.expected_sr is not None:
            desc += f"  (seed's SR {100 * info.expected_sr:.1f}%)"
        self.query_one("#preset-desc", Static).update(desc)
        if cfg is None:
            self.base = {}
            self.query_one("#findings", FindingsList).show([], problems)
            return
        self.base = cfg.to_dict()
        derived = core.derive_exp_name(cfg)
        for key in FORM_KEYS:
            if key == "exp_name":
                w = self.field("exp_name")
                w.placeholder = f"derived: {derived}"
                self._exp_base = "" if cfg.exp_name == derived else cfg.exp_name
                w.value = self._exp_base
            else:
                self.set_field(key, self.base[key])
        self._filled = True
        self.schedule_plan(0.0)

    @on(Input.Changed)
    @on(Select.Changed)
    def _edited(self, event) -> None:
        wid = event.control.id or ""
        if not wid.startswith("field-"):
            return
        key = wid[len("field-"):]
        if key in core.CHECKPOINT_KEYS:
            self._sync_pick(key)
        if self._filled:
            self.schedule_plan()

    # --- planning (a thread worker) ------------------------------------------------------
    def schedule_plan(self, delay: float = 0.15) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(max(delay, 0.01), self._start_plan)  # Textual's timers need > 0

    def _start_plan(self) -> None:
        self._timer = None
        if not self.preset or not self._filled:
            return
        self._gen += 1
        gen, preset, overrides = self._gen, self.preset, self.overrides()
        self.query_one("#findings", FindingsList).checking()
        self.run_worker(lambda: self._plan_thread(gen, preset, overrides), thread=True, group="plan")

    def _plan_thread(self, gen: int, preset: str, overrides: dict) -> None:
        try:
            p = core.plan(preset, overrides, runs_dir=self.app.runs_dir)
        except Exception as e:  # noqa: BLE001 - shown on screen, never a traceback
            p = core.Plan(preset, overrides, problems=[f"internal error while validating: {type(e).__name__}: {e}"])
        env = p.cfg.env if p.cfg is not None else str(overrides.get("env") or self.base.get("env") or "")
        ladder = core.ladder(env) if env else []
        self._from_thread(self._show_plan, gen, p, ladder)

    def _from_thread(self, callback, *args) -> None:
        """Hand a worker thread's result to `callback` on the app's thread, unless the app has
        begun shutting down (or this screen has left the app) meanwhile: a preset load or a
        validation still in flight when the user quits must not touch widgets already removed."""
        def deliver() -> None:
            if self.app.is_running and self.is_attached:
                callback(*args)
        if self.app.is_running:
            self.app.call_from_thread(deliver)

    @property
    def plan_is_current(self) -> bool:
        p = self.plan
        return p is not None and p.preset == self.preset and p.overrides == self.overrides() and self._timer is None

    def _show_plan(self, gen: int, p: core.Plan, ladder: list[dict] | None = None) -> None:
        if gen != self._gen:
            return  # a newer edit is being validated
        self.plan = p
        self._show_ladder(ladder or [])
        note = ""
        if p.cfg is not None:
            note = (f"[dim]{p.cfg.regime} {p.cfg.estimator} + {p.cfg.update} · env {p.cfg.env} · "
                    f"exp_name {p.cfg.exp_name} · about {core.describe_wall_time(core.estimate_wall_s(p.cfg))} "
                    "on this machine[/]")
        self.query_one("#findings", FindingsList).show(p.findings, p.problems, note=note)
        for key in core.CHECKPOINT_KEYS:
            self.query_one(f"#info-{key}", Static).update(checkpoint_info(key, p))
        missing = self.query_one("#missing", Static)
        if p.missing and p.cfg is not None:
            roles = ", ".join(f"{r} ({core.ROLE_LABELS.get(k, k)})" for k, r in p.missing)
            missing.update(f"env {p.cfg.env} has no {roles} checkpoint yet: ctrl+t pretrains its ladder "
                           f"(a followed job), or set the key to none")
        else:
            missing.update("")
        self.query_one("#pretrain-button").display = bool(p.missing)
        if self._launch_when_planned:
            self._launch_when_planned = False
            self.action_launch()

    def _show_ladder(self, ladder: list[dict]) -> None:
        """Each checkpoint key's pick list: the env's ladder roles (with det / stoch SR) that fit
        it. A list whose options changed shows the field's role as chosen again; an unchanged
        one is left as it is, so a validation that lands between a user's pick and the pick's
        own event cannot undo the pick (the field follows the pick, the pick follows edits)."""
        for key in core.CHECKPOINT_KEYS:
            options = role_options(key, ladder)
            if options != self._pick_options.get(key):
                self._pick_options[key] = options
                self.query_one(f"#pick-{key}", Select).set_options(options)
                self._sync_pick(key)

    def _sync_pick(self, key: str) -> None:
        """Show the role the checkpoint field names as the chosen entry of its pick list (blank
        when the field holds something the list does not have)."""
        pick = self.query_one(f"#pick-{key}", Select)
        text = self.field_text(key)
        if text in {v for _, v in self._pick_options.get(key, [])}:
            if pick.value != text:
                pick.value = text
        elif not pick.is_blank():
            pick.clear()

    @on(Select.Changed, ".pick")
    def _role_picked(self, event: Select.Changed) -> None:
        """A role picked from the ladder list goes into the free-text field (validated as typed)."""
        key = (event.control.id or "")[len("pick-"):]
        if event.control.is_blank() or event.value != event.control.value:
            return  # cleared, or the list has moved on since this event (a later one follows)
        if str(event.value) != self.field_text(key):
            self.set_field(key, str(event.value))

    # --- actions -------------------------------------------------------------------------
    def apply_fix(self, fix: dict) -> None:
        for key, value in fix.items():
            if key in FORM_KEYS:
                self.set_field(key, value)
            else:
                self.extra[key] = as_text(value)
        self.notify("applied: " + ", ".join(f"{k}={as_text(v)}" for k, v in fix.items()), timeout=3)
        self.schedule_plan(0.0)

    def on_findings_list_apply_fix(self, event: FindingsList.ApplyFix) -> None:
        self.apply_fix(event.fix)

    def action_apply_fix(self) -> None:
        fl = self.query_one("#findings", FindingsList)
        i = fl.first_fix_index()
        if i is None:
            self.notify("no finding with a fix to apply", severity="warning")
            return
        self.apply_fix(dict(fl.findings[i].fix))

    @on(Button.Pressed, "#launch-button")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#pretrain-button")
    def _pretrain_pressed(self) -> None:
        self.action_pretrain()

    def action_launch(self) -> None:
        if not self.preset:
            self.notify("pick a preset first", severity="error")
            return
        if not self.plan_is_current:
            self._launch_when_planned = True  # launch once the latest edit is validated
            if self._timer is None:
                self.schedule_plan(0.0)
            return
        p = self.plan
        if p.problems:
            self.notify(f"cannot launch: {p.problems[0]}", severity="error", timeout=8)
            return
        if p.missing:
            roles = ", ".join(r for _, r in p.missing)
            self.notify(f"env {p.cfg.env} has no {roles} checkpoint yet: press ctrl+t to pretrain it, "
                        "or set those keys to none", severity="error", timeout=8)
            return
        if p.errors:
            ids = ", ".join(f.id for f in p.errors)
            self.app.push_screen(
                ConfirmScreen(f"{len(p.errors)} error-level finding(s): {ids}.\n"
                              "The seed found these settings fail. Launch anyway? (recorded in findings.json)",
                              yes="Launch anyway", no="Cancel"),
                lambda ok: self._launch(p, force=True) if ok else None)
            return
        self._launch(p)

    def _launch(self, p: core.Plan, force: bool = False) -> None:
        try:
            proc = core.launch(p, runs_dir=self.app.runs_dir, force=force)
        except core.USER_ERRORS as e:
            self.notify("cannot launch: " + "; ".join(core.problem_lines(e)), severity="error", timeout=10)
            return
        self.app.follow_launched(proc.run_dir, proc)

    def action_pretrain(self) -> None:
        p = self.plan
        if p is None or not p.missing or p.cfg is None:
            self.notify("every checkpoint this config uses exists: nothing to pretrain", severity="information")
            return
        try:
            run_dir, proc = core.start_pretrain(p.cfg.env, runs_dir=self.app.runs_dir)
        except core.USER_ERRORS as e:
            self.notify("cannot pretrain: " + "; ".join(core.problem_lines(e)), severity="error", timeout=10)
            return
        self.app.follow_launched(run_dir, proc)
        self.notify(f"pretraining {p.cfg.env}: follow it on the monitor (F3); launch once it is done")

    def help_text(self) -> str:
        return "\n".join(f"{k}: {help_of(k)}" for k in FORM_KEYS)
