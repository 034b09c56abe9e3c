"""Repository hygiene: a short README, docs links that resolve, no paths of a developer's machine."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 12 * 1024

# An absolute path into a developer's machine: the work tree, root's home, a user's home.
# /tmp stays allowed (examples such as `--out /tmp/audit`), and so do URLs and relative paths
# (the character before the slash must not be part of a word, a dot, a tilde or a hyphen).
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root)/|(?<![\w.~-])/(?:home|Users)/[\w.-]+/")

# Generated or vendored trees that are never committed, for checkouts without git.
UNTRACKED_DIRS = {".git", ".venv", ".cache", "__pycache__", "node_modules", "run", ".pytest_cache"}


def repo_files() -> list[Path]:
    """The tracked files (``git ls-files``), or every file outside build folders without git."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [REPO / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in UNTRACKED_DIRS and not d.endswith(".egg-info")]
            files += [Path(root) / n for n in names]
        return files


def machine_paths(text: str) -> list[str]:
    """Lines of ``text`` holding an absolute path of a developer's machine."""
    return [line.strip() for line in text.splitlines() if MACHINE_PATH.search(line)]


# --- links -------------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(markdown: str) -> str:
    """Markdown without code blocks, code spans and HTML comments: links there are not links."""
    text = FENCE.sub("", markdown)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return INLINE_CODE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", markdown)):
        base = slug(match.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links (and their #anchors) in a Markdown file that lead nowhere."""
    markdown = path.read_text(encoding="utf-8")
    problems = []
    for target in LINK.findall(prose(markdown)):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue  # http:, https:, mailto: ...
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{path.name}: {target} (no such file)")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{path.name}: {target} (no such heading)")
    return problems


def markdown_docs() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


# --- tests -------------------------------------------------------------------------------------


def test_readme_is_at_most_12_kb():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; reference material belongs in docs/"


def test_every_relative_link_in_readme_and_docs_resolves():
    docs = markdown_docs()
    assert len(docs) > 1, "docs/ has no Markdown files"
    problems = [p for doc in docs for p in broken_links(doc)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_links_into_the_docs_index():
    assert "docs/index.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_no_tracked_file_holds_a_machine_path():
    offenders = []
    for path in repo_files():
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a tracked file deleted in the work tree
        if b"\0" in data:
            continue  # binary (the gzipped sample)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(REPO)}: {line[:120]}" for line in machine_paths(text)]
    assert not offenders, "absolute paths of a developer machine:\n" + "\n".join(offenders)


def test_the_machine_path_rule():
    work, root, home = "/" + "work/", "/" + "root/", "/" + "home/"
    flagged = [f"DEFAULT = Path('{work}shared/data/tate/artworks.jsonl.gz')",
               f'"model_dir": "{root}.cache/arttag/models"', f"see {home}alice/arttag", f"file://{work}x"]
    allowed = ["--out /tmp/audit", "~/.cache/arttag/bundles/current", "../shared/data/tate/artworks.jsonl.gz",
               f"https://example.org{work}page", f"docs{work}x", "$HOME/arttag-models", f"{home.rstrip('/')} alone"]
    assert all(machine_paths(t) for t in flagged)
    assert not any(machine_paths(t) for t in allowed)


def test_the_link_checker_finds_broken_links_and_anchors(tmp_path: Path):
    (tmp_path / "other.md").write_text("# Other\n\n## Some `code` heading (v1)\n\n## Twice\n\n## Twice\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md) [ok anchor](other.md#some-code-heading-v1) [second](other.md#twice-1)\n"
        "[web](https://example.org/missing.md) [self](#title)\n"
        "[gone](missing.md) [bad anchor](other.md#nope)\n"
        "`[not a link](missing-too.md)`\n\n```\n[also not](missing-three.md)\n```\n\n# Title\n"
    )
    assert broken_links(doc) == ["doc.md: missing.md (no such file)", "doc.md: other.md#nope (no such heading)"]
