from pathlib import Path

import pytest

from detective.core.playbook import PlaybookError, load_playbook, resolve_playbook
from detective.core.registry import all_checks


def known() -> set[str]:
    return set(all_checks())


def test_builtin_playbook_is_valid_and_runs_every_registered_check() -> None:
    pb = resolve_playbook(None, known())
    assert pb.name == "vision-classification"
    assert set(pb.check_ids) == known(), "every registered check belongs in the default playbook"
    assert pb.plan()[0][1] == "case_contract"


def test_symptom_reorders_stages_and_checks(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
[[stages]]
id = "intake"
checks = ["a"]
[[stages]]
id = "pipeline"
checks = ["b", "c"]
[[stages]]
id = "learning"
checks = ["d"]
[symptoms.low_train_acc]
stage_order = ["intake", "learning"]
first = ["c"]
""",
    )
    pb = load_playbook(p)
    assert [c for _, c in pb.plan()] == ["a", "b", "c", "d"]
    assert [c for _, c in pb.plan("low_train_acc")] == ["a", "d", "c", "b"]
    assert [c for _, c in pb.plan("both_low")] == ["a", "b", "c", "d"]  # no entry: default order


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pb.toml"
    p.write_text(text)
    return p


def test_unknown_check_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, '[[stages]]\nid = "intake"\nchecks = [\n  "case_contract",\n  "nope"\n]\n')
    with pytest.raises(PlaybookError, match=r"pb\.toml:5: unknown check id 'nope'"):
        load_playbook(p, known())


def test_cycle_is_reported(tmp_path: Path) -> None:
    p = write(
        tmp_path, '[[stages]]\nid = "intake"\nchecks = ["a", "b"]\n[after]\na = ["b"]\nb = ["a"]\n'
    )
    with pytest.raises(PlaybookError, match="dependency cycle: a -> b -> a"):
        load_playbook(p)


def test_bad_symptom_is_reported(tmp_path: Path) -> None:
    p = write(
        tmp_path, '[[stages]]\nid = "intake"\nchecks = ["a"]\n\n[symptoms.slow_gpu]\nfirst = []\n'
    )
    with pytest.raises(PlaybookError, match=r"pb\.toml:5: unknown symptom 'slow_gpu'"):
        load_playbook(p)


def test_bad_stage_is_reported(tmp_path: Path) -> None:
    p = write(tmp_path, '[[stages]]\nid = "training"\nchecks = []\n')
    with pytest.raises(PlaybookError, match="unknown stage 'training'"):
        load_playbook(p)


def test_dependencies_order_checks(tmp_path: Path) -> None:
    p = write(tmp_path, '[[stages]]\nid = "intake"\nchecks = ["a", "b", "c"]\n[after]\na = ["c"]\n')
    assert [c for _, c in load_playbook(p).plan()] == ["b", "c", "a"]


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="pb.toml"):
        load_playbook(write(tmp_path, "[[stages]\n"))
