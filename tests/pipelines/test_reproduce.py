"""What ``reproduce`` says about the environment: each fingerprint field and each package
whose recorded value differs from the present one (cairn.pipelines.reproduce)."""

from cairn.pipelines.environment import environment_fingerprint
from cairn.pipelines.models import EnvironmentChange
from cairn.pipelines.reproduce import _env_changes


def test_the_same_fingerprint_has_no_change() -> None:
    now = environment_fingerprint()
    assert _env_changes("", now, now) == []


def test_changed_fields_and_packages_are_named_with_both_values() -> None:
    now = environment_fingerprint()
    then = {
        **now,
        "hash": "0" * 64,
        "python": "3.9.0",
        "packages": {**now["packages"], "numpy": "1.0.0", "gone-pkg": "2.0"},
    }
    then["packages"].pop("blake3")
    changes = {c.key: c for c in _env_changes("", then, now)}
    assert changes["python"] == EnvironmentChange("python", "3.9.0", now["python"])
    assert changes["packages.numpy"].recorded == "1.0.0"
    assert changes["packages.gone-pkg"].present == "(none)"
    assert changes["packages.blake3"].recorded == "(none)"
    assert set(changes) == {"python", "packages.numpy", "packages.gone-pkg", "packages.blake3"}


def test_a_short_recorded_form_says_the_hash_differs() -> None:
    # commits record hash, python, platform, cpu, accelerator; the full body may be gone
    now = environment_fingerprint()
    short = {k: now[k] for k in ("python", "platform", "cpu", "accelerator")}
    changes = _env_changes("", {**short, "hash": "1" * 64}, now)
    assert changes == [EnvironmentChange("hash", "1" * 64, now["hash"])]
