"""jaxdeblur.distributed in one process: settings from the environment, their one-line errors, the rendezvous
that makes a missing or misconfigured process fail in one line, the cross-process helpers on one process."""

import threading

import numpy as np
import pytest

from jaxdeblur import distributed
from tests.multiprocess.launch import free_port


def test_nothing_to_join_without_settings():
    assert distributed.initialize(environ={}) is False
    assert distributed.settings_from_env({}) == {"coordinator": None, "num_processes": None, "process_id": None,
                                                 "timeout": None}


@pytest.mark.parametrize("environ, says", [
    ({"JAXDEBLUR_COORDINATOR": "h:1", "JAXDEBLUR_NUM_PROCESSES": "2"}, "missing: JAXDEBLUR_PROCESS_ID"),
    ({"JAXDEBLUR_PROCESS_ID": "0"}, "missing: JAXDEBLUR_COORDINATOR, JAXDEBLUR_NUM_PROCESSES"),
    ({"JAXDEBLUR_COORDINATOR": "host", "JAXDEBLUR_NUM_PROCESSES": "2", "JAXDEBLUR_PROCESS_ID": "0"}, "host:port"),
    ({"JAXDEBLUR_COORDINATOR": "h:1", "JAXDEBLUR_NUM_PROCESSES": "2", "JAXDEBLUR_PROCESS_ID": "2"},
     "got process id 2 of 2"),
    ({"JAXDEBLUR_COORDINATOR": "h:1", "JAXDEBLUR_NUM_PROCESSES": "two", "JAXDEBLUR_PROCESS_ID": "0"},
     "JAXDEBLUR_NUM_PROCESSES must be an integer, got 'two'"),
    ({"JAXDEBLUR_COORDINATOR": "h:1", "JAXDEBLUR_NUM_PROCESSES": "2", "JAXDEBLUR_PROCESS_ID": "1",
      "JAXDEBLUR_INIT_TIMEOUT": "0"}, "JAXDEBLUR_INIT_TIMEOUT must be >= 1"),
])
def test_bad_settings_one_line(environ, says):
    with pytest.raises(ValueError, match=None) as err:
        distributed.initialize(environ=environ)
    assert says in str(err.value) and "\n" not in str(err.value)


def _rendezvous_all(settings):
    """Runs _rendezvous for each (num_processes, process_id) in threads; {process_id: None or the error}."""
    coordinator = f"127.0.0.1:{free_port()}"
    outcome = {}

    def one(count, pid):
        try:
            distributed._rendezvous(coordinator, count, pid, timeout=5)
            outcome[pid] = None
        except distributed.DistributedError as err:
            outcome[pid] = str(err)

    threads = [threading.Thread(target=one, args=s) for s in settings]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return outcome


def test_rendezvous_lets_all_through():
    assert _rendezvous_all([(3, 2), (3, 0), (3, 1)]) == {0: None, 1: None, 2: None}


def test_rendezvous_refuses_other_process_counts():
    outcome = _rendezvous_all([(2, 0), (3, 1)])
    assert "process 1 says 3 processes, process 0 2" in outcome[0]
    assert "the coordinator refused this process: process 1 says 3 processes" in outcome[1]
    assert all("\n" not in m for m in outcome.values())


def test_helpers_on_one_process():
    assert distributed.gather_strings("abc") == ["abc"]
    distributed.check_same("00ff", "anything")  # a no-op on one process
    assert distributed.is_primary()
    a = np.arange(6, dtype=np.float32)
    assert distributed.digest(a, "x") == distributed.digest(a.copy(), "x")
    assert distributed.digest(a, "x") != distributed.digest(a.reshape(2, 3), "x")  # the shape counts
    assert distributed.digest(a, "x") != distributed.digest(a.astype(np.float64), "x")
    assert distributed.digest([a, a], 1) != distributed.digest([a, a + 1], 1)
