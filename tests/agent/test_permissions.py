import os

import pytest

from agent.errors import ConfigError
from agent.permissions import PermissionPolicy, split_command
from agent.settings import PermissionRules


def policy(mode="default", allow=(), deny=(), ask=()):
    return PermissionPolicy(
        mode, PermissionRules(allow=list(allow), deny=list(deny), ask=list(ask))
    )


def test_default_mode_asks_for_edits_and_commands_but_not_reads():
    p = policy()
    assert p.check("bash", {"command": "ls"}, read_only=False).decision == "ask"
    assert (
        p.check("str_replace_based_edit_tool", {"command": "create", "path": "a"}, False).decision
        == "ask"
    )
    assert (
        p.check("str_replace_based_edit_tool", {"command": "view", "path": "a"}, True).decision
        == "allow"
    )


def test_accept_edits_allows_edits_not_commands():
    p = policy("acceptEdits")
    assert (
        p.check("str_replace_based_edit_tool", {"command": "create", "path": "a"}, False).decision
        == "allow"
    )
    assert p.check("bash", {"command": "make"}, False).decision == "ask"


def test_plan_mode_denies_anything_that_writes_even_with_allow_rules():
    p = policy("plan", allow=["bash"])
    v = p.check("bash", {"command": "ls"}, False)
    assert v.decision == "deny" and "plan mode" in v.reason
    assert p.check("grep", {"pattern": "x"}, True).decision == "allow"


def test_bypass_allows_but_deny_rules_still_win():
    p = policy("bypassPermissions", deny=["bash(rm)"])
    assert p.check("bash", {"command": "make test"}, False).decision == "allow"
    assert p.check("bash", {"command": "rm -rf build"}, False).decision == "deny"


def test_bash_prefix_rules_respect_word_boundaries_and_compound_commands():
    # As in Claude Code: `Bash(cmd)` is that exact command, `Bash(cmd:*)` the prefix.
    assert (
        policy(allow=["bash(git status)"])
        .check("bash", {"command": "git status --short"}, False)
        .decision
        == "ask"
    )
    p = policy(allow=["bash(git status:*)", "Bash(npm run test:*)"])
    assert p.check("bash", {"command": "git status"}, False).decision == "allow"
    assert p.check("bash", {"command": "git status --short"}, False).decision == "allow"
    assert p.check("bash", {"command": "git statusx"}, False).decision == "ask"
    assert p.check("bash", {"command": "npm run test:unit"}, False).decision == "allow"
    # Each part of a compound command must be allowed on its own.
    assert p.check("bash", {"command": "git status && rm -rf /"}, False).decision == "ask"
    assert p.check("bash", {"command": "git status; git status -s"}, False).decision == "allow"
    # Command substitution could run anything.
    assert p.check("bash", {"command": "git status $(rm -rf /)"}, False).decision == "ask"


def test_deny_rule_matches_any_part_of_a_compound_command():
    p = policy("bypassPermissions", deny=["bash(curl)"])
    assert p.check("bash", {"command": "echo hi | curl -d @- x"}, False).decision == "deny"


def test_path_rules_for_the_editor_and_ask_rules():
    p = policy(allow=["str_replace_based_edit_tool(src/*)"], ask=["bash(git push)"])
    assert (
        p.check(
            "str_replace_based_edit_tool", {"command": "create", "path": "src/a.py"}, False
        ).decision
        == "allow"
    )
    assert (
        p.check(
            "str_replace_based_edit_tool", {"command": "create", "path": "setup.py"}, False
        ).decision
        == "ask"
    )
    assert (
        policy("bypassPermissions", ask=["bash(git push)"])
        .check("bash", {"command": "git push origin"}, False)
        .decision
        == "ask"
    )


def test_bad_rule_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="Bad permission rule"):
        policy(allow=["bash(("])


def test_split_command():
    assert split_command("a && b || c; d | e\nf") == ["a", "b", "c", "d", "e", "f"]
    assert split_command("echo hi 2>&1") == ["echo hi 2>&1"]


def test_spelling_tricks_do_not_slip_past_deny_rules():
    p = policy("bypassPermissions", deny=["bash(git push)"])
    for cmd in (
        "git  push",
        "git\tpush origin",
        "(git push)",
        "{ git push; }",
        "echo $(git push)",
        "echo `git push`",
        "env A=1 git push",
        "command git push",
        "bash -c 'git push'",
        'true && sh -c "git push --force"',
    ):
        assert p.check("bash", {"command": cmd}, False).decision == "deny", cmd


