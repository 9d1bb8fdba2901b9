"""The capacity stage's checks; each file is named by its check's id."""
