"""The mutation table (``tests/mutations.py``, docs/testing.md): every
mutation's text is where the table says, and the fast tests catch every
mutation (the whole harness, in the slow tier)."""

import pytest

import mutations


def test_every_mutation_text_is_in_its_file():
    assert mutations.missing_texts() == []
    # A text that moved is reported, which fails the run.
    moved = [("moved", "trimzoo/__init__.py", "no such text", "", [])]
    assert mutations.missing_texts(moved) == [("moved",
                                               "trimzoo/__init__.py")]


@pytest.mark.slow
def test_the_fast_tests_catch_every_mutation(capsys):
    # No clean run first: the fast tier of the same `make test-all` runs
    # these tests unmodified.
    code = mutations.main(baseline=False)
    assert code == 0, capsys.readouterr().out