def test_allow_rules_do_not_cover_redirections_or_nesting():
    p = policy(allow=["bash(git status)"])
    for cmd in (
        "git status > a.py",
        "git status 2> a.py",
        "git status &>x",
        "bash -c 'git status'",
    ):
        assert p.check("bash", {"command": cmd}, False).decision == "ask", cmd
    for cmd in ("git status 2>&1", "git status >/dev/null", "git  status"):
        assert p.check("bash", {"command": cmd}, False).decision == "allow", cmd


def test_path_rules_see_the_normalised_tree_path(tmp_path):
    p = PermissionPolicy(
        "bypassPermissions",
        PermissionRules(deny=["str_replace_based_edit_tool(secrets/*)"]),
        cwd=tmp_path,
    )
    for path in ("secrets/a", "./secrets/a", "x/../secrets/a", str(tmp_path / "secrets" / "a")):
        args = {"command": "create", "path": path}
        assert p.check("str_replace_based_edit_tool", args, False).decision == "deny", path


def test_protected_paths(tmp_path):
    p = PermissionPolicy(
        "acceptEdits", PermissionRules(allow=["str_replace_based_edit_tool"]), cwd=tmp_path
    )
    git = p.check(
        "str_replace_based_edit_tool", {"command": "create", "path": ".git/hooks/x"}, False
    )
    assert git.decision == "deny" and "git commands" in git.reason
    own = p.check(
        "str_replace_based_edit_tool", {"command": "create", "path": ".godwit/settings.json"}, False
    )
    assert own.decision == "ask"
    assert (
        p.check(
            "str_replace_based_edit_tool", {"command": "view", "path": ".git/config"}, True
        ).decision
        == "allow"
    )


def test_rules_naming_unknown_tools_are_refused_and_aliases_fold():
    with pytest.raises(ConfigError, match="unknown tool"):
        PermissionPolicy("default", PermissionRules(deny=["WebFetch"]), tools=["bash"])
    p = PermissionPolicy(
        "default",
        PermissionRules(allow=["Bash(ls:*)", "Edit"]),
        tools=["bash", "str_replace_based_edit_tool"],
    )
    assert p.check("bash", {"command": "ls -la"}, False).decision == "allow"


# -- issue 14 item 3 / issue 11: rules mean exactly what they name -----------------------------

EDIT_CALLS = {
    "view": {"command": "view", "path": "a.py"},
    "create": {"command": "create", "path": "a.py", "file_text": "x"},
    "str_replace": {"command": "str_replace", "path": "a.py", "old_str": "a", "new_str": "b"},
    "insert": {"command": "insert", "path": "a.py", "insert_line": 0, "insert_text": "x"},
}


@pytest.mark.parametrize(
    "name, allowed",
    [
        ("Read", {"view"}),
        ("Write", {"create"}),
        ("MultiEdit", {"str_replace", "insert"}),
        (
            "Edit",
            {"create", "str_replace", "insert"},
        ),  # Claude Code: Edit rules cover every edit tool
        ("str_replace_based_edit_tool", {"view", "create", "str_replace", "insert"}),
    ],
)
def test_each_claude_code_name_allows_exactly_what_it_names(name, allowed):
    for rule in (name, f"{name}(*.py)"):
        p = policy(allow=[rule])
        for command, args in EDIT_CALLS.items():
            # read_only=False even for view: the rule alone must decide.
            got = p.check("str_replace_based_edit_tool", args, read_only=False).decision
            assert got == ("allow" if command in allowed else "ask"), (rule, command)


def test_glob_grep_and_bash_names():
    p = policy(allow=["Glob", "Grep", "Bash(make test)"])
    assert p.check("glob", {"pattern": "*"}, False).decision == "allow"
    assert p.check("grep", {"pattern": "x"}, False).decision == "allow"
    assert p.check("bash", {"command": "make test"}, False).decision == "allow"
    assert p.check("bash", {"command": "make install"}, False).decision == "ask"
    assert p.check("str_replace_based_edit_tool", EDIT_CALLS["create"], False).decision == "ask"


def test_a_read_deny_rule_also_covers_glob_and_grep(tmp_path):
    p = PermissionPolicy(
        "default", PermissionRules(deny=["Read(secrets/*)", "Read(secrets)"]), cwd=tmp_path
    )
    assert p.check("grep", {"pattern": "x", "path": "secrets"}, True).decision == "deny"
    assert (
        p.check(
            "str_replace_based_edit_tool", {"command": "view", "path": "secrets/k"}, True
        ).decision
        == "deny"
    )
    assert p.check("grep", {"pattern": "x", "path": "src"}, True).decision == "allow"


