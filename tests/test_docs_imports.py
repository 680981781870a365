"""The docs' code imports only the public API: ``paygate`` and ``paygate.testing`` (issue 17).
Everything else under ``paygate.`` is internal and may change without notice; an example that
imports it teaches plugin authors to depend on it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
PUBLIC = {"paygate", "paygate.testing"}
# ``import paygate.x``, ``import paygate.x as y``, ``from paygate.x import y`` (also after ``;``
# in a one-liner such as ``python -c "..."``).
IMPORT = re.compile(
    r"(?:^|[;\s])(?:from\s+(paygate(?:\.\w+)+)\s+import|import\s+(paygate(?:\.\w+)+))"
)


def code_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of every fenced code block."""
    blocks, lines, start, fence = [], text.splitlines(), None, None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if start is None and stripped.startswith(("```", "~~~")):
            start, fence = number, stripped[:3]
        elif start is not None and stripped.startswith(fence):
            blocks.append((start + 1, "\n".join(lines[start : number - 1])))
            start = None
    return blocks


def internal_imports(text: str) -> list[tuple[int, str]]:
    found = []
    for first, block in code_blocks(text):
        for offset, line in enumerate(block.splitlines()):
            for match in IMPORT.finditer(line):
                module = match.group(1) or match.group(2)
                if module not in PUBLIC:
                    found.append((first + offset, module))
    return found


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_in_the_docs_imports_only_paygate_and_paygate_testing(path):
    found = internal_imports(path.read_text(encoding="utf-8"))
    assert found == [], "\n".join(
        f"{path.relative_to(ROOT)}:{line} imports the internal module {module}: use what "
        "paygate or paygate.testing exports"
        for line, module in found
    )


def test_the_scan_finds_internal_imports_and_allows_the_public_ones():
    text = "\n".join(
        [
            "```python",
            "from paygate import hookimpl",
            "from paygate.testing import ProcessorContract",
            "import paygate",
            "from paygate.plugins import load_plugins",
            "import paygate.services.refunds as refunds",
            "```",
            "from paygate.config import Settings  (prose, not code)",
            "```",
            'python -c "import sys; from paygate.db import connect"',
            "```",
        ]
    )
    assert internal_imports(text) == [
        (5, "paygate.plugins"),
        (6, "paygate.services.refunds"),
        (10, "paygate.db"),
    ]
