"""ibm_runtime: end to end in local testing mode, resume by job id, credentials, retries."""

from __future__ import annotations

import pytest

from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import _primitives, is_local_testing_name, runtime_target, sample


@pytest.fixture()
def no_account(tmp_path, monkeypatch):
    """No token in the environment and an empty HOME, so a real saved account cannot leak in."""
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL", "QISKIT_IBM_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_local_testing_mode_end_to_end_and_resume(h2, no_account):
    settings = SamplerConfig(kind="ibm_runtime", backend="fake_manila", dynamical_decoupling=True, twirling=True)
    assert runtime_target(settings).local
    ansatz = build_lucj_ansatz(h2, backend=runtime_target(settings).backend)
    submitted: list[str] = []
    s = sample(ansatz, 1000, settings, seed=5, on_submit=submitted.append)
    assert len(submitted) == 1 and s.metadata["job_ids"] == submitted
    assert s.metadata["local_testing_mode"] and s.metadata["twirling"] and s.metadata["transpile_stats"]["two_qubit_gates"] > 0
    assert s.shots >= 1000  # twirling rounds shots up to whole randomizations
    counts = s.to_counts()
    assert max(counts, key=counts.get) == "0101"
    # Resuming fetches the job instead of submitting (and paying) again.
    resubmitted: list[str] = []
    again = sample(ansatz, 1000, settings, seed=99, on_submit=resubmitted.append, job_id=submitted[0])
    assert resubmitted == [] and again.to_counts() == counts and again.metadata["resumed"]


def test_local_job_of_another_process_is_sampled_again(h2_ansatz, no_account):
    settings = SamplerConfig(kind="ibm_runtime", backend="FakeManilaV2", twirling=False)
    submitted: list[str] = []
    s = sample(h2_ansatz, 200, settings, seed=0, job_id="from-a-crashed-run", on_submit=submitted.append)
    assert len(submitted) == 1 and s.metadata["job_ids"] == submitted and "resumed" not in s.metadata


def test_no_credentials_fails_cleanly(h2_ansatz, no_account):
    for backend in ("ibm_torino", None):
        with pytest.raises(SQDInputError) as err:
            sample(h2_ansatz, 10, SamplerConfig(kind="ibm_runtime", backend=backend), seed=0)
        msg = str(err.value)
        assert "\n" not in msg
        assert "QISKIT_IBM_TOKEN" in msg and "QiskitRuntimeService.save_account" in msg


def test_local_testing_names():
    assert is_local_testing_name("fake_torino") and is_local_testing_name("FakeSherbrooke")
    assert not is_local_testing_name("ibm_torino") and not is_local_testing_name(None)


def test_retries_back_off_exponentially_then_give_up(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(_primitives, "_sleep", delays.append)
    calls = iter([ConnectionError("reset"), TimeoutError("slow"), "ok"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    assert _primitives.with_retries(flaky, what="submit", max_retries=3, transient=(ConnectionError, TimeoutError)) == "ok"
    assert delays == [2.0, 4.0]

    def down() -> str:
        raise ConnectionError("down")

    with pytest.raises(SQDInputError, match="failed 2 times") as err:
        _primitives.with_retries(down, what="submit", max_retries=1, transient=(ConnectionError,))
    assert "sampler.max_retries" in str(err.value)

    def broken() -> str:
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        _primitives.with_retries(broken, what="submit", max_retries=3, transient=(ConnectionError,))


class _StubService:
    """Stands in for QiskitRuntimeService: records its arguments, then refuses (as a bad token would)."""

    calls: list[dict] = []

    def __init__(self, **kwargs):
        _StubService.calls.append(kwargs)
        raise RuntimeError(f"401 Unauthorized for token {kwargs.get('token')}")


def test_token_comes_from_the_environment_and_never_reaches_messages(h2_ansatz, no_account, monkeypatch):
    import qiskit_ibm_runtime

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", _StubService)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "s3cr3t-token")
    _StubService.calls.clear()
    with pytest.raises(SQDInputError) as err:
        sample(h2_ansatz, 10, SamplerConfig(kind="ibm_runtime", backend="ibm_fez", instance="crn:x"), seed=0)
    assert _StubService.calls == [{"instance": "crn:x", "token": "s3cr3t-token"}]
    assert "s3cr3t-token" not in str(err.value) and "***" in str(err.value)


def test_saved_account_file_is_used_when_no_token(h2_ansatz, no_account, monkeypatch, tmp_path):
    import qiskit_ibm_runtime

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", _StubService)
    (tmp_path / ".qiskit").mkdir()
    (tmp_path / ".qiskit" / "qiskit-ibm.json").write_text("{}")
    _StubService.calls.clear()
    with pytest.raises(SQDInputError):
        sample(h2_ansatz, 10, SamplerConfig(kind="ibm_runtime", channel="ibm_cloud"), seed=0)
    assert _StubService.calls == [{"channel": "ibm_cloud", "filename": str(tmp_path / ".qiskit" / "qiskit-ibm.json")}]


def test_resume_fetches_the_job_from_the_service(h2, no_account):
    """A real-service target: with job_id the service's job is fetched and nothing is submitted."""
    from sqd_suite.sampling import RuntimeTarget, sample_ibm_runtime

    local = SamplerConfig(kind="ibm_runtime", backend="fake_manila", twirling=False)
    target = runtime_target(local)
    ansatz = build_lucj_ansatz(h2, backend=target.backend)
    ids: list[str] = []
    first = sample(ansatz, 500, local, seed=1, on_submit=ids.append)
    from sqd_suite.sampling import ibm_runtime as mod

    stored = mod._LOCAL_RESULTS[ids[0]]

    class Job:
        def result(self):
            return stored

    class Service:
        asked: list[str] = []

        def job(self, job_id):
            Service.asked.append(job_id)
            return Job()

    remote = RuntimeTarget(target.backend, Service(), local=False)
    again = sample_ibm_runtime(ansatz, 500, local, seed=2, job_id="d1abc", target=remote, on_submit=ids.append)
    assert Service.asked == ["d1abc"] and ids == [ids[0]]
    assert again.to_counts() == first.to_counts() and again.metadata["job_ids"] == ["d1abc"]
