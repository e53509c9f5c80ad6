"""`hearth` as a command a person can type: README's line that links `.venv/bin/hearth`
into `~/.local/bin` works as written, a new Debian user's `~/.profile` then finds it,
and so does every `Exec=` of packaging/*.desktop (a desktop entry runs its command from
the PATH, it has no `%h`)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from tests.acceptance.conftest import HEARTH, ROOT, Home
from tests.acceptance.docs import code_lines, desktop_execs

SKELETON_PROFILE = Path("/etc/skel/.profile")
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin"


def login_shell(home: Home, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a shell that has read the user's ~/.profile, as after a login."""
    env = {"HOME": str(home.path), "PATH": LOGIN_PATH, "LANG": "C.UTF-8"}
    return subprocess.run(["sh", "-c", f". ~/.profile; {command}"], cwd=home.path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_readme_link_puts_hearth_on_a_new_users_path(hearth: Path, home: Home) -> None:
    links = [line for line in code_lines() if "ln " in line and ".venv/bin/hearth" in line]
    assert links, "README.md no longer says how to put hearth on the PATH"
    if SKELETON_PROFILE.exists():
        shutil.copy(SKELETON_PROFILE, home.path / ".profile")
    else:  # not Debian: the same rule as Debian's
        (home.path / ".profile").write_text(
            'if [ -d "$HOME/.local/bin" ] ; then PATH="$HOME/.local/bin:$PATH"; fi\n')
    for line in links:
        done = subprocess.run(["sh", "-c", line], cwd=ROOT,
                              env={"HOME": str(home.path), "PATH": LOGIN_PATH},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{line}: {done.stderr}"
    found = login_shell(home, "command -v hearth && hearth --version")
    assert found.returncode == 0, found.stderr
    where, version = found.stdout.splitlines()[:2]
    assert Path(where).resolve() == HEARTH.resolve()
    assert version.startswith("hearth ")
    for path, command in desktop_execs():
        argv = shlex.split(command)
        runs = login_shell(home, f"{shlex.quote(argv[0])} {shlex.join(argv[1:])} --help")
        assert runs.returncode == 0 and "usage:" in runs.stdout, f"{path.name}: {command}"
