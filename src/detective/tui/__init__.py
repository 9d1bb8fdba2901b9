"""The Textual app over the investigation engine. `detective.tui.app.run_app` is the entry point.

Nothing here holds investigation logic: screens render values from `detective.browse`,
`detective.ledger` and `detective.report`, and change state only through `Session`.
"""
