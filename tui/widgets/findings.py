"""`FindingsList`: the validator's findings for the config being edited (severity, id, title,
why) with a button per finding that applies its fix, and the problems that make the input
unusable. Posts `FindingsList.ApplyFix` when a fix button is pressed."""
from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Static


def fix_text(fix: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in fix.items())


class FindingsList(VerticalScroll):
    DEFAULT_CSS = """
    FindingsList { height: 1fr; border: round $primary; border-title-color: $text; padding: 0 1; }
    FindingsList .finding { margin-bottom: 0; }
    FindingsList Button { margin-bottom: 1; width: auto; min-width: 10; }
    """

    @dataclass
    class ApplyFix(Message):
        index: int
        fix: dict

    def __init__(self, **kw):
        super().__init__(**kw)
        self.findings: list = []
        self.problems: list[str] = []
        self._key: tuple = ()
        self._answered = False   # has the validator answered since the last preset pick?

    def on_mount(self) -> None:
        if not self._answered:
            self.checking()

    def waiting(self, note: str) -> None:
        """Nothing to validate yet (no preset picked): the note, and no verdict."""
        self._answered = False
        self._key = ()
        self.findings, self.problems = [], []
        self.remove_children()
        self.mount(Static(f"[dim]{escape(note)}[/]", classes="finding note"))
        self.border_title = "validator: waiting"

    def checking(self) -> None:
        """Until the validator's first answer (and while a new one is computed): say so, never a
        green "no findings" that nothing has checked yet (a later check keeps the last answer
        on screen under the title "checking ...")."""
        if not self._answered:
            self._key = ()
            self.remove_children()
            self.mount(Static("[dim]checking ...[/]", classes="finding note"))
        self.border_title = "validator: checking ..."

    def show(self, findings: list, problems: list[str], note: str = "") -> None:
        """The validator's answer: problems (unusable input), a note, the findings with fix buttons."""
        self._answered = True
        key = (tuple((f.id, f.severity, f.title, f.why, tuple(f.fix.items())) for f in findings), tuple(problems), note)
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        title = (f"{len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems else
                 f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}")
        if self.border_title != title:  # (also after "checking ...", when the answer did not change)
            self.border_title = title
        if key == self._key:
            return
        self._key = key
        self.findings, self.problems = list(findings), list(problems)
        self.remove_children()
        widgets = []
        for p in problems:
            widgets.append(Static(f"[b red]problem[/] {escape(p)}", classes="finding problem"))
        if note:
            widgets.append(Static(note, classes="finding note"))
        for i, f in enumerate(findings):
            colour = "red" if f.severity == "error" else "yellow"
            widgets.append(Static(f"[b {colour}]{f.severity}[/] [b]{f.id}[/] {escape(f.title)}\n"
                                  f"[dim]{escape(f.why)}[/]", classes=f"finding {f.severity} rule-{f.id}"))
            if f.fix:
                label = ("ctrl+f " if i == self.first_fix_index() else "") + "fix: " + fix_text(f.fix)
                widgets.append(Button(escape(label), name=f"fix-{i}", compact=True, variant="primary"))
        if not problems and not findings:
            widgets.append(Static("[green]no findings[/]", classes="finding"))
        self.mount_all(widgets)

    def first_fix_index(self) -> int | None:
        return next((i for i, f in enumerate(self.findings) if f.fix), None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        bid = event.button.name or ""
        if bid.startswith("fix-"):
            event.stop()
            i = int(bid[4:])
            self.post_message(self.ApplyFix(i, dict(self.findings[i].fix)))
