"""The fast start: a per-user fork server that keeps Godwit and the SDKs imported.

`client.main` is the `godwit` console script. It imports almost nothing, asks the server (one per
user, code version and interpreter set-up, listening in `$GODWIT_HOME/run/`) to fork a child that
takes over the caller's argv, environment, working directory, umask, signal dispositions and
standard file descriptors, relays signals to it and exits as it exits. Whenever that is not
possible it runs the ordinary CLI in-process, silently, and starts a server for next time.
`GODWIT_NO_SERVER=1` switches the server off. See README.md in this folder.

Nothing in this package may import anything at module level beyond the standard library: the
client must stay tiny, and the server must not pull in Godwit before it has fingerprinted it.
"""
