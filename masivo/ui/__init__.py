"""Widgets shared by every app's dashboard pages: the workspace page decorator, keyset paging,
form helpers, page sections, and the error pages.

Below the apps in the layers (pyproject.toml), so `profiles.views` and `audiences.views` can use
them; the dashboard's shell (layout, sign-in, switcher, settings) stays in `masivo.dashboard`,
at the top, and wires the apps' pages into its URLs.
"""
