"""The Textual launcher (`playground` / `playground tui`): a thin view over the launch core
(`engine.launcher`). `tui.app` holds the app and its entry point `run(runs_dir)`; `tui.core`
is the one module that calls the core; `tui.follower` reads runs off the UI thread and posts
`tui.messages`; `tui.screens` and `tui.widgets` draw them."""
