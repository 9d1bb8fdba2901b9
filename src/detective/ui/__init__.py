"""The user interfaces: the CLI, the headless runner, exporters and the Textual TUI."""