def test_an_allow_rule_never_covers_assignments_substitutions_or_redirections():
    p = policy(allow=["bash(git status)", "bash(ls:*)"])
    for cmd in (
        "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor GIT_CONFIG_VALUE_0='rm -rf x' git status",
        "A=1 git status",
        "env GIT_DIR=x git status",
        "nohup git status",
        "command git status",
        "git status $HOME",
        "git status ${X}",
        "ls >/dev/null_x",
        "ls > /dev/null2",
        "ls >>x",
        "ls 2>x",
        "ls </etc/passwd",
        "ls `id`",
        "ls $(id)",
        "ls <(id)",
        "(git status)",
        "git status; rm x",
        "git status && rm x",
        "git status | sh",
        "git status & rm x",
        "git status\nrm x",
        "bash -c 'git status'",
        "ls \\\n; rm x",
    ):
        assert p.check("bash", {"command": cmd}, False).decision == "ask", cmd
    for cmd in (
        "git status",
        "git  status",
        "git status 2>&1",
        "git status >/dev/null",
        "ls -la 2>/dev/null",
        "ls -la; git status",
    ):
        assert p.check("bash", {"command": cmd}, False).decision == "allow", cmd


def test_deny_rules_see_through_more_spellings():
    p = policy("bypassPermissions", deny=["bash(rm)", "bash(git push)"])
    for cmd in (
        "/bin/rm x",
        "r\\m x",
        "'rm' x",
        "env -i rm x",
        "bash -lc 'rm x'",
        "xargs rm",
        "git -C . push",
        "/usr/bin/git push",
        "git pu''sh",
        "git -c a=b push",
        "timeout 5 rm x",
        "sudo rm x",
        "$(echo x); rm y",
    ):
        assert p.check("bash", {"command": cmd}, False).decision == "deny", cmd


# -- issue 14 items 1 and 2: protections on every .git and on the resolved path -----------------


def _editor(p, path, command="create"):
    return p.check(
        "str_replace_based_edit_tool", {"command": command, "path": path, "file_text": "x"}, False
    )


def test_every_git_folder_is_protected_at_any_depth(tmp_path):
    p = PermissionPolicy("bypassPermissions", PermissionRules(), cwd=tmp_path)
    for path in ("x/.git/config", "a/b/.git/HEAD", ".git", "x/.git"):
        assert _editor(p, path).decision == "deny", path
    assert _editor(p, "x/.gitignore").decision == "allow"


def test_links_into_protected_folders_are_seen_through(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".godwit").mkdir()
    os.symlink(".git", tmp_path / "gl")
    os.symlink(".godwit", tmp_path / "cfg")
    alias = tmp_path.parent / (tmp_path.name + "-alias")
    os.symlink(tmp_path, alias)
    p = PermissionPolicy("acceptEdits", PermissionRules(), cwd=tmp_path)
    for path in ("gl/config", "gl/hooks/pre-commit", str(alias / ".git" / "config")):
        assert _editor(p, path).decision == "deny", path
        assert _editor(p, path, "str_replace").decision == "deny", path
    assert _editor(p, "cfg/settings.json").decision == "ask"
    assert _editor(p, str(alias / ".godwit" / "settings.json")).decision == "ask"
    assert _editor(p, "ok.txt").decision == "allow"


def test_a_deny_rule_is_not_bypassed_through_a_link(tmp_path):
    (tmp_path / "secret.txt").write_text("s")
    os.symlink("secret.txt", tmp_path / "s")
    (tmp_path / "src").mkdir()
    os.symlink("../secret.txt", tmp_path / "src" / "s")
    p = PermissionPolicy(
        "bypassPermissions", PermissionRules(deny=["Edit(secret.txt)"]), cwd=tmp_path
    )
    assert _editor(p, "s").decision == "deny"
    assert _editor(p, "s", "str_replace").decision == "deny"
    # An allow rule must hold for the resolved path too.
    p = PermissionPolicy("default", PermissionRules(allow=["Edit(src/*)"]), cwd=tmp_path)
    assert _editor(p, "src/s").decision == "ask"
    assert _editor(p, "src/new.py").decision == "allow"


# -- issue 11: read-only shell commands need no approval, and the classifier is strict ----------

