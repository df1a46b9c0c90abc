"""The CLI's glibc tuning applies only where it should."""
import os
import subprocess
import sys

CODE = "from mmgraph._malloc import tune_malloc; print(tune_malloc())"


def run(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "MMGRAPH_KEEP_MALLOC"}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_applied_on_glibc_unless_the_user_chose():
    expected = "True" if sys.platform.startswith("linux") else "False"
    assert run({}) == expected
    assert run({"MALLOC_ARENA_MAX": "2"}) == "False"
    assert run({"MMGRAPH_KEEP_MALLOC": "1"}) == "False"
