"""Work across runs and sessions: experiments, comparisons, reviews, the intake, re-judging, the
model card."""
