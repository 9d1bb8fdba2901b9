"""Measurement helpers the checks share: collection passes, error analysis, clustering, image
properties, the recipe runner."""
