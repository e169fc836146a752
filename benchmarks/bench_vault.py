"""The quarantine vault: time and memory to seal and to restore a file, against a plain copy.

    python benchmarks/bench_vault.py [--sizes 5,100,1024] [--before PATH]

For each size (MiB) a file of incompressible bytes is written, then, each step in a fresh
process so that its peak RSS is its own:

- ``copy``: the floor for any vault that encrypts — the file copied to the vault's disk,
  fsynced, the original unlinked;
- ``quarantine``: ``Vault.quarantine`` (hash, seal, fsync, read back, unlink the original);
- ``restore``: ``Vault.restore`` (decrypt, verify, fsync, link back);
- ``judged``: ``Vault.quarantine`` given the hash the agent made when it judged the file (no
  hashing pass; the sealing pass checks the content against it) — the agent's own path.

``--before PATH`` runs the same steps with the ``agent`` package of another checkout too (say
``git worktree add /tmp/before <rev>``), in the same run, for a before/after comparison.
Each figure is the median of ``--repeat`` runs; the page cache is warm, as it is for a file the
agent has just classified.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.media import machine_line  # noqa: E402

_STEP = r"""
import hashlib, os, shutil, sys, time
from pathlib import Path
step, code, vault_dir, path = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
sys.path.insert(0, code)
from agent.vault import Vault

def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

vault = Vault(vault_dir)
vault.keyring.ensure()
private = vault.keyring.unlock(None) if step == "restore" else None
judged = hashlib.sha256(path.read_bytes()).hexdigest() if step == "judged" else None  # made before, by the decision
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the peak (VmHWM) to now: the PIN's scrypt peak is not the step's
base = kib("VmRSS:")
started = time.perf_counter()
if step == "copy":
    target = vault_dir / "copy.bin"
    shutil.copyfile(path, target)
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    path.unlink()
elif step == "quarantine":
    vault.quarantine(path)
elif step == "judged":
    vault.quarantine(path, content_sha=judged)
else:
    [entry] = vault.entries(private)
    vault.restore(entry.id, private)
seconds = time.perf_counter() - started
print(seconds, (kib("VmHWM:") - base) / 1024)
"""


def _step(step: str, code: Path, vault_dir: Path, path: Path) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", _STEP, step, str(code), str(vault_dir), str(path)],
                          capture_output=True, text=True, check=True)
    seconds, extra_mib = done.stdout.split()
    return float(seconds), float(extra_mib)


def _write(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for i in range(mib):
            handle.write(block[i % 997:] + block[: i % 997])


def measure(code: Path, mib: int, repeat: int, root: Path, judged: bool) -> dict[str, tuple[float, float]]:
    """step → (median seconds, median extra peak RSS in MiB)."""
    runs: dict[str, list[tuple[float, float]]] = {"copy": [], "quarantine": [], "restore": [], "judged": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=root) as temp:
            folder, vault_dir = Path(temp) / "d", Path(temp) / "vault"
            folder.mkdir()
            path = folder / "video.mp4"
            _write(path, mib)
            runs["copy"].append(_step("copy", code, vault_dir, path))
            (vault_dir / "copy.bin").unlink()
            _write(path, mib)
            runs["quarantine"].append(_step("quarantine", code, vault_dir, path))
            runs["restore"].append(_step("restore", code, vault_dir, path))
            if judged:
                runs["judged"].append(_step("judged", code, vault_dir, path))
    return {step: (statistics.median(s for s, _ in r), statistics.median(m for _, m in r)) for step, r in runs.items() if r}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="5,100,1024", help="file sizes in MiB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose vault to measure alongside")
    args = parser.parse_args()
    print(machine_line())
    codes = [("now", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    root = Path(tempfile.mkdtemp(prefix="veil-bench-vault-", dir=os.environ.get("TMPDIR", "/tmp")))
    print("| size | code | copy + fsync | quarantine (× copy) | quarantine, hash known (× copy) | restore (× copy) "
          "| extra peak RSS: quarantine / restore |")
    print("|---|---|---|---|---|---|---|")
    for mib in (int(s) for s in args.sizes.split(",")):
        for name, code in codes:
            r = measure(code, mib, args.repeat, root, judged=name == "now")  # older code cannot be given the hash
            copy_s = r["copy"][0]
            cells = [f"{r[step][0]:.2f} s ({r[step][0] / copy_s:.1f}×)" if step in r else "—" for step in ("quarantine", "judged", "restore")]
            print(f"| {mib} MiB | {name} | {copy_s:.2f} s | {' | '.join(cells)} | "
                  f"{r['quarantine'][1]:.0f} / {r['restore'][1]:.0f} MiB |", flush=True)
    os.rmdir(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
