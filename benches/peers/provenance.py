"""The commit a benchmark ran on. `git describe --dirty` would call every run after the first
dirty, because the first one rewrote its results file; files under benches/results/ are the
benchmarks' own output, so they do not count as changes to what was measured."""
import subprocess


def commit():
    """(short hash, with -dirty when tracked files outside benches/results/ differ; those files)."""
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True).stdout
    head = git("rev-parse", "--short", "HEAD").strip()
    changed = [l[3:] for l in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not l[3:].startswith("benches/results/")]
    return (head + ("-dirty" if changed else ""), changed)
