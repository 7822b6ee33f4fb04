"""The project's docs stand alone and keep up with the code: links stay inside the repository, the README's code
map names what exists, and its table of environment variables lists every MLA_BACKEND_* variable the code reads."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted((REPO / "kernels").glob("*.md")),
        *sorted((REPO / "integration_tests").rglob("README.md"))]


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_markdown_links_point_inside_the_repository():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(REPO) and path.exists(), f"{doc.relative_to(REPO)}: {target}"


def test_no_doc_or_source_cites_notes_outside_the_repository():
    sources = [path for folder in ("mla_backend", "benchmarks", "integration_tests", "tests")
               for path in (REPO / folder).rglob("*.py") if path != Path(__file__).resolve()]
    for path in [*DOCS, *sources, REPO / "setup.py"]:
        text = path.read_text()
        assert "DESIGN.md" not in text and "../shared" not in text, path


def test_code_map_names_existing_paths_and_every_module():
    where = [line.split("|")[1] for line in section("Code map").splitlines() if line.startswith("| `")]
    code_map = "\n".join(where)
    for cells in where:
        directory = None
        for cell in re.findall(r"`([\w./-]+)`", cells):  # `dir/a.py`, `b.py`: b.py is in dir too
            if "/" in cell:
                directory = cell.rsplit("/", 1)[0]
                assert (REPO / cell).exists(), cell
            else:
                assert directory is not None and (REPO / directory / cell).exists(), cell
    modules = [p.name for p in (REPO / "mla_backend").glob("*.py") if p.name != "__init__.py"]
    packages = [p.name for p in (REPO / "mla_backend").iterdir() if (p / "__init__.py").is_file()]
    for name in modules:
        assert f"`{name}`" in code_map or f"`mla_backend/{name}`" in code_map, f"{name} is not in the code map"
    for name in packages:
        assert f"`mla_backend/{name}/`" in code_map, f"mla_backend/{name}/ is not in the code map"


def test_every_environment_variable_is_documented():
    sources = [*REPO.glob("setup.py"), *(REPO / "mla_backend").rglob("*.py"), *(REPO / "benchmarks").glob("*.py"),
               *(REPO / "integration_tests").glob("*.py"), *(REPO / "integration_tests").glob("*.sh"),
               *(REPO / "docs").rglob("*.sh"), *(REPO / "docs" / "sagemaker").iterdir(), *(REPO / ".ci").iterdir()]
    used = {name for path in sources if path.is_file()
            for name in re.findall(r"MLA_BACKEND_[A-Z_]+(?![\w.])", path.read_text(errors="replace"))}
    documented = set(re.findall(r"^\| `(MLA_BACKEND_[A-Z_]+)` \|", section("Environment variables"), re.MULTILINE))
    assert used and used <= documented, f"not in README's table: {sorted(used - documented)}"
    assert documented <= used, f"documented but unused: {sorted(documented - used)}"
