"""Two app replicas behind nginx, as a school runs them (``deploy/``): the shipped nginx
site (sticky by cookie, websockets through), one Redis, one Celery worker, one models
folder. Thirty browsers from one address spread over both replicas and each stays on its
own; a student's run started on one replica is seen and stopped by the teacher on the
other, and survives its replica being killed: the student's page reconnects to the other
replica and finds it."""

import http.cookiejar
import re
import shutil
import signal
import urllib.request
from collections import defaultdict
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from bench.browser import new_page, running_app, unlock_teacher
from bench.school import NGINX, CeleryWorker, Nginx, RedisServer
from tests.conftest import TEACHER_PASSPHRASE

WAIT = 60_000  # ms


@pytest.fixture(scope="module")
def campus(tmp_path_factory, trained_models, mnist_reference):
    """Redis, a worker, two replicas on one models folder, nginx in front."""
    if shutil.which("redis-server") is None or NGINX is None:
        pytest.skip("redis-server and nginx are needed (apt-get install; .ci/run does)")
    base = tmp_path_factory.mktemp("campus")
    models = base / "models"
    shutil.copytree(trained_models, models)
    redis_server = RedisServer(base)
    redis_server.start()
    env = {
        "MNIST_QUEUE": redis_server.url,
        "MNIST_TEACHER_PASSPHRASE": TEACHER_PASSPHRASE,
        "MNIST_DRAWINGS_DIR": str(base / "drawings"),
    }
    worker = CeleryWorker(
        redis_server.url, models, base / "worker.log", env={"MNIST_DATA": "sample"}
    )
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(running_app(str(models), mnist_reference, env=env))
            for _ in range(2)
        ]
        nginx = Nginx(base, [url.removeprefix("http://") for url, _ in replicas])
        yield nginx, replicas
        nginx.stop()
    worker.stop()
    redis_server.stop()


def test_thirty_browsers_behind_one_address_spread_and_each_stays_put(campus):
    nginx, replicas = campus
    for _ in range(30):
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        for path in ("/", "/_stcore/health", "/_stcore/host-config", "/"):
            with opener.open(nginx.url + path, timeout=10) as answer:
                assert answer.status == 200
    replicas_of = defaultdict(set)
    for key, replica in nginx.served():
        replicas_of[key].add(replica)
    assert len(replicas_of) == 30
    assert all(len(served_by) == 1 for served_by in replicas_of.values())  # sticky
    counts = defaultdict(int)
    for served_by in replicas_of.values():
        counts[served_by.pop()] += 1
    assert len(counts) == 2 and min(counts.values()) >= 5, counts  # spread, not one replica


def replica_key(nginx: Nginx, replica: str) -> str:
    """A cookie key that nginx sends to ``replica``: from the keys it handed out, asking
    as new browsers until one reached it."""
    for _ in range(40):
        if key := next((key for key, served in nginx.served() if served == replica), None):
            return key
        with urllib.request.urlopen(nginx.url + "/_stcore/health", timeout=10):
            pass
    raise AssertionError(f"nginx sent no new browser to {replica}")


def test_a_run_outlives_its_replica_and_the_teacher_stops_it_from_the_other(campus, browser):
    nginx, ((first, first_process), (second, _)) = campus
    to_first, to_second = (
        replica_key(nginx, url.removeprefix("http://")) for url in (first, second)
    )
    with new_page(browser) as student, new_page(browser) as teacher:
        for page, key in ((student, to_first), (teacher, to_second)):
            page.context.add_cookies([{"name": "mnist_replica", "value": key, "url": nginx.url}])
        student.goto(f"{nginx.url}/train?kind=ann&epochs=500&name=across-replicas")
        student.get_by_role("button", name="Start training").click()
        expect(student.get_by_text("Your run, ANN across-replicas: training")).to_be_visible(
            timeout=WAIT
        )
        teacher.goto(f"{nginx.url}/train")
        unlock_teacher(teacher, TEACHER_PASSPHRASE)
        panel = teacher.get_by_test_id("stSidebar")
        expect(panel.get_by_text(re.compile(r"ANN across-replicas, \d+% done"))).to_be_visible(
            timeout=WAIT
        )
        first_process.send_signal(signal.SIGKILL)  # the student's replica dies mid-lesson
        first_process.wait(timeout=10)
        student.reload()  # the reconnect lands on the other replica: the run is still hers
        expect(student.get_by_text("Your run, ANN across-replicas: training")).to_be_visible(
            timeout=WAIT
        )
        panel.get_by_role("button", name="Stop").click()
        expect(
            student.get_by_text(re.compile(r"saved as across-replicas \(stopped early\)"))
        ).to_be_visible(timeout=WAIT)
        teacher.goto(f"{nginx.url}/models")  # saved by the worker, listed by the replica
        expect(teacher.get_by_text("across-replicas").first).to_be_visible(timeout=WAIT)
