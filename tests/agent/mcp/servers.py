"""MCP servers the tests start: one well-behaved (built with the `mcp` package) and several that
misbehave. Each is a script body written to a file and run with this Python."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

GOOD = textwrap.dedent('''
    import os, sys, subprocess
    from mcp.server.mcpserver import MCPServer, Image

    app = MCPServer("good")
    pidfile = os.environ.get("PIDFILE")
    if pidfile:
        # A grandchild, as servers started through npx or uvx have: it must die with the server.
        child = subprocess.Popen(["sleep", "300"])
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()} {child.pid}")

    @app.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return "echo: " + text

    @app.tool()
    def fail(reason: str) -> str:
        """Always fails."""
        raise ValueError(reason)

    @app.tool()
    def picture() -> Image:
        """A 1x1 PNG."""
        import base64
        png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
        return Image(data=png, format="png")

    @app.tool()
    def die() -> str:
        """The server exits in the middle of the call."""
        os._exit(1)

    @app.tool()
    def env(name: str) -> str:
        """A variable of the server's environment."""
        return os.environ.get(name, "<unset>")

    app.run("stdio")
''')

HANG = "import time\ntime.sleep(600)\n"

CRASH = textwrap.dedent("""
    import sys
    sys.stderr.write("fatal: GITHUB_TOKEN is not set\\n")
    sys.exit(3)
""")

MALFORMED = textwrap.dedent("""
    import sys
    for line in sys.stdin:
        sys.stdout.write("this is not json\\n")
        sys.stdout.write('{"jsonrpc": "2.0", "id": "nope", "result": 5}\\n')
        sys.stdout.write('{"jsonrpc": "2.0", "method": 7}\\n')
        sys.stdout.flush()
""")

EXIT_LATER = textwrap.dedent('''
    import os, threading, time
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("short-lived")

    @app.tool()
    def hello() -> str:
        """Say hello."""
        return "hello"

    threading.Thread(target=lambda: (time.sleep(1.5), os._exit(0)), daemon=True).start()
    app.run("stdio")
''')


def script(tmp_path: Path, name: str, body: str) -> dict:
    """A stdio server entry running `body` with this Python."""
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return {"command": sys.executable, "args": [str(path)]}
