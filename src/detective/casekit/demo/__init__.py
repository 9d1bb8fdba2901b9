"""The embedded demo: a real case on scikit-learn's digits with one deliberate flaw."""

from pathlib import Path

DEMO_CASE = Path(__file__).with_name("digits_case.py")
DEMO_SYMPTOM = "train_high_val_low"
DEMO_FLAW = "preprocessing_parity"
