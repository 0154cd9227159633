"""Each case: set up, snapshot, change through real bash and real writes, restore, compare byte
for byte and mode for mode; then undo the restore and compare with the changed tree."""

from __future__ import annotations

import os
import subprocess

from checkpoints import CheckpointStore

from .helpers import bash, git_fingerprint, tree_state, ugit, user_env


def test_binary_files(project, roundtrip):
    data = bytes(range(256)) * 40 + b"\0\r\n\x00\xff"
    (project / "blob.bin").write_bytes(data)
    (project / "img.png").write_bytes(os.urandom(5000))

    def change():
        bash(project, "printf '\\x00\\x01changed' >> blob.bin; head -c 3000 /dev/urandom > img.png")

    roundtrip(change)


def test_symlinks_to_file_dir_and_dangling(project, roundtrip):
    os.symlink("src/app.py", project / "to-file")
    os.symlink("src", project / "to-dir")
    os.symlink("does/not/exist", project / "dangling")

    def change():
        bash(
            project,
            "ln -sfn README.md to-file; rm to-dir; mkdir to-dir; echo x > to-dir/f; "
            "rm dangling; echo now-a-file > dangling; ln -s elsewhere new-link",
        )

    _, after = roundtrip(change)
    assert after[b"to-file"] == ("link", None, b"README.md")


