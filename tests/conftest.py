import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Trained case models are cached per test run (or in DETECTIVE_CACHE_DIR if set)."""
    if "DETECTIVE_CACHE_DIR" not in os.environ:
        os.environ["DETECTIVE_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    import torch

    # The suite's models are tiny: one thread avoids oversubscription (measured 10x faster per
    # step on a busy 2-core machine) and keeps results identical run to run.
    torch.set_num_threads(1)
