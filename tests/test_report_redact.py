"""Secrets never reach a rendered file: env-style assignments, URL passwords, known values, logs included."""
from __future__ import annotations

import pytest

from harness.redact import MASK, Redactor, is_secret_name
from harness.reports.builder import ReportInputs, render_run
from tests.reportruns import TODAY, rec, write_run

HF = "hf_abcdefghijklmnopqrstuvwxyz0123"


@pytest.mark.parametrize("text, secret", [
    (f"export HF_TOKEN={HF}", HF),
    ('OPENAI_API_KEY="sk-live-123456"', "sk-live-123456"),
    ('{"aws_secret": "wJalrXUtnFEMI"}', "wJalrXUtnFEMI"),
    ("db_password: hunter22", "hunter22"),
    ("MY_PASSWORD_FILE=/etc/pw-secret", "/etc/pw-secret"),
    ("--api-key sk-cli-98765 --port 1", "sk-cli-98765"),
    ("--hf-token=abcdef123", "abcdef123"),
    ("pip install --index-url https://ci:s3cr3tPass@pypi.example.org/simple x", "s3cr3tPass"),
    ("Authorization: Bearer eyJhbGciOi.xyz", "eyJhbGciOi.xyz"),
])
def test_text_patterns(text, secret):
    out = Redactor().text(text)
    assert secret not in out and MASK in out


def test_known_values_are_masked_anywhere_and_names_are_recognised():
    r = Redactor.from_sources({"HF_TOKEN": HF, "PATH": "/usr/bin:/bin"}, {"env": {"GITHUB_TOKEN": "ghp_1234567890"}})
    assert r.text(f"downloading with {HF} ok; gh ghp_1234567890") == f"downloading with {MASK} ok; gh {MASK}"
    assert r.text("/usr/bin:/bin") == "/usr/bin:/bin"
    assert r.value({"HF_TOKEN": "x", "nested": [{"db_password": "p"}], "port": 1}) == {
        "HF_TOKEN": MASK, "nested": [{"db_password": MASK}], "port": 1}
    assert all(map(is_secret_name, ["HF_TOKEN", "AWS_SECRET", "x_key", "SomePassword1"]))
    assert not any(map(is_secret_name, ["tokens_per_s", "max_abs", "keyboard", "monkey"]))


def test_ordinary_text_is_untouched():
    r = Redactor()
    for text in ("hf-cpu-tiny-llama-disk", "wrong-answer: 5/12 correct", "max_abs=0.001", "http://host:8000/health",
                 "tokens_per_s: 12.5", "--offload disk --port 1234"):
        assert r.text(text) == text


def test_every_output_is_redacted_logs_command_manifest_and_fingerprint_included(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF)
    run = write_run(tmp_path / "latest", [
        rec("hf-npu-m-none", "accuracy", "error", reason=f"boot-crash: 401 for token {HF}",
            log_tail=f"HF_TOKEN={HF}\nfetch https://bot:hunter2pass@hub.example/x\n",
            command="python server.py --api-key sk-cmd-555555 --port 1",
            fingerprint={"runtime": "hf", "env": {"HF_TOKEN": HF, "NPU_VISIBLE_DEVICES": "0"}, "commit": "abc123"}),
    ], argv=["harness", "run", "--runtime-python", "x=/venv/python", f"--hf-token={HF}"])
    out = render_run(ReportInputs.from_env(run, environ={"HF_TOKEN": HF}, today=TODAY))
    for path in (out.index, out.summary, out.junit):
        text = path.read_text()
        for secret in (HF, "hunter2pass", "sk-cmd-555555"):
            assert secret not in text, (path.name, secret)
    html = out.index.read_text()
    assert "NPU_VISIBLE_DEVICES" in html and "abc123" in html  # the fingerprint is shown, only secrets masked


@pytest.mark.parametrize("text", [
    "reference_key=3fa9c0d2e4b61a7f", '{"reference_key": "3fa9c0d2e4b61a7f"}', "matrix_key: argv:--devices=cpu",
    "cache_key=sha256:0123456789abcdef", "weights_digest_key=abcdef012345", '"pad_token": "<pad>"', "eos_token=</s>",
])
def test_hashes_lookup_keys_and_vocabulary_tokens_are_not_secrets(text):
    assert Redactor().text(text) == text


def test_hash_valued_fields_stay_readable_while_secrets_next_to_them_are_masked():
    data = {"reference_key": "3fa9c0d2e4b61a7f", "matrix_key": "argv:--devices=cpu", "HF_TOKEN": HF,
            "OPENAI_API_KEY": "sk-live-123456", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "GITHUB_TOKEN": "ghp_1234567890"}
    r = Redactor.from_sources({}, data)
    assert r.value(data) == {"reference_key": "3fa9c0d2e4b61a7f", "matrix_key": "argv:--devices=cpu", "HF_TOKEN": MASK,
                             "OPENAI_API_KEY": MASK, "AWS_SECRET_ACCESS_KEY": MASK, "GITHUB_TOKEN": MASK}
    # a hash learnt from a manifest is not a known secret either: it is not masked elsewhere in the text
    assert r.text("reference 3fa9c0d2e4b61a7f, HF_TOKEN=x1 and sk-live-123456") == f"reference 3fa9c0d2e4b61a7f, HF_TOKEN={MASK} and {MASK}"
    assert not any(map(is_secret_name, ["reference_key", "matrix_key", "cache_key", "bos_token", "pad_token"]))
    assert all(map(is_secret_name, ["MY_SERVICE_KEY", "SSH_PRIVATE_KEY", "HF_HUB_TOKEN", "CI_JOB_TOKEN"]))
