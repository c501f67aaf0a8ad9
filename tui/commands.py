"""Command palette (ctrl+p) entries: open a preset in the launch form (nothing starts: edit it,
then launch), launch what the form shows (through its usual confirmation of findings), stop a
running run, compare the marked runs, export the overlay figure as PNG or SVG."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from . import core


class PlaygroundCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        out = []
        out.append(("Launch the form", "launch what the launch form shows (findings are confirmed first)",
                    app.launch_form))
        for p in core.list_presets():
            out.append((f"Open preset {p.name}", "in the launch form, to edit and launch: "
                        + (p.description or f"{p.regime} {p.estimator} + {p.update}"),
                        partial(app.open_preset, p.name)))
        for v in app.runs.values():
            if v.live:
                out.append((f"Stop run {v.run_id}", f"{v.state}, iteration {v.iteration}",
                            partial(app.stop_runs, [v.run_id])))
        out.append(("Compare marked runs", "overlay and table of the runs marked with m", app.action_compare))
        out.append(("Export figure (PNG)", "the SR overlay of the marked runs, with matplotlib",
                    partial(app.export_figure, None, "png")))
        out.append(("Export figure (SVG)", "the SR overlay of the marked runs, with matplotlib",
                    partial(app.export_figure, None, "svg")))
        return out

    async def discover(self) -> Hits:
        for name, help_, cb in self._commands():
            yield DiscoveryHit(name, cb, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_, cb in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_)
