"""A compute worker installs plain `synthscope`, without the [dashboard] extra: the library and the command
line work there, and the dashboard commands say how to install what they lack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dashboard_extra import dashboard_only_modules

HIDE = textwrap.dedent('''
    import json, sys
    HIDDEN = set(json.loads(sys.argv[1]))

    class Hide:   # as if the [dashboard] extra were not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
''')

SCRIPT = HIDE + textwrap.dedent('''
    import synthscope
    from typer.testing import CliRunner
    from synthscope.cli import app

    resolved = [name for name in synthscope.__all__ if getattr(synthscope, name) is not None]
    runner = CliRunner()
    outcome = {"resolved": resolved,
               "help": runner.invoke(app, ["--help"]).output,
               "dashboard": (lambda r: (r.exit_code, r.output))(runner.invoke(app, ["dashboard", sys.argv[2]])),
               "demo": (lambda r: (r.exit_code, r.output))(runner.invoke(app, ["demo", "--quick", "--serve",
                                                                               "--out", sys.argv[3]])),
               "leaked": sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN)}
    print(json.dumps(outcome))
''')


@pytest.mark.timeout(300)
def test_the_core_and_the_cli_work_without_the_dashboard_extra(repo_root, tmp_path):
    hidden = dashboard_only_modules(repo_root)
    demo_out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(sorted(hidden)), str(tmp_path), str(demo_out)],
                          capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    import synthscope

    assert outcome["resolved"] == sorted(synthscope.__all__)   # every public name imports
    assert outcome["leaked"] == []
    for command in ("info", "embed", "membership", "attribute", "validate", "dashboard"):
        assert command in outcome["help"]
    for name in ("dashboard", "demo"):
        code, output = outcome[name]
        assert code == 2, output
        assert "[dashboard] extra" in output and "pip install 'synthscope[dashboard]'" in output, output
        assert "Traceback" not in output
    assert not demo_out.exists(), "demo --serve must refuse before building anything"
