from pathlib import Path

from quantbench.capabilities import table


def test_docs_method_table_matches_the_registry():
    docs = Path(__file__).resolve().parents[1] / "docs" / "methods.md"
    assert docs.read_text() == table(), "regenerate: python -m quantbench.capabilities > docs/methods.md"