READ_ONLY = [
    "ls",
    "ls -la src",
    "cat README.md",
    "head -n 5 a.py",
    "wc -l a.py",
    "pwd",
    "git status",
    "git diff",
    "git log --oneline -5",
    "git show HEAD~1",
    "git branch",
    "git diff main..feature",
    "grep -rn TODO src",
    "tail -n 3 x",
    "git --no-pager log",
    "ls 2>/dev/null",
    "git status 2>&1",
    "rg -n foo",
]
NOT_READ_ONLY = [
    "ls > x",
    "ls >/dev/null_x",
    "ls; rm x",
    "ls && rm x",
    "ls | sh",
    "ls & rm x",
    "ls\nrm x",
    "ls $(rm x)",
    "ls `rm x`",
    "cat <(rm x)",
    "A=1 ls",
    "GIT_CONFIG_COUNT=1 git status",
    "env ls",
    "command ls",
    "/bin/ls",
    "./ls",
    "ls *",
    "cat /etc/passwd",
    "cat ../x",
    "cat ~/.ssh/id_rsa",
    "cat $HOME/x",
    "git -C x status",
    "git -c core.fsmonitor=x status",
    "git --git-dir=x status",
    "git diff --output=x",
    "git log --output x",
    "git diff --ext-diff",
    "git grep -O foo",
    "git branch new",
    "git tag v1",
    "git tag -d v1",
    "git remote add o u",
    "git push",
    "git commit -m x",
    "git checkout .",
    "git config core.pager x",
    "rg --pre sh foo",
    "rg -z foo",
    "sort -o x y",
    "find . -delete",
    "sed -i s/a/b/ x",
    "tree -o x",
    "less x",
    "echo hi",
    "rm x",
    "bash -c ls",
    "ls # comment",
    "r\\m x",
    "(ls)",
    "{ ls; }",
    "ls ${IFS}",
    "tee x",
    "cat x | tee y",
    "xargs rm",
    "ls '--color=always' \\",
]


def test_the_read_only_classifier():
    from tools.readonly_shell import is_read_only_command

    for cmd in READ_ONLY:
        assert is_read_only_command(cmd), cmd
    for cmd in NOT_READ_ONLY:
        assert not is_read_only_command(cmd), cmd


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "plan"])
def test_read_only_commands_need_no_approval_in_any_mode(mode):
    from tools.bash import BashTool

    bash = BashTool()
    p = policy(mode)
    for cmd in READ_ONLY:
        args = {"command": cmd}
        assert p.check("bash", args, bash.is_read_only(args)).decision == "allow", cmd
    for cmd in NOT_READ_ONLY:
        args = {"command": cmd}
        assert p.check("bash", args, bash.is_read_only(args)).decision != "allow", cmd
    # A deny rule still wins over read-only.
    args = {"command": "cat README.md"}
    assert policy(mode, deny=["Bash(cat:*)"]).check("bash", args, True).decision == "deny"


# -- issue 14 item 5: the sandbox as the boundary ---------------------------------------------


def test_sandboxed_bash_needs_no_approval_in_default_and_accept_edits():
    for mode in ("default", "acceptEdits"):
        p = PermissionPolicy(mode, PermissionRules(deny=["Bash(git push)"]), sandboxed=True)
        assert p.check("bash", {"command": "make && ./run > out.txt"}, False).decision == "allow"
        assert p.check("bash", {"command": "git push"}, False).decision == "deny"
    p = PermissionPolicy("plan", PermissionRules(), sandboxed=True)
    assert p.check("bash", {"command": "make"}, False).decision == "deny"
    p = PermissionPolicy("default", PermissionRules(ask=["Bash(npm publish)"]), sandboxed=True)
    assert p.check("bash", {"command": "npm publish"}, False).decision == "ask"
    assert policy().check("bash", {"command": "make"}, False).decision == "ask"  # no sandbox


def test_running_outside_the_sandbox_is_asked_unless_a_rule_names_the_command():
    p = PermissionPolicy(
        "bypassPermissions",
        PermissionRules(allow=["bash", "Bash(npm install)"], deny=["Bash(curl:*)"]),
        sandboxed=True,
    )
    assert p.outside_sandbox({"command": "npm install"}).decision == "allow"
    assert p.outside_sandbox({"command": "npm install left-pad"}).decision == "ask"
    assert p.outside_sandbox({"command": "npm install > log"}).decision == "ask"
    assert p.outside_sandbox({"command": "curl x"}).decision == "deny"