def test_executable_bit(project, roundtrip):
    (project / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(project / "run.sh", 0o755)
    (project / "tool.py").write_text("x = 1\n")

    def change():
        bash(project, "chmod -x run.sh; chmod +x tool.py")

    roundtrip(change)


def test_private_0600_file(project, roundtrip):
    (project / "secret.env").write_text("TOKEN=abc\n")
    os.chmod(project / "secret.env", 0o600)

    def change():
        bash(project, "chmod 644 secret.env; echo MORE=1 >> secret.env")

    roundtrip(change)


def test_mode_only_change_right_after_snapshot(project, store):
    """A chmod in the same second as the snapshot (git compares ctime to the second)."""
    (project / "k").write_text("key\n")
    os.chmod(project / "k", 0o644)
    cp = store.snapshot("s", 1, "", "")
    os.chmod(project / "k", 0o600)
    cp2 = store.snapshot("s", 1, "", "")
    assert not cp2.unchanged
    assert [(f.path, f.status, f.new_mode) for f in cp2.files] == [("k", "mode", "100600")]
    store.restore(cp.id)
    assert oct(os.stat(project / "k").st_mode & 0o777) == oct(0o644)


def test_crlf_under_text_auto(project, roundtrip, store):
    (project / ".gitattributes").write_text("* text=auto\n")
    crlf = b"line one\r\nline two\r\n"
    (project / "win.txt").write_bytes(crlf)
    (project / "mixed.txt").write_bytes(b"a\r\nb\nc\r")

    def change():
        bash(project, "sed -i 's/\\r$//' win.txt; printf 'x\\r\\n' >> mixed.txt")

    before, after = roundtrip(change)
    assert before[b"win.txt"][2] == crlf and after[b"win.txt"][2] == b"line one\nline two\n"


def test_crlf_blob_is_stored_raw(project, store):
    (project / ".gitattributes").write_text("* text=auto eol=lf\n")
    (project / "win.txt").write_bytes(b"a\r\nb\r\n")
    cp = store.snapshot("s", 1, "", "")
    blob = store._git.run(["cat-file", "blob", f"{cp.commit}:win.txt"])
    assert blob == b"a\r\nb\r\n"


def test_lfs_attributes_without_git_lfs(project, roundtrip, store):
    (project / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    raw = os.urandom(4096)
    (project / "model.bin").write_bytes(raw)

    def change():
        bash(project, "head -c 100 /dev/urandom > model.bin")

    roundtrip(change)
    cp = store.list()[0]
    assert store._git.run(["cat-file", "blob", f"{cp.commit}:model.bin"]) == raw


def test_non_utf8_and_unicode_names(project, roundtrip, store):
    root = os.fsencode(str(project))
    with open(root + b"/caf\xe9-latin1.txt", "wb") as fh:
        fh.write(b"latin-1 name\n")
    (project / "naïve ünïcødé 日本.txt").write_text("unicode name\n")
    (project / "with\nnewline.txt").write_text("newline in name\n")
    (project / 'quote"back\\slash.txt').write_text("quoted\n")

    def change():
        bash(
            project,
            "rm -f caf*-latin1.txt; echo changed >> 'naïve ünïcødé 日本.txt'; "
            "rm with*newline.txt; echo new > 'また新しい.txt'; echo q >> quote*",
        )

    roundtrip(change)
    cp = store.snapshot("s", 3, "", "")
    cp.model_dump_json()  # JSON-serialisable with undecodable names


def test_empty_directories(project, roundtrip, store):
    (project / "empty").mkdir()
    (project / "deep" / "er" / "est").mkdir(parents=True)
    os.makedirs(project / "private-empty", mode=0o700)
    os.chmod(project / "private-empty", 0o700)
    cp = store.snapshot("s", 0, "", "")
    assert cp.empty_dirs == 3

    def change():
        bash(project, "rmdir empty; rm -r deep; mkdir -p brand/new; chmod 755 private-empty")

    roundtrip(change)


def test_nested_git_repository(project, roundtrip, store):
    nested = project / "vendor" / "lib"
    nested.mkdir(parents=True)
    ugit(nested, "init", "-q", "-b", "main", env=user_env(project.parent))
    (nested / "lib.py").write_text("def f(): pass\n")
    (nested / ".gitignore").write_text("*.tmp\n")
    (nested / "cache.tmp").write_text("ignored inside the nested repo\n")
    ugit(nested, "add", "-A", env=user_env(project.parent))
    ugit(nested, "commit", "-q", "-m", "nested", env=user_env(project.parent))
    (nested / "untracked-in-nested.txt").write_text("untracked\n")
    fp = git_fingerprint(project)
    cp = store.snapshot("s", 0, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "vendor/lib/lib.py" in files and "vendor/lib/untracked-in-nested.txt" in files
    assert not any(".git/" in f for f in files) and "vendor/lib/cache.tmp" not in files

    def change():
        bash(
            project,
            "echo 'def g(): pass' >> vendor/lib/lib.py;"
            " rm vendor/lib/untracked-in-nested.txt; echo new > vendor/lib/new.py",
        )

    roundtrip(change)
    assert git_fingerprint(project) == fp
    bash(project, "echo more > vendor/lib/cache.tmp; echo v > vendor/lib/v.py")
    store.restore(cp.id)
    assert (nested / "cache.tmp").read_text() == "more\n"  # ignored in the nested repo: untouched
    assert not (nested / "v.py").exists()
    assert git_fingerprint(project) == fp


def test_submodule(project, roundtrip, store, tmp_path):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    env = user_env(tmp_path)
    ugit(upstream, "init", "-q", "-b", "main", env=env)
    (upstream / "mod.c").write_text("int x;\n")
    ugit(upstream, "add", "-A", env=env)
    ugit(upstream, "commit", "-q", "-m", "up", env=env)
    ugit(
        project,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(upstream),
        "deps/mod",
        env=env,
    )
    ugit(project, "commit", "-q", "-m", "add submodule", env=env)
    assert (project / "deps" / "mod" / ".git").is_file()
    fp = git_fingerprint(project)

    def change():
        bash(project, "echo 'int y;' >> deps/mod/mod.c; echo new > deps/mod/new.h")

    roundtrip(change)
    cp = store.list()[0]
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "deps/mod/mod.c" in files and "deps/mod/.git" not in files
    assert git_fingerprint(project) == fp


def test_gitignored_files_never_captured_never_deleted(project, store):
    (project / ".gitignore").write_text("*.log\nbuild/\n")
    (project / "app.log").write_text("old log\n")
    (project / "build").mkdir()
    (project / "build" / "out.o").write_bytes(b"\x7fELF")
    cp = store.snapshot("s", 0, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "app.log" not in files and "build/out.o" not in files
    bash(
        project,
        "echo new >> app.log; echo x > new.log; echo y > build/more.o; echo t > tracked.txt",
    )
    store.restore(cp.id)
    assert (project / "app.log").read_text() == "old log\nnew\n"
    assert (project / "new.log").exists() and (project / "build" / "more.o").exists()
    assert not (project / "tracked.txt").exists()


def test_untracked_files_present_before_session_are_restored(project, roundtrip):
    (project / "notes.txt").write_text("my notes, never committed\n")
    (project / "scratch").mkdir()
    (project / "scratch" / "idea.md").write_text("idea\n")

    def change():
        bash(project, "rm notes.txt; rm -r scratch")

    roundtrip(change)


def test_file_deleted_by_bash(project, roundtrip):
    roundtrip(lambda: bash(project, "rm src/app.py README.md"))


def test_directory_renamed_by_bash(project, roundtrip):
    (project / "src" / "pkg").mkdir()
    (project / "src" / "pkg" / "mod.py").write_text("m = 1\n")
    roundtrip(lambda: bash(project, "mv src lib"))


def test_file_replaced_by_directory_and_back(project, roundtrip):
    (project / "thing").mkdir()
    (project / "thing" / "inside.txt").write_text("inside\n")

    def change():
        bash(
            project,
            "rm README.md; mkdir README.md; echo x > README.md/child; "
            "rm -r thing; echo now-a-file > thing",
        )

    roundtrip(change)


def test_file_over_size_cap_is_skipped_and_left_alone(project, home):
    store = CheckpointStore(project, home, size_cap=1 << 20)
    (project / "big.dat").write_bytes(os.urandom((1 << 20) + 10))
    cp = store.snapshot("s", 0, "", "")
    assert [(s.path, s.size) for s in cp.skipped] == [("big.dat", (1 << 20) + 10)]
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "big.dat" not in files
    bash(
        project,
        "head -c 2000000 /dev/urandom > big.dat; head -c 1100000 /dev/urandom > big2.dat;"
        " echo x > small.txt",
    )
    big, big2 = (project / "big.dat").read_bytes(), (project / "big2.dat").read_bytes()
    res = store.restore(cp.id)
    assert (project / "big.dat").read_bytes() == big
    assert (project / "big2.dat").read_bytes() == big2
    assert not (project / "small.txt").exists()
    assert not res.conflicts
    # a captured file that grows over the cap leaves the next snapshot, listed as skipped
    bash(project, "head -c 1100000 /dev/urandom > README.md")
    cp2 = store.snapshot("s", 1, "", "")
    assert "README.md" in [s.path for s in cp2.skipped]


def test_read_only_file(project, roundtrip):
    (project / "frozen.txt").write_text("do not edit\n")
    os.chmod(project / "frozen.txt", 0o444)
    (project / "ro-dir").mkdir()
    (project / "ro-dir" / "f").write_text("in a read-only dir\n")
    os.chmod(project / "ro-dir" / "f", 0o444)

    def change():
        bash(
            project,
            "chmod u+w frozen.txt; echo edited >> frozen.txt; chmod 444 frozen.txt;"
            " rm -f ro-dir/f; echo new > ro-dir/g",
        )

    roundtrip(change)


def test_users_staged_change_stays_staged(project, store):
    (project / "README.md").write_text("# project\nstaged line\n")
    ugit(project, "add", "README.md")
    (project / "README.md").write_text("# project\nstaged line\nunstaged line\n")
    staged = ugit(project, "diff", "--cached")
    unstaged = ugit(project, "diff")
    fp = git_fingerprint(project)
    cp = store.snapshot("s", 1, "", "")
    bash(project, "echo agent >> README.md; rm src/app.py")
    store.restore(cp.id)
    store.undo_restore()
    store.restore(cp.id)
    assert git_fingerprint(project) == fp  # before any git command of ours refreshes the index
    assert ugit(project, "diff", "--cached") == staged
    assert ugit(project, "diff") == unstaged


def test_ignore_rule_added_later_drops_file_but_restore_never_clobbers_it(project, store):
    (project / "data.csv").write_text("v1\n")
    cp = store.snapshot("s", 1, "", "")
    bash(project, "echo '*.csv' > .gitignore; echo v2 > data.csv")
    cp2 = store.snapshot("s", 2, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp2.commit]).decode().split("\n")
    assert "data.csv" not in files
    res = store.restore(cp.id)
    # the snapshot had data.csv, but the file now there is ignored (in no snapshot): kept
    assert (project / "data.csv").read_text() == "v2\n"
    assert [c.path for c in res.conflicts] == ["data.csv"]
    assert not (project / ".gitignore").exists()


def test_user_git_byte_identical_after_a_session(project, store):
    hooks = project / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    os.chmod(hooks / "pre-commit", 0o755)
    (project / "wip.txt").write_text("stash me\n")
    ugit(project, "add", "wip.txt")
    ugit(project, "stash", "-q")
    (project / "untracked.txt").write_text("u\n")
    (project / ".git" / "info" / "exclude").write_text("*.secret\n")
    (project / "key.secret").write_text("s3cr3t\n")
    fp = git_fingerprint(project)
    cp1 = store.snapshot("s", 1, "one", "turn-start")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp1.commit]).decode().split("\n")
    assert "key.secret" not in files  # the user's info/exclude is honoured
    bash(
        project,
        "echo a >> README.md; rm untracked.txt; mkdir -p x/y; echo z > x/y/z; "
        "echo changed > key.secret",
    )
    cp2 = store.snapshot("s", 2, "two", "turn-start")
    store.diff(cp1.id)
    store.restore(cp1.id)
    store.undo_restore()
    store.restore(cp2.id)
    store.restore(cp1.id)
    store.prune(__import__("datetime").timedelta(0))
    assert git_fingerprint(project) == fp
    assert (project / "key.secret").read_text() == "changed\n"


def test_git_subprocess_view_of_user_repo_unchanged(project, store):
    """The user's `git status` is the same before and after a session."""
    (project / "u.txt").write_text("u\n")
    status = ugit(project, "status", "--porcelain")
    cp = store.snapshot("s", 1, "", "")
    bash(project, "echo x > v.txt; rm u.txt")
    store.restore(cp.id)
    assert ugit(project, "status", "--porcelain") == status
    assert (
        subprocess.run(
            ["git", "stash", "list"], cwd=project, capture_output=True, env=user_env(project.parent)
        ).stdout
        == b""
    )
    assert tree_state(project)[b"u.txt"][2] == b"u\n"


def test_directory_emptied_by_bash_is_kept_as_empty_dir(project, roundtrip, store):
    (project / "cache").mkdir()
    (project / "cache" / "item").write_text("i\n")
    cp = store.snapshot("s", 0, "", "")
    bash(project, "rm cache/item")
    cp2 = store.snapshot("s", 1, "", "")
    assert cp2.empty_dirs == 1
    assert [(f.path, f.status) for f in cp2.files] == [("cache/item", "deleted")]
    store.restore(cp.id)
    assert (project / "cache" / "item").read_text() == "i\n"
    store.restore(cp2.id)
    assert (project / "cache").is_dir() and not any((project / "cache").iterdir())


def test_unignored_files_in_a_known_directory_are_captured(project, store):
    (project / ".gitignore").write_text("logs/*.log\n")
    (project / "logs").mkdir()
    (project / "logs" / "a.log").write_text("a\n")
    store.snapshot("s", 0, "", "")
    store.snapshot("s", 0, "", "")  # the collapsed "logs/" listing is now cached
    (project / ".gitignore").write_text("")
    cp = store.snapshot("s", 1, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "logs/a.log" in files
    (project / ".git" / "info" / "exclude").write_text("logs/\n")
    cp = store.snapshot("s", 2, "", "")
    files = store._git.run(["ls-tree", "-r", "--name-only", cp.commit]).decode().split("\n")
    assert "logs/a.log" not in files


def test_symlinked_directory_is_never_written_through(project, store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me\n")
    (project / "d").mkdir()
    (project / "d" / "victim.txt").write_text("in project\n")
    cp = store.snapshot("s", 0, "", "")
    bash(project, f"rm -r d; ln -s {outside} d")
    store.restore(cp.id)
    assert (outside / "victim.txt").read_text() == "keep me\n"
    assert (project / "d").is_dir() and not (project / "d").is_symlink()
    assert (project / "d" / "victim.txt").read_text() == "in project\n"
