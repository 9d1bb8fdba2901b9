"""The Textual app over the investigation engine. `detective.ui.tui.app.run_app` is the entry point.

Nothing here holds investigation logic: screens render values from `detective.ui.browse`,
`detective.core.ledger` and `detective.core.report`, and change state only through `Session`.
"""
