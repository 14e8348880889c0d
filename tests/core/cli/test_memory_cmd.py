"""``exoclaw memory list|forget`` against a real ``exoclaw serve``."""

from __future__ import annotations

from tests.serving import clean_env, run_cli, start_serve, stop


def test_the_person_lists_and_forgets_from_the_terminal(tmp_path):
    env = clean_env(tmp_path, USER="ann")
    served = start_serve(tmp_path, env=env)
    url = ["--url", served.url]
    try:
        said = run_cli(tmp_path, "chat", "my dog's name is Luna", *url, env=env)
        assert said.returncode == 0, said.stderr
        listed = run_cli(tmp_path, "memory", "list", *url, env=env)
        fact_id = listed.stdout.split()[0].lstrip("#")
        forgot = run_cli(tmp_path, "memory", "forget", fact_id, *url, env=env)
        after = run_cli(tmp_path, "memory", "list", *url, env=env)
        everything = run_cli(tmp_path, "memory", "list", "--all", "--json", *url, env=env)
        wrong = run_cli(tmp_path, "memory", "forget", "999", *url, env=env)
    finally:
        stop(served)
    assert "the user's dog's name is Luna" in listed.stdout
    assert forgot.returncode == 0 and "forgotten" in forgot.stdout
    assert after.stdout.strip() == "nothing remembered about this person"
    assert '"superseded_at": "20' in everything.stdout
    assert wrong.returncode == 1 and "no remembered fact 999" in wrong.stderr and "Traceback" not in wrong.stderr
