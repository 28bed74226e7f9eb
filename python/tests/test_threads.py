"""One Bundle serves several Python threads at once, with the GIL released during network work."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import brenier
from conftest import DEMO, same_bits


def test_threads_sharing_a_bundle_get_the_serial_bits(inputs):
    b = brenier.Bundle(DEMO, threads=1)
    parts = [inputs[i : i + 2] for i in range(0, 8, 2)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: b.translate(x, steps=3), parts))
    serial = brenier.Bundle(DEMO, threads=1)
    for x, y in zip(parts, got):
        assert same_bits(y, serial.translate(x, steps=3))


def test_the_gil_is_released_while_networks_run(inputs):
    # One network thread, so this loop has a core of its own on a 2-core machine.
    b = brenier.Bundle(DEMO, threads=1)
    b.translate(inputs, steps=5)  # networks prepared: time the run alone
    done = threading.Event()

    def work():
        b.translate(inputs, steps=5)
        done.set()

    worker = threading.Thread(target=work)
    start = last = time.perf_counter()
    longest = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    longest = max(longest, time.perf_counter() - last)  # the stretch up to the loop's exit
    worker.join()
    call = time.perf_counter() - start
    if call < 0.05:
        pytest.skip(f"the call took {call:.3f} s: too short to tell a released GIL from a held one")
    # Held, the GIL would stop this loop for the whole call; released, it only pauses for
    # Python's switch interval (5 ms) around the call's entry and exit.
    assert longest < call / 2, f"the loop stalled {longest:.3f} s of a {call:.3f} s call"


def test_close_lets_a_call_in_flight_finish(inputs):
    b = brenier.Bundle(DEMO)
    b.translate(inputs[:1], steps=1)
    started, result = threading.Event(), {}

    def work():
        started.set()
        t0 = time.perf_counter()
        try:
            result["y"] = b.translate(inputs, steps=10)
        except ValueError as e:  # close() came first: nothing in flight to test
            result["closed_first"] = e
        result["s"] = time.perf_counter() - t0

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    time.sleep(0.02)  # into the call, which takes far longer (checked below)
    b.close()
    t.join()
    if "closed_first" in result or result["s"] < 0.04:
        pytest.skip(f"the call took {result['s']:.3f} s, ending before close(): nothing was tested")
    assert same_bits(result["y"], brenier.Bundle(DEMO).translate(inputs, steps=10))
