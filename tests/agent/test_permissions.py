import pytest

from agent.errors import ConfigError
from agent.permissions import PermissionPolicy, split_command
from agent.settings import PermissionRules


def policy(mode="default", allow=(), deny=(), ask=()):
    return PermissionPolicy(mode, PermissionRules(allow=list(allow), deny=list(deny), ask=list(ask)))


def test_default_mode_asks_for_edits_and_commands_but_not_reads():
    p = policy()
    assert p.check("bash", {"command": "ls"}, read_only=False).decision == "ask"
    assert p.check("str_replace_based_edit_tool", {"command": "create", "path": "a"}, False).decision == "ask"
    assert p.check("str_replace_based_edit_tool", {"command": "view", "path": "a"}, True).decision == "allow"


def test_accept_edits_allows_edits_not_commands():
    p = policy("acceptEdits")
    assert p.check("str_replace_based_edit_tool", {"command": "create", "path": "a"}, False).decision == "allow"
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
    p = policy(allow=["bash(git status)", "Bash(npm run test:*)"])
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
    assert p.check("str_replace_based_edit_tool", {"command": "create", "path": "src/a.py"}, False).decision == "allow"
    assert p.check("str_replace_based_edit_tool", {"command": "create", "path": "setup.py"}, False).decision == "ask"
    assert policy("bypassPermissions", ask=["bash(git push)"]).check(
        "bash", {"command": "git push origin"}, False).decision == "ask"


def test_bad_rule_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="Bad permission rule"):
        policy(allow=["bash(("])


def test_split_command():
    assert split_command("a && b || c; d | e\nf") == ["a", "b", "c", "d", "e", "f"]
    assert split_command("echo hi 2>&1") == ["echo hi 2>&1"]


def test_spelling_tricks_do_not_slip_past_deny_rules():
    p = policy("bypassPermissions", deny=["bash(git push)"])
    for cmd in ("git  push", "git\tpush origin", "(git push)", "{ git push; }", "echo $(git push)",
                "echo `git push`", "env A=1 git push", "command git push", "bash -c 'git push'",
                "true && sh -c \"git push --force\""):
        assert p.check("bash", {"command": cmd}, False).decision == "deny", cmd


def test_allow_rules_do_not_cover_redirections_or_nesting():
    p = policy(allow=["bash(git status)"])
    for cmd in ("git status > a.py", "git status 2> a.py", "git status &>x", "bash -c 'git status'"):
        assert p.check("bash", {"command": cmd}, False).decision == "ask", cmd
    for cmd in ("git status 2>&1", "git status >/dev/null", "git  status"):
        assert p.check("bash", {"command": cmd}, False).decision == "allow", cmd


def test_path_rules_see_the_normalised_tree_path(tmp_path):
    p = PermissionPolicy("bypassPermissions",
                         PermissionRules(deny=["str_replace_based_edit_tool(secrets/*)"]), cwd=tmp_path)
    for path in ("secrets/a", "./secrets/a", "x/../secrets/a", str(tmp_path / "secrets" / "a")):
        args = {"command": "create", "path": path}
        assert p.check("str_replace_based_edit_tool", args, False).decision == "deny", path


def test_protected_paths(tmp_path):
    p = PermissionPolicy("acceptEdits", PermissionRules(allow=["str_replace_based_edit_tool"]),
                         cwd=tmp_path)
    git = p.check("str_replace_based_edit_tool", {"command": "create", "path": ".git/hooks/x"}, False)
    assert git.decision == "deny" and "git commands" in git.reason
    own = p.check("str_replace_based_edit_tool", {"command": "create", "path": ".godwit/settings.json"}, False)
    assert own.decision == "ask"
    assert p.check("str_replace_based_edit_tool", {"command": "view", "path": ".git/config"}, True).decision == "allow"


def test_rules_naming_unknown_tools_are_refused_and_aliases_fold():
    with pytest.raises(ConfigError, match="unknown tool"):
        PermissionPolicy("default", PermissionRules(deny=["WebFetch"]), tools=["bash"])
    p = PermissionPolicy("default", PermissionRules(allow=["Bash(ls)", "Edit"]),
                         tools=["bash", "str_replace_based_edit_tool"])
    assert p.check("bash", {"command": "ls -la"}, False).decision == "allow"
