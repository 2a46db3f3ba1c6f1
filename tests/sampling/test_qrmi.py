"""qrmi: the paths that need no QPU (no resource granted, wrong resource, incomplete setup, options)."""

from __future__ import annotations

import pytest

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import granted_qpu_resources, sample
from sqd_suite.sampling.qrmi import sampler_options

_VARS = ("QRMI_JOB_QPU_RESOURCES", "QRMI_JOB_QPU_TYPES", "SLURM_JOB_QPU_RESOURCES", "SLURM_JOB_QPU_TYPES", "SLURM_JOB_ID", "QRMI_LIST_DELIMITER")


@pytest.fixture()
def clean_env(monkeypatch):
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_resource_granted(h2_ansatz, clean_env):
    assert granted_qpu_resources() == []
    with pytest.raises(SQDInputError) as err:
        sample(h2_ansatz, 10, SamplerConfig(kind="qrmi"), seed=0)
    msg = str(err.value)
    assert "\n" not in msg and "no QPU resource was granted" in msg and "--qpu" in msg
    clean_env.setenv("SLURM_JOB_ID", "4242")
    clean_env.setenv("SLURM_JOB_QPU_RESOURCES", "")
    with pytest.raises(SQDInputError, match="in Slurm job 4242"):
        sample(h2_ansatz, 10, SamplerConfig(kind="qrmi"), seed=0)


def test_granted_resources_and_wrong_name(h2_ansatz, clean_env):
    clean_env.setenv("SLURM_JOB_QPU_RESOURCES", "ibm_torino;ibm_fez")
    clean_env.setenv("QRMI_LIST_DELIMITER", ";")
    assert granted_qpu_resources() == ["ibm_torino", "ibm_fez"]
    with pytest.raises(SQDInputError, match="'ibm_kyiv' was not granted"):
        sample(h2_ansatz, 10, SamplerConfig(kind="qrmi", backend="ibm_kyiv"), seed=0)


def test_incomplete_plugin_configuration_names_the_variable(h2_ansatz, clean_env):
    clean_env.setenv("QRMI_JOB_QPU_RESOURCES", "ibm_torino")
    clean_env.setenv("QRMI_JOB_QPU_TYPES", "ibm-quantum-compute-service")
    with pytest.raises(SQDInputError, match="ibm_torino_QRMI_IBM_QCS_ENDPOINT"):
        sample(h2_ansatz, 10, SamplerConfig(kind="qrmi"), seed=0)


def test_sampler_options_carry_error_suppression():
    opts = sampler_options(SamplerConfig(kind="qrmi", dynamical_decoupling=False, twirling=True), 500)
    assert opts == {
        "default_shots": 500,
        "run_options": {
            "dynamical_decoupling": {"enable": False},
            "twirling": {"enable_gates": True, "enable_measure": True},
        },
    }


def test_missing_qrmi_package_says_how_to_install(monkeypatch):
    import sys

    from sqd_suite.sampling.qrmi import _import_qrmi

    monkeypatch.setitem(sys.modules, "qrmi", None)  # import now raises ImportError
    with pytest.raises(SQDInputError, match=r"sqd-suite\[qrmi\]"):
        _import_qrmi()
