"""The judgement stage: interventions on the causes the other stages found evidence for."""
